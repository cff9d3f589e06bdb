"""The evaluation tasks' data, one small dataclass per task type, and its JSON form.

Only data lives here: what mteb's evaluators will be fed (sentence pairs and scores, labelled texts,
queries/corpus/relevance judgements). How the data is built from the packages is in ``datasets``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TaskType = Literal["sts", "classification", "clustering", "retrieval", "reranking"]
FORMAT = 1  # of the JSON files; bump when the layout changes


@dataclass(frozen=True)
class STSData:
    """Texts and scored pairs of them; a pair is (index of text 1, index of text 2, gold score)."""

    texts: list[str]
    pairs: list[tuple[int, int, float]]
    min_score: float = 0.0
    max_score: float = 1.0

    @property
    def sentences1(self) -> list[str]:
        return [self.texts[i] for i, _, _ in self.pairs]

    @property
    def sentences2(self) -> list[str]:
        return [self.texts[j] for _, j, _ in self.pairs]

    @property
    def scores(self) -> list[float]:
        return [s for _, _, s in self.pairs]

    def all_texts(self) -> Iterator[str]:
        yield from self.texts


@dataclass(frozen=True)
class ClassificationData:
    """A fixed train/test split; ``labels`` lists the classes in a fixed order."""

    labels: list[str]
    train_texts: list[str]
    train_labels: list[str]
    test_texts: list[str]
    test_labels: list[str]

    def all_texts(self) -> Iterator[str]:
        yield from self.train_texts
        yield from self.test_texts


@dataclass(frozen=True)
class ClusteringData:
    texts: list[str]
    labels: list[str]

    def all_texts(self) -> Iterator[str]:
        yield from self.texts


@dataclass(frozen=True)
class RetrievalData:
    """Queries and corpus by id; ``qrels[query_id][doc_id] = 1`` for every relevant document."""

    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def all_texts(self) -> Iterator[str]:
        yield from self.queries.values()
        yield from self.corpus.values()


@dataclass(frozen=True)
class RerankingData(RetrievalData):
    """Retrieval data plus, per query, the candidate documents to reorder (every relevant one included)."""

    candidates: dict[str, list[str]] = field(default_factory=dict)


Payload = STSData | ClassificationData | ClusteringData | RetrievalData | RerankingData
PAYLOADS: dict[str, type] = {
    "sts": STSData,
    "classification": ClassificationData,
    "clustering": ClusteringData,
    "retrieval": RetrievalData,
    "reranking": RerankingData,
}


@dataclass(frozen=True)
class TaskData:
    """One task (full or quick variant) ready to evaluate; ``stats`` holds its sizes and build notes."""

    name: str
    type: TaskType
    description: str
    quick: bool
    data: Payload
    stats: dict[str, Any]

    def texts(self) -> Iterator[str]:
        """Every text the task shows a model (for leakage checks and for sizing a run)."""
        return self.data.all_texts()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "quick": self.quick,
            "stats": self.stats,
            "data": asdict(self.data),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TaskData:
        if obj.get("format") != FORMAT:
            raise ValueError(f"task file format {obj.get('format')!r}, expected {FORMAT}")
        kind = obj["type"]
        raw = dict(obj["data"])
        if kind == "sts":
            raw["pairs"] = [(int(i), int(j), float(s)) for i, j, s in raw["pairs"]]
        data = PAYLOADS[kind](**raw)
        return cls(obj["name"], kind, obj["description"], bool(obj["quick"]), data, dict(obj["stats"]))
