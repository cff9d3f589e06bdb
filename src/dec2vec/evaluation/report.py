"""The ``dec2vec eval`` outputs: ``results.json`` (every score, settings, versions), ``report.md``
(models x tasks with per-type and overall averages, as MTEB's leaderboard lays them out; cost and
generation retention) and the PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..foundations.files import write_atomic

TYPE_ORDER = ["sts", "classification", "clustering", "retrieval", "reranking"]
SHORT = {
    "lee-sts": "Lee STS",
    "vital-topic-classification": "Vital cls",
    "rotten-tomatoes-classification": "RT cls",
    "vital-topic-clustering": "Vital clu",
    "wiki-description-retrieval": "Wiki ret",
    "news-title-retrieval": "News ret",
    "wiki-description-reranking": "Wiki rerank",
    "news-passage-retrieval": "Passage ret",
    "news-paragraph-sts": "Paragraph STS",
    "wordnet-word-sts": "Word STS",
}


def _type_key(t: str) -> int:
    t = t.lower()
    return TYPE_ORDER.index(t) if t in TYPE_ORDER else len(TYPE_ORDER)


def ordered_tasks(result: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(result["tasks"], key=lambda t: _type_key(t["type"]))


def averages(model: dict[str, Any], tasks: list[dict[str, Any]]) -> dict[str, float | None]:
    """Per-type means, then ``mean (task)`` over all tasks and ``mean (type)`` over type means (MTEB's two)."""
    by_type: dict[str, list[float]] = {}
    for t in tasks:
        r = model["tasks"].get(t["name"])
        score = r.get("main_score") if r else None
        by_type.setdefault(t["type"].lower(), []).append(math.nan if score is None else score)
    out: dict[str, float | None] = {}
    for typ, vals in by_type.items():
        out[typ] = None if any(math.isnan(v) for v in vals) else float(np.mean(vals))
    every = [v for vals in by_type.values() for v in vals]
    out["mean (task)"] = None if any(math.isnan(v) for v in every) else float(np.mean(every))
    type_means = [v for k, v in out.items() if k in by_type]
    out["mean (type)"] = None if any(v is None for v in type_means) else float(np.mean(type_means))  # type: ignore[arg-type]
    return out


def _pct(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def scores_table(result: dict[str, Any]) -> str:
    tasks = ordered_tasks(result)
    types = list(dict.fromkeys(t["type"].lower() for t in tasks))
    head = ["model", *[f"{SHORT.get(t['name'], t['name'])}<br>({t['type']})" for t in tasks]]
    head += [f"avg {typ}" for typ in types] + ["**mean (task)**", "95% CI", "mean (type)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    for m in result["models"]:
        avg = averages(m, tasks)
        cells = [m["name"]]
        cells += [_pct(m["tasks"].get(t["name"], {}).get("main_score")) for t in tasks]
        cells += [_pct(avg[typ]) for typ in types] + [f"**{_pct(avg['mean (task)'])}**", _ci(m.get("mean_ci"))]
        cells += [_pct(avg["mean (type)"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _ci(ci: list[float] | None) -> str:
    return "–" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def ci_table(result: dict[str, Any]) -> str:
    """95% bootstrap interval of every task score and of the mean, with its half-width (×100)."""
    tasks = ordered_tasks(result)
    if not any(m.get("mean_ci") or any(t.get("ci") for t in m["tasks"].values()) for m in result["models"]):
        return ""
    head = ["model", *[SHORT.get(t["name"], t["name"]) for t in tasks], "**mean (task)**"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    for m in result["models"]:
        cells = [m["name"]]
        for t in tasks:
            ci = m["tasks"].get(t["name"], {}).get("ci")
            cells.append(f"{_ci(ci)} ±{50 * (ci[1] - ci[0]):.1f}" if ci else "–")
        ci = m.get("mean_ci")
        cells.append(f"**{_ci(ci)} ±{50 * (ci[1] - ci[0]):.2f}**" if ci else "–")
        lines.append("| " + " | ".join(cells) + " |")
    first = next((m for m in result["models"] if m["tasks"]), None)
    units = []
    for t in tasks:
        items = (first or {}).get("tasks", {}).get(t["name"], {}).get("scores", {}).get("items") if first else None
        if items:
            n = len(items.get("values") or items.get("gold") or [])
            units.append(f"{SHORT.get(t['name'], t['name'])}: {n} {items['unit']}s")
    return "\n".join(lines) + "\n" + ("\nItems resampled: " + "; ".join(units) + ".\n" if units else "")


def retrieval_table(result: dict[str, Any]) -> str:
    tasks = [t for t in ordered_tasks(result) if t["type"].lower() in ("retrieval", "reranking")]
    if not tasks:
        return ""
    metrics = [("ndcg_at_10", "nDCG@10"), ("recall_at_10", "R@10"), ("mrr_at_10", "MRR@10")]
    head = ["model"] + [f"{SHORT.get(t['name'], t['name'])} {label}" for t in tasks for _, label in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    for m in result["models"]:
        cells = [m["name"]]
        for t in tasks:
            s = m["tasks"].get(t["name"], {}).get("scores", {})
            cells += [_pct(s.get(k)) for k, _ in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cost_table(result: dict[str, Any]) -> str:
    lines = [
        "| model | LLM tokens / text | texts / s | texts embedded | encode s | dim |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in result["models"]:
        c = m.get("cost", {})
        tpt = c.get("tokens_per_text")
        tps = c.get("texts_per_second")
        lines.append(
            f"| {m['name']} | {tpt if tpt is not None else '–'} | {tps if tps is not None else '–'} | "
            f"{c.get('texts', 0):,} | {c.get('seconds', 0):.1f} | {m.get('embedding_dim', '–')} |"
        )
    return "\n".join(lines) + "\n"


def generation_table(result: dict[str, Any]) -> str:
    rows = [m for m in result["models"] if m.get("generation")]
    if not rows:
        return ""
    lines = ["| model(s) | perplexity | held-out tokens | chat answer |", "|---|---:|---:|---|"]
    groups: dict[str, list[dict[str, Any]]] = {}  # models sharing a backbone share one row
    for m in rows:
        groups.setdefault(json.dumps(m["generation"]["continuations"]) + str(m["generation"]["perplexity"]), []).append(
            m
        )
    for members in groups.values():
        m = members[0]
        g = m["generation"]
        chat = next((c["continuation"] for c in g["continuations"] if c.get("kind") == "chat"), "")
        if not chat and g["continuations"]:
            chat = g["continuations"][-1]["continuation"]
        chat = " ".join(chat.split()).replace("|", "\\|")[:120]
        names = ", ".join(x["name"] for x in members)
        lines.append(f"| {names} | {g['perplexity']:.2f} | {g['tokens']:,} | {chat} |")
    return "\n".join(lines) + "\n"


def continuations(result: dict[str, Any]) -> str:
    """Greedy continuations of each distinct backbone (untrained recipes share one)."""
    seen: set[str] = set()
    parts = []
    for m in result["models"]:
        g = m.get("generation")
        if not g:
            continue
        sig = json.dumps(g["continuations"], sort_keys=True)
        if sig in seen:
            continue
        seen.add(sig)
        parts.append(f"**{m['name']}**\n")
        for c in g["continuations"]:
            prompt = " ".join(c["prompt"].split())
            prompt = prompt if len(prompt) <= 160 else "…" + prompt[-159:]
            parts.append(f"- `{prompt}` → {' '.join(c['continuation'].split())}")
        parts.append("")
    return "\n".join(parts)


def markdown(result: dict[str, Any], silhouettes: dict[str, float] | None = None, n_plotted: int = 0) -> str:
    v, mach = result["versions"], result["machine"]
    out = [
        f"# dec2vec evaluation report ({result['suite']} suite)\n",
        f"Main score per task (×100): Spearman of cosine (STS), accuracy (classification), V-measure "
        f"(clustering), nDCG@10 (retrieval, reranking); computed by mteb {v.get('mteb')}'s evaluators. "
        f"Machine: {mach.get('gpu') or mach['cpu']} ({mach['device']}, {mach['torch_threads']} threads). "
        f"This invocation took {result['wall_seconds']:.0f} s wall, with {result.get('cached_results', 0)} of "
        f"{sum(len(m['tasks']) for m in result['models'])} results read from the result cache; computing every "
        f"result (tasks and generation, model loading excluded) took {result.get('compute_seconds', 0):.0f} s.\n",
        scores_table(result),
    ]
    if skipped := result.get("skipped_models"):
        out += ["\n" + "".join(f"Skipped baseline `{x['spec']}`: {x['reason']}.\n" for x in skipped)]
    if t := ci_table(result):
        b = result.get("bootstrap", {})
        out += [
            "\n## 95% confidence intervals\n",
            f"Percentile bootstrap over each task's test items ({b.get('replicates')} replicates, seed "
            f"{b.get('seed')}): queries (retrieval, reranking: nDCG@10 per query), pairs (STS: Spearman "
            "recomputed on the resampled pairs), test texts (classification), k-means runs (clustering). The "
            "mean's interval resamples every task at once. Compare two models with `dec2vec eval --compare`, "
            "which resamples the same items for both.\n",
            t,
        ]
    if t := retrieval_table(result):
        out += ["\n## Retrieval and reranking detail\n", t]
    out += [
        "\n## Cost\n",
        "Tokens the LLM (or MiniLM) processes per text, template and instruction included, and encode "
        "throughput, over every text this run embedded (texts shared by several tasks count once).\n",
        cost_table(result),
    ]
    if g := generation_table(result):
        out += [
            "\n## Generation retention\n",
            "Perplexity of the backbone's own LM head (causal attention) on held-out news bodies, "
            "and its greedy answers. Untrained recipes share one backbone.\n",
            g,
            "\n",
            continuations(result),
        ]
    if silhouettes:
        out += [
            "\n## Plots\n",
            "![scores](scores.png)\n",
            "![t-SNE of the quick Vital Articles set by topic](tsne.png)\n",
            f"Silhouette (cosine) of those {n_plotted} summaries by topic: "
            + ", ".join(f"{k} {v:.3f}" for k, v in silhouettes.items())
            + "\n",
        ]
    s = result["settings"]
    out += [
        "\n## Settings\n",
        "- tasks: " + ", ".join(f"`{t['name']}`{' (quick)' if t['quick'] else ''}" for t in result["tasks"]),
        f"- classification: logistic regression (mteb default) on {s['samples_per_label']} training texts "
        f"per label, {s['n_experiments']} experiment(s), mean reported",
        f"- clustering: {s['clustering_max_documents'] or 'all'} texts embedded, {s['clustering_bootstraps']} "
        f"MiniBatchKMeans runs on {s['clustering_sample']} texts drawn with replacement, mean V-measure",
        f"- at most {s['max_length']} tokens of each text (template, instruction and echo's repeat on top); "
        f"task seed {s['seed']}",
        "- instructions (queries of retrieval tasks, every text of the others): "
        + ("on" if result["instructions"] else "off"),
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
    ]
    return "\n".join(out)


def write(result: dict[str, Any], folder: Path, labels: list[str] | None, plots: bool = True) -> None:
    """results.json, report.md and (with ``plots``) scores.png and tsne.png in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    silhouettes = None
    if plots:
        from .plots import plot_embeddings, plot_scores

        tasks = ordered_tasks(result)
        plot_scores(
            {
                m["name"]: {t["name"]: m["tasks"].get(t["name"], {}).get("main_score") for t in tasks}
                for m in result["models"]
            },
            folder / "scores.png",
            title=f"dec2vec eval ({result['suite']} suite): main score per task",
            task_types={t["name"]: t["type"].lower() for t in tasks},
        )
        embs = {
            m["name"]: np.asarray(m["plot_embeddings"], dtype=np.float32)
            for m in result["models"]
            if m.get("plot_embeddings")
        }
        if embs and labels:
            silhouettes = plot_embeddings(
                embs, labels, folder / "tsne.png", title="Vital Articles (quick set) by topic"
            )
            for m in result["models"]:
                if m["name"] in silhouettes:
                    m["silhouette"] = silhouettes[m["name"]]
    slim = {**result, "models": [{k: v for k, v in m.items() if k != "plot_embeddings"} for m in result["models"]]}
    write_atomic(folder / "results.json", json.dumps(slim, indent=2, default=float) + "\n")
    write_atomic(folder / "report.md", markdown(result, silhouettes, len(labels or [])))
