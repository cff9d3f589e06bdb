"""The reproduction's claims as data, and their verdicts from ``results.json`` files.

Each :class:`Claim` compares model B with model A (by report name; trained runs are named after
their run folder, untrained recipes ``<recipe> (untrained)``) on one metric:

- ``mean``: the suite mean over the tasks both were scored on; the verdict comes from the paired
  bootstrap 95% CI of B − A (``stats.paired``). Relation ``>``: *holds* when the CI lies above
  ``threshold``, *fails* when it lies below, else *inconclusive*. Relation ``>=`` is
  non-inferiority: *holds* when the CI lies above ``-threshold``, *fails* when below it.
- ``token_ratio``: B's LLM tokens per text over A's (exact counts, no CI); *holds* when the ratio
  is at most ``threshold``. Counted on the benchmark's text mix when a ``dec2vec bench`` JSON is
  among the files (its recipes count as ``<recipe> (untrained)``: a recipe's token count does not
  change with training), else on the suite's texts.

- ``perplexity_ratio``: B's language-model perplexity on the held-out text over A's (A is an untrained
  model, so its perplexity is the base model's); ``<=``: *holds* when the ratio is at most
  ``threshold``, ``>``: when above it. A point figure, no CI (1,882 held-out tokens).

A claim whose models are not in the given results is *not measured*.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from . import compare


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    a: str  # baseline model (report name; "x|y" takes the first of x, y that is present)
    b: str  # model the claim is about
    metric: str  # "mean" | "token_ratio" | "perplexity_ratio"
    relation: str  # ">" | ">=" | "<="
    threshold: float  # difference in score units (0.01 = 1 point), or a ratio


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "c2v>last-token",
        "Causal2Vec beats last-token pooling trained with the same data and budget",
        "last-token",
        "causal2vec",
        "mean",
        ">",
        0.0,
    ),
    Claim(
        "concat>eos",
        "concat(h_ctx, h_eos) beats eos-only pooling of the same trained Causal2Vec",
        "causal2vec-eos-only",
        "causal2vec",
        "mean",
        ">",
        0.0,
    ),
    Claim(
        "concat>ctx",
        "concat(h_ctx, h_eos) beats ctx-only pooling of the same trained Causal2Vec",
        "causal2vec-ctx-only",
        "causal2vec",
        "mean",
        ">",
        0.0,
    ),
    Claim(
        "unimae>base",
        "UniMAE (unsupervised) clearly beats mean pooling of the base model",
        "mean (untrained)",
        "unimae",
        "mean",
        ">",
        0.0,
    ),
    Claim(
        "unimae-ppl<=110%",
        "UniMAE keeps the backbone's perplexity within 10% of the base",
        "mean (untrained)",
        "unimae",
        "perplexity_ratio",
        "<=",
        1.10,
    ),
    Claim(
        "llm2vec-ppl>110%",
        "LLM2Vec (MNTP first) does not keep the perplexity within 10% of the base",
        "mean (untrained)",
        "llm2vec",
        "perplexity_ratio",
        ">",
        1.10,
    ),
    Claim(
        "llm2vec>base", "LLM2Vec beats mean pooling of the base model", "mean (untrained)", "llm2vec", "mean", ">", 0.0
    ),
    Claim(
        "c2v>minilm",
        "the trained Causal2Vec beats all-MiniLM-L6-v2 alone on the suite mean",
        "all-MiniLM-L6-v2 (mean)",
        "causal2vec",
        "mean",
        ">",
        0.0,
    ),
    Claim(
        "c2v>=echo",
        "Causal2Vec is as good as echo trained with the same data and budget (non-inferiority margin 1 point)",
        "echo",
        "causal2vec",
        "mean",
        ">=",
        0.01,
    ),
    Claim(
        "c2v-tokens<=15%icl",
        "Causal2Vec feeds the LLM at most 15% of icl's tokens per text",
        "icl (untrained)|icl",
        "causal2vec|causal2vec (untrained)",
        "token_ratio",
        "<=",
        0.15,
    ),
    Claim(
        "c2v-tokens<=55%echo",
        "Causal2Vec feeds the LLM at most 55% of echo's tokens per text",
        "echo (untrained)|echo",
        "causal2vec|causal2vec (untrained)",
        "token_ratio",
        "<=",
        0.55,
    ),
)


Models = dict[str, tuple[dict[str, Any], dict[str, Any]]]  # report name -> (results, model entry)


def collect(files: Sequence[str]) -> list[Models]:
    """One ``Models`` per file, in the order given (least to most decisive).

    A file may be a ``dec2vec eval`` results.json or a ``dec2vec bench`` JSON; the latter gives token
    counts only, marked ``"bench": True`` so that quality claims never pick it."""
    out = []
    for f in files:
        res = compare.load_results(f)
        if "recipes" in res and "models" not in res:  # dec2vec bench: LLM tokens per text on its text mix
            out.append(
                {
                    f"{r['name']} (untrained)": (
                        {},
                        {"cost": {"tokens_per_text": r["llm_tokens_per_text"]}, "bench": True},
                    )
                    for r in res["recipes"]
                }
            )
            continue
        out.append({m["name"]: (res, m) for m in res.get("models", [])})
    return out


def _pick(claim: Claim, per_file: list[Models]) -> Models:
    """The models a claim is judged on: from the last file holding both of its models, so that a
    quality claim pairs the same tasks and a token claim counts tokens on the same texts (a bench
    file first, if one holds both); if no single file holds both, the last entry of each name over
    all files (a quality claim then compares only tasks both were scored on, and says so when there
    are none). Bench files never serve a quality claim."""

    def has(models: Models, names: str) -> bool:
        return any(x in models for x in names.split("|"))

    def is_bench(models: Models) -> bool:
        return any(m.get("bench") for _, m in models.values())

    if claim.metric == "token_ratio":
        ordered = [m for m in per_file if not is_bench(m)] + [m for m in per_file if is_bench(m)]
    else:
        ordered = [m for m in per_file if not is_bench(m)]
    for models in reversed(ordered):
        if has(models, claim.a) and has(models, claim.b):
            return models
    merged: Models = {}
    for models in ordered:
        merged.update(models)
    return merged


def judge(claim: Claim, models: Models) -> dict[str, Any]:
    row: dict[str, Any] = {**asdict(claim), "verdict": "not measured"}
    a = next((x for x in claim.a.split("|") if x in models), None)
    b = next((x for x in claim.b.split("|") if x in models), None)
    if a is None or b is None:
        missing = [x for x, found in ((claim.a, a), (claim.b, b)) if found is None]
        row["note"] = "no results for " + ", ".join(x.replace("|", " or ") for x in missing)
        return row
    row.update(a=a, b=b)
    (ra, ma), (rb, mb) = models[a], models[b]
    if claim.metric == "token_ratio":
        ta, tb = ma.get("cost", {}).get("tokens_per_text"), mb.get("cost", {}).get("tokens_per_text")
        if not ta or not tb:
            row["note"] = "token counts missing"
            return row
        ratio = tb / ta
        row.update(value=ratio, a_value=ta, b_value=tb, verdict="holds" if ratio <= claim.threshold else "fails")
        row["texts"] = "benchmark text mix" if mb.get("bench") else "suite texts"
        return row
    if claim.metric == "perplexity_ratio":
        pa, pb = (m.get("generation", {}).get("perplexity") for m in (ma, mb))
        if not pa or not pb:
            row["note"] = "perplexity missing (evaluate without --no-generation)"
            return row
        ratio = pb / pa
        holds = ratio <= claim.threshold if claim.relation == "<=" else ratio > claim.threshold
        row.update(value=ratio, a_value=pa, b_value=pb, verdict="holds" if holds else "fails")
        return row
    c = compare.compare_models((ra, ma), (rb, mb))
    mean = c["rows"].get("mean")
    if not mean or "diff" not in mean:
        row["note"] = "no task scored on the same data with per-item scores for both"
        return row
    lo, hi = mean["ci"]
    bound = claim.threshold if claim.relation == ">" else -claim.threshold
    verdict = "holds" if lo > bound else "fails" if hi < bound else "inconclusive"
    row.update(value=mean["diff"], ci=[lo, hi], a_value=mean["a"], b_value=mean["b"], tasks=mean["n"], verdict=verdict)
    return row


def judge_all(files: Sequence[str], claims: Sequence[Claim] = CLAIMS) -> list[dict[str, Any]]:
    per_file = collect(files)
    return [judge(c, _pick(c, per_file)) for c in claims]


def format_verdicts(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| claim | B vs A | metric | verdict | numbers |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if r["metric"] == "token_ratio":
            metric = f"tokens B / A ≤ {r['threshold']:.2f}"
            nums = (
                f"{r['b_value']:.1f} / {r['a_value']:.1f} = {r['value']:.2f} ({r['texts']})"
                if "value" in r
                else r.get("note", "")
            )
        elif r["metric"] == "perplexity_ratio":
            metric = f"perplexity B / A {r['relation']} {r['threshold']:.2f}"
            nums = f"{r['b_value']:.2f} / {r['a_value']:.2f} = {r['value']:.2f}" if "value" in r else r.get("note", "")
        else:
            margin = f" − {100 * r['threshold']:.0f}" if r["relation"] == ">=" and r["threshold"] else ""
            metric = f"mean B {r['relation']} A{margin}"
            nums = (
                f"{100 * r['b_value']:.2f} vs {100 * r['a_value']:.2f}: {100 * r['value']:+.2f} "
                f"[{100 * r['ci'][0]:+.2f}, {100 * r['ci'][1]:+.2f}] over {r['tasks']} tasks"
                if "ci" in r
                else r.get("note", "")
            )
        lines.append(f"| {r['text']} | {r['b']} vs {r['a']} | {metric} | **{r['verdict']}** | {nums} |")
    return "\n".join(lines) + "\n"
