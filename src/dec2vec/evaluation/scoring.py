"""One task through mteb's own evaluators, and the per-item scores its main score averages."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from ..errors import InputError
from . import mteb_tasks, stats
from .encoders import MtebEncoder
from .plan import TaskPlan
from .tasks import ClassificationData, RetrievalData, STSData, TaskData


def _mteb_task(plan: TaskPlan, settings: mteb_tasks.Settings) -> Any:
    if plan.data is not None:
        return mteb_tasks.to_mteb(plan.data, settings)
    return plan.hub


def evaluate_task(encoder: MtebEncoder, plan: TaskPlan, settings: mteb_tasks.Settings) -> dict[str, Any]:
    """Run one task through mteb; returns the test split's score dict (mteb's keys)."""
    import mteb

    if plan.data is not None:
        encoder.prepare(plan.data.texts())
    task = _mteb_task(plan, settings)
    with tempfile.TemporaryDirectory(prefix="dec2vec-pred-") as pred:
        try:
            res = mteb.evaluate(
                encoder,
                task,
                cache=None,
                show_progress_bar=False,
                encode_kwargs={"batch_size": 64, "show_progress_bar": False},
                overwrite_strategy="always",
                prediction_folder=Path(pred) if plan.data is not None else None,
            )
        except Exception as e:
            if plan.data is None:
                raise InputError(
                    f"MTEB task '{plan.name}' could not run (its data comes from the Hugging Face hub): {e}"
                ) from e
            raise
        tr = res.task_results[0]
        split = "test" if "test" in tr.scores else next(iter(tr.scores))
        raw = dict(tr.scores[split][0])
        items = None
        if plan.data is not None:
            files = list(Path(pred).glob("*_predictions.json"))
            predictions = json.loads(files[0].read_text(encoding="utf-8")) if files else {}
            items = item_scores(plan.data, raw, predictions.get("default", {}).get(split))
    scores = {k: v for k, v in raw.items() if isinstance(v, int | float | str) or v is None}
    if items is not None:
        scores["items"] = items
    return scores


def item_scores(data: TaskData, raw: dict[str, Any], predictions: Any) -> dict[str, Any] | None:
    """Per-item scores (``stats``) from mteb's saved predictions: the items its main score averages."""
    d = data.data
    if isinstance(d, STSData) and predictions:
        return stats.sts_items(d.scores, predictions["cosine_scores"])
    if isinstance(d, ClassificationData) and predictions:
        classes = sorted(set(d.train_labels) | set(d.test_labels))
        y = mteb_tasks.label_ids(d.test_labels, classes)
        return stats.classification_items(y, predictions)
    if data.type == "clustering" and raw.get("v_measures"):
        runs = raw["v_measures"]
        flat = [v for level in (runs.values() if isinstance(runs, dict) else [runs]) for v in level]
        return stats.clustering_items(flat)
    if isinstance(d, RetrievalData) and predictions:
        return stats.retrieval_items(predictions, d.qrels)
    return None
