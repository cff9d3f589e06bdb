"""Size the standard tier from measured per-item variance (docs/EVALUATION.md, "The standard tier").

    python scripts/size_standard.py RESULTS.json [...] [--target 1.5]

For every model and task of a pilot ``dec2vec eval`` run: the number of items, the bootstrap 95%
half-width of the task score, the per-item standard deviation it implies (half-width / 1.96 ×
sqrt(n)), and the tokens each item costs (the task's embedded LLM tokens / items, texts shared
with an earlier task count there). Then, per model, the half-width of the suite mean, and the item
counts that minimise it for the same token budget: with per-item sd s_i and cost c_i, the variance of
the mean, sum s_i^2 / n_i / T^2, is smallest at n_i proportional to s_i / sqrt(c_i). Tasks whose size
is fixed by their source (Lee STS: 50 documents) or that cost nothing extra (clustering reuses the
classification texts) keep their size.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from dec2vec.evaluation import stats

FIXED = {"lee-sts", "vital-topic-clustering"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--target", type=float, default=1.5, help="suite-mean 95%% half-width wanted, points")
    args = ap.parse_args()
    for f in args.results:
        res = json.loads(Path(f).read_text(encoding="utf-8"))
        for m in res["models"]:
            print(f"\n## {m['name']} ({f})\n")
            print("| task | items | score | 95% half-width | per-item sd | tokens / item | n for optimum |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            rows = []
            for name, t in m["tasks"].items():
                items = t.get("scores", {}).get("items")
                if not items:
                    continue
                n = stats.n_items(items)
                lo, hi = stats.task_ci(name, items)
                h = 50 * (hi - lo)
                sd = h / 1.96 * math.sqrt(n)
                tokens = t.get("embedded", {}).get("tokens", 0)
                rows.append((name, n, 100 * t["main_score"], h, sd, tokens / n if tokens else 0.0))
            fixed_var = sum(h * h for name, _, _, h, _, _ in rows if name in FIXED)
            free = [r for r in rows if r[0] not in FIXED and r[5] > 0]
            budget = sum(n * c for _, n, _, _, _, c in free)
            k = budget / max(1e-9, sum(sd * math.sqrt(c) for *_, sd, c in free))
            optimum = {name: k * sd / math.sqrt(c) for name, _, _, _, sd, c in free}
            for name, n, score, h, sd, c in rows:
                opt = f"{optimum[name]:.0f}" if name in optimum else "fixed"
                print(f"| {name} | {n} | {score:.2f} | {h:.2f} | {sd:.1f} | {c:.1f} | {opt} |")
            t_count = len(rows)
            now = math.sqrt(sum(r[3] ** 2 for r in rows)) / t_count
            boot = 50 * (m["mean_ci"][1] - m["mean_ci"][0]) if m.get("mean_ci") else float("nan")
            print(f"\nsuite mean ±{now:.2f} (normal approximation; the report's bootstrap: ±{boot:.2f})")
            if free:
                best_free = sum((1.96 * sd) ** 2 / optimum[name] for name, _, _, _, sd, _ in free)
                best = math.sqrt(fixed_var + best_free) / t_count
                room = (args.target * t_count) ** 2 - fixed_var
                scale = best_free / room if room > 0 else float("inf")
                print(
                    f"±{best:.2f} at the optimum for the same {budget:,.0f} item tokens; ±{args.target} needs "
                    f"about {scale:.2f}× that budget (tasks that embedded nothing new count as fixed)"
                )


if __name__ == "__main__":
    main()
