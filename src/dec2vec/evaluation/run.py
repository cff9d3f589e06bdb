"""``dec2vec eval``: every model through every task with mteb, plus cost and generation retention.

Models are loaded one at a time. Each (model, task) result is written to a result cache as soon as
it is computed (``cache.py``), keyed by the model's weights digest, the task file's sha256, the
settings and mteb's version: an interrupted run resumes where it stopped, and the baselines that
every report carries (LSA, MiniLM, each untrained recipe) are computed once per machine, not once
per report. Which tasks run is planned first (``plan.py``); each is scored by mteb (``scoring.py``).
"""

from __future__ import annotations

import gc
import inspect
import logging
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..foundations.fingerprint import module_digest
from ..foundations.provenance import library_versions
from . import mteb_tasks, stats
from .cache import ResultCache
from .datasets import load_task
from .encoders import LSA, MINILM, MPNET, BaselineMissing, Dec2VecTextModel, MtebEncoder, load_model
from .plan import TaskPlan, plan_tasks
from .scoring import evaluate_task

log = logging.getLogger(__name__)

REVISION = 3  # of how scores are computed here; part of every result-cache key (3: per-item scores)
PLOT_TASK = "vital-topic-clustering"  # the labelled set drawn in the t-SNE figure


def default_baselines() -> list[str]:
    """What every report carries: LSA, MiniLM, untrained ``mean`` and ``echo`` on the default backbone and encoder,
    and all-mpnet-base-v2 (``mpnet``); a baseline whose packages are not installed is skipped with a
    message (``dec2vec models pull all-mpnet-base-v2``)."""
    return [LSA, MINILM, MPNET, "mean", "echo"]


@dataclass
class EvalConfig:
    models: list[str]
    tasks: list[str] = field(default_factory=lambda: ["quick"])
    baselines: list[str] = field(default_factory=default_baselines)
    out: Path = Path("eval-report")
    quick: bool = False  # run named dec2vec tasks in their quick variant
    tier: str | None = None  # "quick", "standard" or "full": the variant of named dec2vec tasks (overrides quick)
    dtype: str | None = None  # dec2vec models' weights and compute: float32 (default on CPU) or bfloat16
    quantize: str | None = None  # int8: dec2vec models' linear layers quantized for the CPU (dec2vec.quantize)
    instructions: bool = True
    generation: bool = True
    plots: bool = True
    device: str | None = None
    cache_dir: Path | None = None  # results cache; default $DEC2VEC_HOME/eval-results
    use_cache: bool = True  # False: recompute every result (and replace the cached ones)


def versions() -> dict[str, str]:
    """The provenance record of a report (``results.json`` ``versions``): the core libraries and
    those its scores depend on."""
    return library_versions(("mteb", "scikit-learn", "numpy", "datasets"))


def machine(device: str | None) -> dict[str, str]:
    from ..device import describe_machine, pick_device

    return describe_machine(pick_device(device))


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _quiet_libraries() -> None:
    """mteb and datasets print a progress bar per corpus chunk; our own progress lines replace them."""
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    logging.getLogger("mteb").setLevel(logging.WARNING)


def _plot_texts(plans: list[TaskPlan]) -> tuple[list[str], list[str]] | None:
    """The labelled texts drawn in the t-SNE figure: the quick clustering set (154 summaries)."""
    data = load_task(PLOT_TASK, quick=True).data
    return list(data.texts), list(data.labels)  # type: ignore[union-attr]


def run(cfg: EvalConfig, say: Callable[[str], None] = _say) -> dict[str, Any]:
    """Evaluate every model on every task; writes results.json, report.md and plots to ``cfg.out``."""
    from . import report

    t_start = time.perf_counter()
    _quiet_libraries()
    warnings.filterwarnings("ignore", message=".*(ill-defined|zero_division).*")  # sklearn, tiny quick test sets
    specs = list(dict.fromkeys([*cfg.baselines, *cfg.models]))
    if not specs:  # before the tasks load: that takes a while
        raise InputError("no models to evaluate: give --models and/or --baselines")
    plans = plan_tasks(cfg.tasks, cfg.tier or cfg.quick)
    tiers = {p.tier for p in plans if p.data is not None}
    suite = tiers.pop() if len(tiers) == 1 else "full"  # mixed tiers (or hub tasks only): full settings
    settings = mteb_tasks.settings_for(suite)
    cache = ResultCache(cfg.cache_dir, cfg.use_cache)
    instructions = mteb_tasks.INSTRUCTIONS if cfg.instructions else {}
    import mteb

    common = {"settings": settings.to_json(), "mteb": mteb.__version__, "revision": REVISION}
    texts_labels = _plot_texts(plans) if cfg.plots else None
    results: list[dict[str, Any]] = []
    cached = 0
    steps, step = len(specs) * len(plans), 0
    say(f"dec2vec eval: {len(specs)} models x {len(plans)} tasks ({suite} settings) -> {cfg.out}")
    skipped: list[dict[str, str]] = []
    for spec in specs:
        t_load = time.perf_counter()
        try:
            model = load_model(
                spec, text_tokens=settings.max_length, device=cfg.device, dtype=cfg.dtype, quantize=cfg.quantize
            )
        except BaselineMissing as e:
            if spec not in cfg.baselines or spec in cfg.models:
                raise InputError(str(e)) from e
            say(f"skipped baseline {spec}: {e}")
            skipped.append({"spec": spec, "reason": str(e)})
            continue
        encoder = MtebEncoder(model, instructions)
        ident = model.identity()
        entry: dict[str, Any] = {"spec": spec, **model.describe(), "identity": ident, "tasks": {}, "load_seconds": 0.0}
        entry["load_seconds"] = round(time.perf_counter() - t_load, 2)
        for plan in plans:
            step += 1
            key = cache.key(
                model=ident,
                task=plan.name,
                quick=plan.quick if plan.tier != "standard" else "standard",
                data=plan.sha256,
                **common,
                instruction=instructions.get(plan.name) if model.uses_instructions else None,
            )
            hit = cache.get(key) if plan.data is not None else None
            if plan.data is None and model.fits_per_task:
                entry["tasks"][plan.name] = {
                    "type": plan.type,
                    "quick": False,
                    "main_score": None,
                    "skipped": "LSA fits on a dec2vec task's texts; not run on hub tasks",
                }
                say(f"[{step}/{steps}] {model.name} · {plan.name}: skipped (LSA runs on dec2vec tasks only)")
                continue
            if hit is None:
                before = (encoder.cost.texts, encoder.cost.tokens, encoder.cost.seconds)
                t0 = time.perf_counter()
                scores = evaluate_task(encoder, plan, settings)
                hit = {
                    "scores": scores,
                    "main_score": float(scores["main_score"]),
                    "main_metric": scores.get("main_score_name") or mteb_tasks.MAIN_SCORE.get(plan.type, "main_score"),
                    "seconds": round(time.perf_counter() - t0, 2),
                    "embedded": {
                        "texts": encoder.cost.texts - before[0],
                        "tokens": encoder.cost.tokens - before[1],
                        "seconds": round(encoder.cost.seconds - before[2], 3),
                    },
                }
                if plan.data is not None:
                    cache.put(key, hit)
                how = f"{hit['seconds']:.1f} s"
            else:
                how = "cached"
                cached += 1
            ci = stats.task_ci(plan.name, hit["scores"].get("items"))
            entry["tasks"][plan.name] = {"type": plan.type, "quick": plan.quick, "tier": plan.tier, **hit, "ci": ci}
            width = f" ±{50 * (ci[1] - ci[0]):.1f}" if ci else ""
            say(f"[{step}/{steps}] {model.name} · {plan.name}: {hit['main_score']:.4f}{width} ({how})")
        entry["mean_ci"] = stats.mean_ci(
            {n: t.get("scores", {}).get("items") for n, t in entry["tasks"].items() if not t.get("skipped")}
        )
        entry["cost"] = _cost(entry["tasks"])
        if cfg.plots and texts_labels is not None:
            entry["plot_embeddings"] = _plot_embeddings(cache, encoder, ident, texts_labels[0], instructions, common)
        if cfg.generation and model.generates:
            entry["generation"] = _generation(cache, model, suite != "full", say)
        results.append(entry)
        del encoder, model
        gc.collect()
    out = {
        "suite": suite,
        "skipped_models": skipped,
        "bootstrap": {"replicates": stats.N_BOOT, "seed": stats.SEED, "level": stats.LEVEL, "interval": "percentile"},
        "tasks": [
            {
                "name": p.name,
                "type": p.type,
                "quick": p.quick,
                "tier": p.tier,
                "sha256": p.sha256,
                "stats": p.data.stats if p.data else None,
            }
            for p in plans
        ],
        "settings": settings.to_json(),
        "instructions": instructions,
        "versions": versions(),
        "machine": machine(cfg.device),
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        "cached_results": cached,
        "compute_seconds": round(
            sum(t.get("seconds", 0.0) for m in results for t in m["tasks"].values())
            + sum(m.get("generation", {}).get("seconds", 0.0) for m in results),
            1,
        ),
        "models": results,
    }
    report.write(out, cfg.out, texts_labels[1] if texts_labels else None, plots=cfg.plots)
    say(f"wrote {cfg.out / 'report.md'} ({out['wall_seconds']:.0f} s)")
    return out


def _cost(tasks: dict[str, Any]) -> dict[str, float | int | None]:
    done = [t["embedded"] for t in tasks.values() if "embedded" in t]
    texts = sum(t["texts"] for t in done)
    tokens = sum(t["tokens"] for t in done)
    seconds = sum(t["seconds"] for t in done)
    return {
        "texts": texts,
        "tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_text": round(tokens / texts, 1) if texts and tokens else None,
        "texts_per_second": round(texts / seconds, 1) if seconds > 0 else None,
    }


def _plot_embeddings(
    cache: ResultCache,
    encoder: MtebEncoder,
    ident: str,
    texts: list[str],
    instructions: dict[str, str],
    common: dict[str, Any],
) -> list[list[float]]:
    instruction = encoder.instruction(PLOT_TASK, "Clustering", None)
    key = cache.key(model=ident, plot=texts, instruction=instruction, **common)
    hit = cache.get(key)
    if hit is None:
        encoder.prepare(texts)  # LSA: fit on the plotted texts themselves, as for a task
        vecs = encoder.embed(texts, instruction)
        hit = {"embeddings": np.round(vecs.astype(np.float64), 6).tolist()}
        cache.put(key, hit)
    return hit["embeddings"]


def _generation(cache: ResultCache, model: Dec2VecTextModel, quick: bool, say: Callable[[str], None]) -> dict[str, Any]:
    from . import generation

    emb = model.embedder
    key = cache.key(
        backbone=_backbone_digest(emb),
        generation=1,
        quick=quick,
        texts=generation.QUICK_TEXTS if quick else generation.FULL_TEXTS,
        source=inspect.getsource(generation),  # any change to how it is measured invalidates the cache
    )
    hit = cache.get(key)
    if hit is None:
        hit = generation.generation_retention(emb, quick=quick).to_json()
        cache.put(key, hit)
    say(f"      {model.name} · generation: perplexity {hit['perplexity']:.2f} on {hit['tokens']} held-out tokens")
    return hit


def _backbone_digest(emb: Any) -> str:
    return module_digest(emb.backbone, {"kind": "backbone"})
