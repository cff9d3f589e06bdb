"""The evaluation tasks built from the real installed packages, and the leakage test of issue 4.

Leakage: the content hash (lowercased, whitespace collapsed) of every evaluation text must be
absent from the hashes of every text ``dec2vec data build`` writes for training (train and valid
files of every corpus). The training build needs the Debian packages (apt-get, or .debs already in
the dec2vec source cache); it takes about 30 s.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from dec2vec.corpora import build as build_mod
from dec2vec.errors import SourceError
from dec2vec.evaluation import build_tasks, load_task, task_names
from dec2vec.evaluation.builders import norm
from dec2vec.models import cache_home

pytestmark = pytest.mark.integration


def key(text: str) -> str:
    return hashlib.sha256(norm(text).encode("utf-8")).hexdigest()


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    build_tasks(cache_dir=folder)
    return folder


@pytest.fixture(scope="module")
def training_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    try:
        build_mod.build(out, cache=cache_home() / "sources")
    except SourceError as e:
        if shutil.which("apt-get") is None or "apt-get" in str(e):
            pytest.skip(f"training corpora could not be built (Debian packages unavailable): {e}")
        raise
    return out


@pytest.fixture(scope="module")
def training_texts(training_dir) -> dict[str, str]:
    """hash -> "corpus file: text" of every string in every record the training build writes."""
    out = training_dir
    texts: dict[str, str] = {}
    for f in sorted(out.glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            for v in json.loads(line).values():
                for t in v if isinstance(v, list) else [v]:
                    if isinstance(t, str):
                        texts.setdefault(key(t), f"{f.name}: {t}")
    return texts


def test_sizes(eval_dir):
    sts = load_task("lee-sts", cache_dir=eval_dir).data
    assert len(sts.texts) == 50 and len(sts.pairs) == 1225
    assert all(0.0 <= s <= 1.0 for s in sts.scores)
    vital = load_task("vital-topic-classification", cache_dir=eval_dir).data
    assert len(vital.labels) == 11 and len(vital.train_texts) + len(vital.test_texts) == 9033
    assert set(vital.train_texts).isdisjoint(vital.test_texts)
    rt = load_task("rotten-tomatoes-classification", cache_dir=eval_dir).data
    assert 12_500 <= len(rt.train_texts) + len(rt.test_texts) <= 12_808 and set(rt.labels) == {"fresh", "rotten"}
    assert set(rt.train_texts).isdisjoint(rt.test_texts)
    assert len(load_task("vital-topic-clustering", cache_dir=eval_dir).data.texts) == 9033
    wiki = load_task("wiki-description-retrieval", cache_dir=eval_dir).data
    assert len(wiki.corpus) == 10_033 and 8_500 <= len(wiki.queries) <= 10_033
    news = load_task("news-title-retrieval", cache_dir=eval_dir).data
    assert 3_500 <= len(news.corpus) <= 3_824 and 3_500 <= len(news.queries) <= 3_824
    rr = load_task("wiki-description-reranking", cache_dir=eval_dir)
    assert all(len(c) == 20 for c in rr.data.candidates.values())
    assert 0.7 <= rr.stats["bm25_recall_at_20"] < 1.0


def test_quick_variants_are_small_subsets(eval_dir):
    for name in task_names():
        full = set(load_task(name, cache_dir=eval_dir).texts())
        quick = list(load_task(name, quick=True, cache_dir=eval_dir).texts())
        assert set(quick) <= full
        assert len(quick) <= 1_500, name


def test_standard_variants_are_subsets_of_the_full_tasks(eval_dir):
    from dec2vec.evaluation.standard import load_standard

    for name in task_names():
        full = set(load_task(name, cache_dir=eval_dir).texts())
        assert set(load_standard(name, cache_dir=eval_dir).texts()) <= full, name


def _variants(name, eval_dir):
    from dec2vec.evaluation.standard import load_standard

    yield load_task(name, quick=False, cache_dir=eval_dir)
    yield load_task(name, quick=True, cache_dir=eval_dir)
    yield load_standard(name, cache_dir=eval_dir)


PAIR_TASKS = {"wordnet-word-sts"}  # scored on word pairs: its single words may be training texts, its pairs not


def _overlaps(eval_dir, training_texts) -> list[tuple[str, str, str]]:
    found = []
    for name in task_names():
        if name in PAIR_TASKS:
            continue
        for variant in _variants(name, eval_dir):  # full, quick and standard tiers
            for t in variant.texts():
                hit = training_texts.get(key(t))
                if hit is not None:
                    found.append((name, t, hit))
    return found


def test_no_evaluation_text_is_in_the_training_corpora(eval_dir, training_texts):
    """Issue 4's rule: every evaluation text's content hash is absent from the training corpora."""
    found = _overlaps(eval_dir, training_texts)
    assert not found, f"{len(found)} evaluation texts are also training texts:\n" + "\n".join(
        f"{n}: {t!r} == {h!r}" for n, t, h in found[:50]
    )


def test_no_training_record_holds_an_evaluation_or_reserved_word_pair(eval_dir, training_dir):
    """The word task's pairs and the reserved WordSim-353/SimLex-999 pairs never sit in one training record."""
    from itertools import combinations

    from dec2vec.corpora.reserved import pair_key, reserved_pairs

    task = load_task("wordnet-word-sts", cache_dir=eval_dir).data
    pairs = {pair_key(task.texts[i], task.texts[j]) for i, j, _ in task.pairs} | reserved_pairs()
    assert len(pairs) > 2_000
    found = []
    for f in sorted(training_dir.glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            short = {t for v in json.loads(line).values() for t in (v if isinstance(v, list) else [v])
                     if isinstance(t, str) and len(t) <= 40}  # fmt: skip
            found += [(f.name, a, b) for a, b in combinations(sorted(short), 2) if pair_key(a, b) in pairs]
    assert not found, found[:20]
