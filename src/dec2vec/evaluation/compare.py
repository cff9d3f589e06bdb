"""``dec2vec eval --compare A B``: paired bootstrap differences between two evaluated models.

A and B are ``results.json`` files (or report folders holding one). A file with several models
needs ``FILE:MODEL`` (the model's report name or spec); a file with one model needs nothing.
Only tasks both results scored on the same data (same task file sha256, same items) are compared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from . import stats
from .report import SHORT


def load_results(ref: str) -> dict[str, Any]:
    path = Path(ref)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise InputError(f"no results.json at '{ref}'")
    try:
        res = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:  # malformed JSON, or not UTF-8
        raise InputError(f"'{path}' is not a results.json: {e}") from None
    except OSError as e:
        raise InputError(f"'{path}': cannot read it ({e.strerror or e})") from None
    if not isinstance(res, dict) or not isinstance(res.get("models", []), list):
        raise InputError(f"'{path}' is not a results.json: a JSON object with a 'models' list is expected")
    return res


def find_model(ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(results, model entry) for ``FILE`` or ``FILE:MODEL``."""
    file, model = ref, None
    if not Path(ref).exists() and ":" in ref:
        file, _, model = ref.rpartition(":")
    res = load_results(file)
    entries = res.get("models", [])
    if model is None:
        if len(entries) != 1:
            names = ", ".join(m["name"] for m in entries)
            raise InputError(f"'{file}' holds {len(entries)} models ({names}); name one as {file}:MODEL")
        return res, entries[0]
    for m in entries:
        if model in (m.get("name"), m.get("spec")):
            return res, m
    raise InputError(f"no model '{model}' in '{file}' ({', '.join(m['name'] for m in entries)})")


def items_of(res: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    """task -> items, keyed by task name and data sha256 so different task data never pairs up."""
    sha = {t["name"]: t.get("sha256") for t in res.get("tasks", [])}
    out = {}
    for name, t in model.get("tasks", {}).items():
        items = t.get("scores", {}).get("items")
        if items is not None:
            out[f"{name}@{sha.get(name)}"] = items
    return out


def compare_models(a: tuple[dict, dict], b: tuple[dict, dict], n_boot: int = stats.N_BOOT) -> dict[str, Any]:
    ia, ib = items_of(*a), items_of(*b)
    # draws are seeded by the plain task name, as in the reports' own intervals
    rows = stats.paired(
        {k.split("@")[0]: v for k, v in ia.items() if k in ib},
        {k.split("@")[0]: v for k, v in ib.items() if k in ia},
        n_boot=n_boot,
    )
    skipped = sorted({k.split("@")[0] for k in ia.keys() ^ ib.keys()})
    return {"a": a[1]["name"], "b": b[1]["name"], "rows": rows, "not_shared": skipped}


def format_comparison(c: dict[str, Any]) -> str:
    lines = [
        f"B − A, main score ×100; A = {c['a']}, B = {c['b']}; paired bootstrap 95% CI ({stats.N_BOOT} replicates)",
        "",
        "| task | A | B | B − A | 95% CI | verdict |",
        "|---|---:|---:|---:|---|---|",
    ]
    for task, r in c["rows"].items():
        name = "**mean (task)**" if task == "mean" else SHORT.get(task, task)
        if "diff" not in r:
            lines.append(f"| {name} | – | – | – | – | {r['verdict']} |")
            continue
        lo, hi = r["ci"]
        lines.append(
            f"| {name} | {100 * r['a']:.2f} | {100 * r['b']:.2f} | {100 * r['diff']:+.2f} | "
            f"[{100 * lo:+.2f}, {100 * hi:+.2f}] | {r['verdict']} |"
        )
    if c["not_shared"]:
        lines += ["", "Not in both (or on different task data): " + ", ".join(c["not_shared"])]
    return "\n".join(lines) + "\n"
