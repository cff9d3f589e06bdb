"""The selection split: a fixed, hashed set of held-out pairs large enough to choose between models.

``dec2vec validate`` on 40 pairs per source could not separate the top three methods (gaps of
0.002–0.005 MRR, paired 95 % intervals up to ±0.0204: docs/eval/repro/validation-paired.md). That
interval is of a mean over 11 sources of ~40 queries each (423 in all), so the per-query standard
deviation of the paired reciprocal-rank difference is about σ = 0.0204 · 11 / (1.96 · √(Σ 1/nₛ))
≈ 0.22. A half-width of 0.005 then needs N ≥ (1.96 · 0.22 / 0.005)² ≈ 7,400 queries when every
query weighs the same (the small sources — 27 ChatterBot, 28 man-page pairs — would dominate a
mean over sources). So the deciding figure is the **pooled** MRR over all queries
(:func:`paired_pooled_difference`), with up to :data:`PER_SOURCE` = 2,000 pairs per source (most
valid splits hold fewer); the per-source scores are reported beside it.

To keep the task as hard as ``validate --n 100`` however many pairs there are, the pairs come in
**blocks of** :data:`BLOCK` = 100: a query ranks the positives of its own block, so MRR does not fall
just because the pool grew. Sources are the validation splits of the pair corpora (never trained
on); the passage corpora bring documents of 60–400 words and the word corpora single-word queries.

The split is **fixed before it is read**: :func:`build_selection` draws the pairs by content hash
(not file order), re-checks every pair against the evaluation suite and the reserved sets with the
leakage filter, and writes ``selection.jsonl`` with ``selection.json`` (its sha256, the sha256 of
every valid file drawn from, the counts). ``configs/selection.json`` in the repository records the
digest the project fixed; :func:`read_selection` refuses a file whose digest differs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..foundations.files import write_atomic
from .validate import retrieval_scores

PER_SOURCE = 2000
BLOCK = 100
FORMAT = 1
# the pair corpora drawn from, in report order: single words, sentences, dialogue, long passages
SOURCES: tuple[str, ...] = (
    "wordnet-word-gloss",
    "gcide-word-definition",
    "glossary-term-definition",
    "wordnet-gloss-example",
    "gcide-word-quotation",
    "bible-kjv-web",
    "bible-mhcc-commentary",
    "chitchat-turns",
    "shakespeare-turns",
    "chatterbot-qa",
    "manpages-name-description",
    "manpages-section-passage",
    "bible-outline-passage",
)


def _key(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def draw(valid_lines: Sequence[str], n: int) -> list[tuple[str, str]]:
    """Up to ``n`` (query, positive) pairs, in sha256 order of their lines; a repeated query or
    positive is kept once (it would be a false negative in its block)."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line in sorted(valid_lines, key=_key):
        rec = json.loads(line)
        q, p = rec.get("query"), rec.get("positive")
        if not isinstance(q, str) or not isinstance(p, str) or q in seen or p in seen:
            continue
        seen.update((q, p))
        out.append((q, p))
        if len(out) == n:
            break
    return out


def build_selection(
    data_dir: Path,
    out: Path,
    *,
    sources: Sequence[str] = SOURCES,
    per_source: int = PER_SOURCE,
    leak_filter: Any = None,
) -> dict[str, Any]:
    """Write ``out`` (JSONL: source, block, query, positive) and ``out.with_suffix('.json')`` (its manifest).

    ``leak_filter`` (a :class:`dec2vec.corpora.leakage.LeakageFilter`; the installed evaluation
    suite's when None) drops any pair that shares text with an evaluation task or a reserved set."""
    from ..corpora.records import Record

    if leak_filter is None:
        from ..corpora.leakage import EvalIndex

        leak_filter = EvalIndex.locate().filter()
    lines: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    inputs: dict[str, str] = {}
    for name in sources:
        path = Path(data_dir) / f"{name}.valid.jsonl"
        if not path.is_file():
            raise InputError(f"{path}: validation split missing (run `dec2vec data build`)")
        inputs[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        pairs = draw([ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()], per_source)
        kept = [(q, p) for q, p in pairs if leak_filter.leaks(Record.of({"query": q, "positive": p}, "x")) is None]
        clean = len(kept)
        usable = clean - clean % BLOCK if clean >= BLOCK else clean  # whole blocks, or one smaller one
        for i, (q, p) in enumerate(kept[:usable]):
            lines.append(
                json.dumps({"source": name, "block": i // BLOCK, "query": q, "positive": p}, ensure_ascii=False)
            )
        counts[name] = {
            "drawn": len(pairs),
            "dropped_leakage": len(pairs) - clean,
            "dropped_partial_block": clean - usable,
            "pairs": usable,
        }
    text = "\n".join(lines) + "\n"
    write_atomic(out, text)
    manifest = {
        "format": FORMAT,
        "file": out.name,
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "pairs": len(lines),
        "per_source": per_source,
        "block": BLOCK,
        "sources": counts,
        "valid_files_sha256": inputs,
        "leakage_checked": [c.get("name") for c in getattr(leak_filter, "checked", []) or []],
    }
    write_atomic(out.with_suffix(".json"), json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_selection(path: Path, expected_sha256: str | None = None) -> dict[str, list[list[tuple[str, str]]]]:
    """source -> blocks -> (query, positive); with ``expected_sha256``, a different file is refused."""
    raw = Path(path).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise InputError(f"{path}: sha256 {digest[:12]}… is not the fixed selection split's {expected_sha256[:12]}…")
    out: dict[str, dict[int, list[tuple[str, str]]]] = {}
    for lineno, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out.setdefault(rec["source"], {}).setdefault(int(rec["block"]), []).append((rec["query"], rec["positive"]))
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}:{lineno}: not a selection record ({e})") from None
    return {s: [blocks[b] for b in sorted(blocks)] for s, blocks in out.items()}


def validate_selection(
    embedder: Any, blocks: dict[str, list[list[tuple[str, str]]]], instructions: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """Per source: each query ranks its block's positives; recall@1, MRR and every query's reciprocal
    rank (``rr``), in the layout of :func:`.validate.validate` so that ``paired_mrr_difference`` applies."""
    from .validate import part_spread, unit_rows

    slices = getattr(embedder, "embedding_parts", {})  # an encoder-only model has none
    part_rr: dict[str, list[float]] = {k: [] for k in slices}  # each part of a composite embedding alone
    spreads: dict[str, list[float]] = {k: [] for k in slices}
    per: dict[str, dict[str, Any]] = {}
    for name, bl in blocks.items():
        rr: list[float] = []
        for block in bl:
            q = np.asarray(
                embedder.encode([a for a, _ in block], instruction=(instructions or {}).get(name), normalize=False)
            )
            d = np.asarray(embedder.encode([b for _, b in block], normalize=False))
            rr += retrieval_scores(unit_rows(q), unit_rows(d))["rr"]
            for part, sl in slices.items():
                part_rr[part] += retrieval_scores(unit_rows(q[:, sl]), unit_rows(d[:, sl]))["rr"]
                spreads[part].append(part_spread(d[:, sl]))
        arr = np.asarray(rr)
        per[name] = {"recall_at_1": float((arr == 1.0).mean()), "mrr": float(arr.mean()), "rr": rr, "pairs": len(rr)}
    mean = {k: float(np.mean([s[k] for s in per.values()])) for k in ("recall_at_1", "mrr")}
    every = np.concatenate([np.asarray(s["rr"]) for s in per.values()]) if per else np.zeros(0)
    pooled = {"recall_at_1": float((every == 1.0).mean()), "mrr": float(every.mean())} if len(every) else {}
    parts = {k: {"mrr": float(np.mean(part_rr[k])), "spread": float(np.mean(spreads[k]))} for k in slices}
    return {"sources": per, "mean": mean, "pooled": pooled, "n": int(len(every)), "parts": parts}


def paired_pooled_difference(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float, float]:
    """B − A of the pooled MRR (every query weighs the same) of two :func:`validate_selection` results on
    the same split, with the evaluation's paired bootstrap 95 % CI (the same queries resampled for both)."""
    from ..evaluation import stats

    def items(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
        rr = [v for name in sorted(result["sources"]) for v in result["sources"][name]["rr"]]
        return {"selection": {"kind": "mean", "unit": "query", "values": rr}}

    out = stats.paired(items(a), items(b))["selection"]
    return float(out["diff"]), float(out["ci"][0]), float(out["ci"][1])
