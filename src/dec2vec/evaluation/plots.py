"""The PNG plots of the ``dec2vec eval`` report: a score chart and 2-D maps of the embeddings.

matplotlib and scikit-learn are optional (the ``eval`` extra), so they are imported inside the
functions: importing dec2vec never needs them. The figures are bare ``Figure`` objects drawn by the
Agg canvas rather than pyplot figures. pyplot keeps every figure in a global registry (a leak over
a long report unless each is closed), and ``matplotlib.use("Agg")`` would, where pyplot is already
imported, switch the caller's backend and close their figures (a notebook). An Agg canvas needs no
display, whatever backend is selected, and leaves the caller's pyplot state alone.

Both plots are written atomically (temp file beside the target, then ``os.replace``) so that a
report folder never holds a half-written PNG.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import numpy as np

from ..foundations.files import atomic_path
from .tasks import TaskType

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 120
METHODS = ("tsne", "umap")
# Task types in the order the report lists them; a type not named here comes after, alphabetically.
_TYPE_ORDER = {t: i for i, t in enumerate(get_args(TaskType))}


def plot_scores(
    scores: Mapping[str, Mapping[str, float | None]],
    path: Path,
    *,
    title: str = "",
    task_types: Mapping[str, str] | None = None,
) -> Path:
    """A grouped bar chart of each model's main score per task; returns ``path``.

    ``scores[model][task]`` is the task's main score, or None where the task was not run for that
    model (its bar is left out, so a missing run never reads as a score of 0). One group per task,
    one bar per model in the order of ``scores``. With ``task_types`` the groups are ordered by type
    and the type is shown under each task name, so tasks of one kind sit side by side. The value
    axis is 0-1, extended below 0 only when a score is negative (a Spearman correlation can be).
    """
    models = list(scores)
    tasks = _ordered_tasks(scores, task_types or {})
    if not models or not tasks:
        raise ValueError("plot_scores: no scores to plot (need at least one model with one task)")

    values = np.full((len(models), len(tasks)), np.nan)  # (M, T); NaN = not run
    for i, model in enumerate(models):
        for j, task in enumerate(tasks):
            v = scores[model].get(task)
            if v is not None:
                values[i, j] = float(v)

    # Size from the counts: ~0.14 in per bar plus a gap per group keeps 12 models x 8 tasks legible.
    width = min(24.0, max(6.0, 2.0 + len(tasks) * (0.14 * len(models) + 0.45)))
    fig = _new_figure(width, 5.0)
    ax = fig.add_subplot()
    colors = _colors(len(models))
    group = 0.8  # of the unit space per task that the bars fill
    bar = group / len(models)
    x = np.arange(len(tasks))
    annotate = len(models) <= 6  # values on the bars only while they stay readable
    for i, model in enumerate(models):
        offset = -group / 2 + bar * (i + 0.5)
        bars = ax.bar(x + offset, values[i], bar, label=model, color=colors[i])
        if annotate:
            ax.bar_label(
                bars, labels=["" if np.isnan(v) else _fmt(v) for v in values[i]], fontsize=7, rotation=90, padding=2
            )
        for j in np.flatnonzero(np.isnan(values[i])):  # a visible gap, so "not run" never reads as 0
            ax.text(x[j] + offset, 0.0, "n/a", rotation=90, fontsize=7, color="dimgray", ha="center", va="bottom")

    finite = values[np.isfinite(values)]
    pad = 0.1 if annotate else 0.0  # room for the value labels
    low = min(0.0, math.floor(finite.min() * 10) / 10 - pad) if finite.size else 0.0
    high = max(1.0, float(finite.max()) + 0.05) if finite.size else 1.0
    ax.set_ylim(low, high + pad)
    if low < 0:
        ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(x, [_task_label(t, task_types) for t in tasks], fontsize=8)
    ax.set_xlim(-0.6, len(tasks) - 0.4)
    ax.set_ylabel("main score")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title)
    fig.legend(loc="outside right upper", fontsize=8, frameon=False)
    _save(fig, path)
    return path


def plot_embeddings(
    embeddings: Mapping[str, np.ndarray],
    labels: Sequence[str],
    path: Path,
    *,
    method: str = "tsne",
    seed: int = 0,
    title: str = "",
) -> dict[str, float]:
    """A 2-D map of each model's embeddings of the same texts, coloured by label; returns the silhouettes.

    One subplot per model (up to 4 per row), each point one text, with the same colour per label in
    every subplot and one shared legend. A t-SNE/UMAP picture cannot be compared across models by
    eye (the projection is free to stretch and move clusters), so each subplot is titled with the
    silhouette score of the ORIGINAL embeddings against the labels (cosine distance, the metric the
    embeddings are used with). That number, per model, is what is returned; it is NaN where it is
    undefined (fewer than 2 labels, or every text its own label).

    ``method`` is "tsne" (scikit-learn) or "umap" (needs the ``umap-learn`` package); both project
    the cosine-normalised rows, with ``seed`` fixed so that the report is reproducible.
    """
    if method not in METHODS:
        raise ValueError(f"plot_embeddings: unknown method {method!r}; use one of {', '.join(METHODS)}")
    if not embeddings:
        raise ValueError("plot_embeddings: no embeddings to plot")
    labels = [str(label) for label in labels]
    for model, matrix in embeddings.items():
        shape = np.shape(matrix)
        if len(shape) != 2:
            raise ValueError(f"plot_embeddings: embeddings of {model!r} must be a 2-D (texts, dim) array, got {shape}")
        if shape[0] != len(labels):
            raise ValueError(f"plot_embeddings: embeddings of {model!r} have {shape[0]} rows but {len(labels)} labels")
    if len(labels) < 3:
        raise ValueError(f"plot_embeddings: need at least 3 texts to project, got {len(labels)}")
    project = _projector(method, seed, len(labels))  # fails fast if umap is missing

    classes = list(dict.fromkeys(labels))  # first-seen order, so the legend follows the data
    colors = _colors(len(classes))
    label_array = np.asarray(labels)
    ncols = min(4, len(embeddings))
    nrows = math.ceil(len(embeddings) / ncols)
    fig = _new_figure(3.6 * ncols + 1.8, 3.6 * nrows + (0.5 if title else 0.0))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    size = float(np.clip(3000 / len(labels), 4, 30))  # smaller points as the texts grow in number

    silhouettes: dict[str, float] = {}
    for ax, (model, matrix) in zip(axes.flat, embeddings.items(), strict=False):
        x = np.asarray(matrix, dtype=np.float64)  # (n, D)
        silhouettes[model] = _silhouette(x, label_array, len(classes))
        points = project(_unit_rows(x))  # (n, 2)
        for k, cls in enumerate(classes):
            mask = label_array == cls
            ax.scatter(points[mask, 0], points[mask, 1], s=size, color=colors[k], label=cls, linewidths=0)
        ax.set_title(f"{model}\nsilhouette {_fmt(silhouettes[model], 3)}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[len(embeddings) :]:
        ax.set_axis_off()

    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles,
        names,
        loc="outside right upper",
        fontsize=8,
        frameon=False,
        markerscale=1.5,
        ncols=1 if len(classes) <= 25 else 2,
    )
    fig.suptitle(f"{title} ({'t-SNE' if method == 'tsne' else 'UMAP'})" if title else "")
    _save(fig, path)
    return silhouettes


def _ordered_tasks(scores: Mapping[str, Mapping[str, float | None]], task_types: Mapping[str, str]) -> list[str]:
    """Every task of any model, first-seen order, stably sorted by type when types are known."""
    tasks = list(dict.fromkeys(task for per_model in scores.values() for task in per_model))
    if not task_types:
        return tasks

    def key(task: str) -> tuple[int, str]:
        kind = task_types.get(task)
        if kind is None:
            return (len(_TYPE_ORDER) + 1, "")  # untyped tasks last
        return (_TYPE_ORDER.get(kind, len(_TYPE_ORDER)), "" if kind in _TYPE_ORDER else kind)

    return sorted(tasks, key=key)


def _task_label(task: str, task_types: Mapping[str, str] | None) -> str:
    kind = (task_types or {}).get(task)
    return f"{task}\n({kind})" if kind else task


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}f}"


def _colors(n: int) -> list[Any]:
    """``n`` distinct colours: tab10 up to 10, tab20 up to 20, then evenly spaced hues."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["turbo"](i / (n - 1)) for i in range(n)]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, so that the projection sees cosine geometry; zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)  # (n, 1)
    return x / np.where(norms > 0, norms, 1.0)


def _silhouette(x: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    from sklearn.metrics import silhouette_score

    if not 2 <= n_classes <= len(labels) - 1:  # silhouette_score's own precondition
        return math.nan
    return float(silhouette_score(x, labels, metric="cosine"))


def _projector(method: str, seed: int, n: int) -> Any:
    """A function from (n, D) rows to (n, 2) points, built once and reused for every model."""
    if method == "umap":
        try:
            import umap
        except ImportError as e:
            raise ImportError("plot_embeddings(method='umap') needs the umap package: pip install umap-learn") from e

        def by_umap(x: np.ndarray) -> np.ndarray:
            reducer = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed)
            return np.asarray(reducer.fit_transform(x))

        return by_umap

    from sklearn.manifold import TSNE

    def by_tsne(x: np.ndarray) -> np.ndarray:
        # perplexity ~ the number of effective neighbours; it must stay well below n for small sets.
        tsne = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30.0, (n - 1) / 3))
        return tsne.fit_transform(x)

    return by_tsne


def _new_figure(width: float, height: float) -> Figure:
    """A figure on an Agg canvas, outside pyplot (see the module docstring for why)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    """Write beside the target, then rename over it: a reader sees the old PNG or the new one, never half."""
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")


def plot_by_length(
    report: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]], path: Path, *, title: str = ""
) -> Path:
    """Quality against text length: one panel per task, x = length bucket, one line per model.

    ``report`` is :func:`dec2vec.evaluation.lengths.length_report`'s: model -> task -> bucket ->
    {n, score}. Buckets without a score (too few items) are gaps, not zeros.
    """
    from .lengths import BUCKETS

    tasks = sorted({t for per in report.values() for t in per})
    if not tasks:
        raise ValueError("plot_by_length: no per-bucket scores to plot")
    order = [b for b, _, _ in BUCKETS]
    fig = _new_figure(4.2 * len(tasks), 3.6)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    colors = _colors(len(report))
    for ax, task in zip(axes, tasks, strict=True):
        used = [b for b in order if any(b in per.get(task, {}) for per in report.values())]
        x = np.arange(len(used))
        for color, (model, per) in zip(colors, report.items(), strict=True):
            cells = per.get(task, {})
            y = [cells[b]["score"] if b in cells and cells[b]["score"] is not None else np.nan for b in used]
            ax.plot(x, y, marker="o", color=color, label=model)
        ax.set_xticks(
            x,
            [f"{b}\n(n={max(per.get(task, {}).get(b, {}).get('n', 0) for per in report.values())})" for b in used],
            fontsize=7,
        )
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("text length (proxy tokens)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("score ×100", fontsize=8)
    axes[-1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return path
