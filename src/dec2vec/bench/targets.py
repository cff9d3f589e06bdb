"""The speed targets a bench run is judged by, and the quality cost of each CPU inference mode.

Targets (issue: speed where users run it): Causal2Vec at >= 90 % of mean's texts/s on the same
texts and mode (its light encoder and extra token should cost little), and every plain recipe at
>= 2x sentence-transformers fp32 on the same backbone and pooling. A mode (bf16, int8) may become
the CPU default only if its standard-suite score is not worse than fp32's with a paired 95 % CI
that excludes a loss of 0.5 points; among those, the fastest is chosen.
"""

from __future__ import annotations

from typing import Any

C2V_OVER_MEAN = 0.90  # target 1: Causal2Vec texts/s over mean's, same texts and mode
OVER_ST = 2.0  # target 2: a plain recipe's texts/s over sentence-transformers fp32, same backbone and pooling
MAX_LOSS = 0.005  # the default mode's quality: its CI against fp32 must exclude a loss of 0.5 points


def modes_of(result: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(r.get("mode") for r in result["recipes"]))


def check_quality(quality: dict[str, str]) -> None:
    """Refuse a ``--quality`` set without its fp32 reference or without a mode to compare with it."""
    from ..errors import InputError

    if "fp32" not in quality or len(quality) < 2:
        raise InputError("--quality needs fp32=RESULTS and at least one other mode: they are compared with fp32")


def mode_quality(quality: dict[str, str]) -> dict[str, Any]:
    """Each mode's standard-suite mean against fp32's: paired bootstrap CI over the same items.

    ``quality`` maps a mode to an evaluation result (``results.json`` or its folder, ``FILE:MODEL``)
    of the same model in that mode; the fp32 entry is the reference. Running the suite takes 10-20
    minutes per mode on a small CPU, so the bench reads results rather than evaluating.
    """
    from ..evaluation.compare import compare_models, find_model

    check_quality(quality)
    ref = find_model(quality["fp32"])
    out: dict[str, Any] = {}
    for mode, where in quality.items():
        if mode == "fp32":
            continue
        row = compare_models(ref, find_model(where))["rows"]["mean"]
        out.setdefault("fp32", {"source": quality["fp32"], "score": row["a"]})
        lo, hi = row["ci"]
        out[mode] = {
            "source": where,
            "score": row["b"],
            "diff": row["diff"],
            "ci": [lo, hi],
            "not_worse_by_max_loss": lo > -MAX_LOSS,
        }
    return out


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue targets 1 and 2 per mode, met or missed, and the default mode the quality rule picks."""
    out: list[dict[str, Any]] = []
    st = {b["same_as"]: b for b in result["baselines"] if b.get("same_as")}
    for mode in modes_of(result):
        by = {r["name"]: r for r in result["recipes"] if r.get("mode") == mode}
        if "causal2vec" in by and "mean" in by:
            value = by["causal2vec"]["texts_per_s"] / by["mean"]["texts_per_s"]
            out.append(_target(f"[{mode}] Causal2Vec texts/s >= {C2V_OVER_MEAN:.0%} of mean's", value, C2V_OVER_MEAN))
        for recipe, base in st.items():
            if recipe in by:
                value = by[recipe]["texts_per_s"] / base["texts_per_s"]
                out.append(_target(f"[{mode}] {recipe} texts/s >= {OVER_ST:g}x {base['name']}", value, OVER_ST))
    quality = result.get("quality")
    if quality:
        speed = {m: by_mode_speed(result, m) for m in quality}
        fine = [m for m, q in quality.items() if m == "fp32" or q["not_worse_by_max_loss"]]
        best = max(fine, key=lambda m: speed[m])
        out.append(
            {
                "target": f"default CPU mode: fastest whose suite CI excludes a {100 * MAX_LOSS:.1f}-point loss",
                "measured": best,
                "verdict": "chosen",
            }
        )
    return out


def by_mode_speed(result: dict[str, Any], mode: str) -> float:
    """A mode's speed for choosing among modes: the summed texts/s of its recipes (0 if not run)."""
    return sum(r["texts_per_s"] for r in result["recipes"] if r.get("mode") == mode)


def _target(name: str, value: float, bar: float) -> dict[str, Any]:
    return {"target": name, "measured": f"{value:.2f}", "verdict": "met" if value >= bar else "missed"}
