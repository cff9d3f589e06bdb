"""dec2vec's task data as real ``mteb`` tasks, so every score is computed by mteb's own evaluators.

Each :class:`~dec2vec.evaluation.tasks.TaskData` becomes an instance of a subclass of mteb's
``AbsTaskSTS``, ``AbsTaskClassification``, ``AbsTaskClustering`` or ``AbsTaskRetrieval`` (reranking
is retrieval with ``top_ranked`` candidates, as in mteb 2). Only ``load_data`` is ours: it puts the
already built data in memory as ``datasets.Dataset`` objects, so nothing touches the hub. The
small-data settings (train samples per label, experiments, documents embedded for clustering) are
set per instance from :class:`Settings` and recorded in every result file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InputError
from .tasks import ClassificationData, ClusteringData, RerankingData, RetrievalData, STSData, TaskData

MAIN_SCORE = {
    "sts": "cosine_spearman",
    "classification": "accuracy",
    "clustering": "v_measure",
    "retrieval": "ndcg_at_10",
    "reranking": "ndcg_at_10",
}
MTEB_TYPE = {
    "sts": "STS",
    "classification": "Classification",
    "clustering": "Clustering",
    "retrieval": "Retrieval",
    "reranking": "Reranking",
}

# What each task asks for, written before queries by instruction-following recipes (as MTEB's
# instructions for e5-mistral/bge-en-icl are); documents get none. Baselines ignore them.
INSTRUCTIONS: dict[str, str] = {
    "lee-sts": "Retrieve news articles that are semantically similar to the given one",
    "vital-topic-classification": "Identify the topic of the given Wikipedia article summary",  # = clustering's, so
    # the two tasks share embeddings of the same summaries
    "rotten-tomatoes-classification": "Classify the sentiment of the given movie review as fresh or rotten",
    "vital-topic-clustering": "Identify the topic of the given Wikipedia article summary",
    "wiki-description-retrieval": "Given a short description, retrieve the Wikipedia article summary it describes",
    "news-title-retrieval": "Given a news headline, retrieve the article it belongs to",
    "wiki-description-reranking": "Given a short description, retrieve the Wikipedia article summary it describes",
    "news-passage-retrieval": "Given a news article's standfirst, retrieve the passage that opens the article",
    "news-paragraph-sts": "Retrieve news paragraphs that are semantically similar to the given one",
    "wordnet-word-sts": "Retrieve words or phrases that are semantically similar to the given one",
}


@dataclass(frozen=True)
class Settings:
    """mteb's small-data knobs and our per-text token limit, fixed per suite (full or quick).

    Classification follows mteb: a logistic regression (max_iter 100) is trained on
    ``samples_per_label`` random training texts per label, ``n_experiments`` times with different
    draws, and the scores are averaged; only the union of the drawn training texts is embedded.
    Clustering embeds ``clustering_max_documents`` texts (all when None) and reports the mean
    V-measure of ``clustering_bootstraps`` k-means runs on ``clustering_sample`` texts each,
    drawn with replacement. ``max_length`` caps the tokens of each text a model reads (template,
    instruction and echo's second copy come on top, so no recipe sees less of a text than another).
    """

    samples_per_label: int = 32
    n_experiments: int = 5
    clustering_max_documents: int | None = 2048
    clustering_sample: int = 1024
    clustering_bootstraps: int = 10
    max_length: int = 512
    seed: int = 42  # mteb's default task seed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


FULL = Settings()
# Quick: every drawn text is embedded (the quick training sets hold exactly samples_per_label per
# label), so one experiment suffices; small bootstraps over the whole quick clustering set.
QUICK = Settings(
    samples_per_label=8,
    n_experiments=1,
    clustering_max_documents=None,
    clustering_sample=128,
    clustering_bootstraps=5,
    max_length=256,
)


# Standard: as quick, every drawn training text is used (16 per label, so one experiment); the
# clustering items are its k-means runs, 20 of them on 256 texts each (see standard.py). Texts are
# read up to 512 tokens (256 until standard revision 3): the long-passage tasks hold 200–512-token
# passages, the length users embed, and a cut at 256 would hide what a model does with them.
STANDARD = Settings(
    samples_per_label=16,
    n_experiments=1,
    clustering_max_documents=None,
    clustering_sample=256,
    clustering_bootstraps=20,
    max_length=512,
)


def settings_for(tier: bool | str) -> Settings:
    """The settings of a tier: ``quick``, ``standard`` or ``full`` (True/False: quick/full)."""
    if isinstance(tier, bool):
        tier = "quick" if tier else "full"
    return {"quick": QUICK, "standard": STANDARD, "full": FULL}[tier]


def _metadata(task: TaskData) -> Any:
    from mteb import TaskMetadata

    return TaskMetadata(
        name=task.name,
        description=task.description,
        reference="https://github.com/dec2vec/dec2vec/blob/main/docs/EVALUATION.md",
        dataset={"path": f"dec2vec/{task.name}", "revision": "quick" if task.quick else "full"},
        type=MTEB_TYPE[task.type],
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score=MAIN_SCORE[task.type],
        date=("2000-01-01", "2024-12-31"),
        domains=["Encyclopaedic", "News", "Reviews", "Written"],
        task_subtypes=[],
        license="not specified",
        annotations_creators="derived",
        dialect=[],
        sample_creation="found",
        bibtex_citation="",
    )


def label_ids(labels: list[str], order: list[str]) -> list[int]:
    index = {name: i for i, name in enumerate(order)}
    return [index[x] for x in labels]


def to_mteb(task: TaskData, settings: Settings) -> Any:
    """An mteb ``AbsTask`` instance holding ``task``'s data in memory, ready for ``mteb.evaluate``."""
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.classification import AbsTaskClassification
    from mteb.abstasks.clustering import AbsTaskClustering
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.sts import AbsTaskSTS

    data = task.data
    meta = _metadata(task)
    if isinstance(data, STSData):

        class STS(AbsTaskSTS):
            metadata = meta
            min_score = data.min_score
            max_score = data.max_score

            def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
                cols = {"sentence1": data.sentences1, "sentence2": data.sentences2, "score": data.scores}
                self.dataset = DatasetDict({"test": Dataset.from_dict(cols)})
                self.data_loaded = True

        return STS(seed=settings.seed)

    if isinstance(data, ClassificationData):
        classes = sorted(set(data.train_labels) | set(data.test_labels))

        class Classification(AbsTaskClassification):
            metadata = meta
            samples_per_label = settings.samples_per_label
            n_experiments = settings.n_experiments

            def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
                self.dataset = DatasetDict(
                    {
                        "train": Dataset.from_dict(
                            {"text": data.train_texts, "label": label_ids(data.train_labels, classes)}
                        ),
                        "test": Dataset.from_dict(
                            {"text": data.test_texts, "label": label_ids(data.test_labels, classes)}
                        ),
                    }
                )
                self.data_loaded = True

        return Classification(seed=settings.seed)

    if isinstance(data, ClusteringData):
        classes = sorted(set(data.labels))

        class Clustering(AbsTaskClustering):
            metadata = meta
            max_fraction_of_documents_to_embed = None
            max_document_to_embed = settings.clustering_max_documents
            max_documents_per_cluster = settings.clustering_sample
            n_clusters = settings.clustering_bootstraps

            def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
                cols = {"sentences": data.texts, "labels": label_ids(data.labels, classes)}
                self.dataset = DatasetDict({"test": Dataset.from_dict(cols)})
                self.data_loaded = True

        return Clustering(seed=settings.seed)

    if isinstance(data, RetrievalData):  # RerankingData too: candidates become mteb's top_ranked
        top_ranked = data.candidates if isinstance(data, RerankingData) else None

        class Retrieval(AbsTaskRetrieval):
            metadata = meta

            def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
                split = {
                    "queries": Dataset.from_dict({"id": list(data.queries), "text": list(data.queries.values())}),
                    "corpus": Dataset.from_dict(
                        {"id": list(data.corpus), "text": list(data.corpus.values()), "title": [""] * len(data.corpus)}
                    ),
                    "relevant_docs": {q: dict(d) for q, d in data.qrels.items()},
                    "top_ranked": {q: list(c) for q, c in top_ranked.items()} if top_ranked else None,
                }
                self.dataset = {"default": {"test": split}}
                self.data_loaded = True

        return Retrieval(seed=settings.seed)

    raise InputError(f"task '{task.name}': no mteb task type for {type(data).__name__}")


def hub_task(name: str) -> Any:
    """A real MTEB task by name (its data comes from the Hugging Face hub when it is first evaluated)."""
    import mteb

    try:
        return mteb.get_task(name)
    except (KeyError, ValueError) as e:
        raise InputError(f"'{name}' is neither a dec2vec evaluation task nor an MTEB task name: {e}") from e


def main_score(scores: dict[str, Any], task_type: str) -> float:
    return float(scores[MAIN_SCORE[task_type]])
