"""One benchmark run: every recipe and the sentence-transformers baselines on the same texts.

Per recipe it reports the backbone tokens per text (template, few-shot prefix and Contextual token
included), texts/s, real (non-pad) tokens/s, the padding fraction of its batches, the peak memory
the encode added and, where asked, MFU against the measured matmul rate. The light encoder's
share of Causal2Vec's time is measured by running it alone over the same batches.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import models
from ..device import default_max_tokens, describe_machine, pick_device, pick_dtype
from ..embedder import Embedder
from ..engine import plan_batches
from ..foundations.files import write_atomic
from ..foundations.provenance import library_versions
from ..pipeline import TruncationWarning
from ..recipes import get_recipe, recipe_names
from . import baselines, flops, texts
from .measure import measure, synchronize
from .targets import mode_quality, modes_of, targets


@dataclass
class BenchOptions:
    recipes: list[str] = field(default_factory=recipe_names)
    n: int = 1000
    sweep: list[int] = field(default_factory=lambda: [32, 128, 512])
    sweep_n: int = 64
    sweep_recipes: list[str] = field(default_factory=lambda: ["mean"])
    device: str | None = None
    dtype: str = "auto"
    backbone: str = models.DEFAULT_BACKBONE
    encoder: str = models.DEFAULT_ENCODER
    texts_file: str | None = None
    max_tokens: int | None = None
    packed: bool | None = None
    compile: bool = False
    st_batch_sizes: list[int] = field(default_factory=lambda: [32])
    st_recipes: list[str] = field(default_factory=lambda: ["mean", "last-token"])  # compared with sentence-transformers
    baselines: bool = True
    minilm: bool = True
    mfu: bool | None = None  # default: on CUDA
    warmup: int = 64
    seed: int = 0
    # CPU inference modes to run every recipe in (fp32, bf16, int8); empty: one run in ``dtype``.
    # With modes, sentence-transformers runs in float32: the yardstick the speed target names.
    modes: list[str] = field(default_factory=list)
    quality: dict[str, str] = field(default_factory=dict)  # mode -> eval results (``dec2vec eval --out``) of it


MODES = {"fp32": ("float32", None), "bf16": ("bfloat16", None), "int8": ("float32", "int8")}


def _row(name: str, seconds: float, n: int, real_tokens: int, padded_tokens: int, peak: int) -> dict[str, Any]:
    return {
        "name": name,
        "texts": n,
        "seconds": seconds,
        "texts_per_s": n / seconds,
        "llm_tokens_per_text": real_tokens / n,
        "real_tokens_per_s": real_tokens / seconds,
        "padding_fraction": 1 - real_tokens / padded_tokens if padded_tokens else 0.0,
        "peak_memory_mb": peak / 2**20,
    }


def _padded_tokens(lengths: list[int], budget: int, packed: bool) -> int:
    if packed:
        return sum(lengths)
    return sum(len(b) * max(lengths[i] for i in b) for b in plan_batches(lengths, budget, 1 << 30))


def _encoder_seconds(emb: Embedder, items: list[str], lengths: list[int], budget: int) -> float:
    """Time of Causal2Vec's light encoder alone over the batches encode makes (inputs ready on the device)."""
    assert emb.encoder is not None
    batches = plan_batches(lengths, budget, 1 << 30)
    feats = [{k: v.to(emb.device) for k, v in emb.encoder.tokenize([items[i] for i in b]).items()} for b in batches]
    with torch.inference_mode():
        emb.encoder(feats[0]["encoder_input_ids"], feats[0]["encoder_attention_mask"])  # warm-up
        synchronize(emb.device)
        t = time.perf_counter()
        for f in feats:
            emb.encoder(f["encoder_input_ids"], f["encoder_attention_mask"])
        synchronize(emb.device)
    return time.perf_counter() - t


def bench_recipe(
    name: str,
    items: list[str],
    opts: BenchOptions,
    device: torch.device,
    peak_rate: float | None,
    token_sets: dict[str, list[str]] | None = None,
    mode: str | None = None,
) -> tuple[dict[str, Any], Embedder]:
    encoder = opts.encoder if get_recipe(name).contextual_token else None
    dtype, quantize = MODES[mode] if mode else (opts.dtype, None)
    emb = Embedder.from_recipe(name, opts.backbone, encoder, device=device, dtype=dtype, quantize=quantize)
    if opts.compile:
        emb.compile()
    budget = opts.max_tokens or default_max_tokens(emb.device)
    packed = emb.can_pack() if opts.packed is None else opts.packed
    # warm-up: kernels, caches; a compiled model sees every shape once (recompiles are not what we time)
    emb.encode(items if opts.compile else items[: opts.warmup], max_tokens=budget, packed=packed)
    lengths = [len(lay.ids) for lay in emb.pipeline.prepare(items).layouts]  # no warning: cuts are fine here
    m = measure(lambda: emb.encode(items, max_tokens=budget, packed=packed, show_progress=False), emb.device)
    row = _row(name, m.seconds, len(items), sum(lengths), _padded_tokens(lengths, budget, packed), m.peak_bytes)
    row.update(packed=packed, max_tokens=budget, compiled=opts.compile)
    row["mode"] = mode or str(emb.dtype).removeprefix("torch.")
    if emb.quantization is not None:
        row["quantize"] = emb.quantization.summary()
    if peak_rate:
        from ..attention import decoder_of

        f = flops.forward_flops(decoder_of(emb.backbone), emb.backbone.config, lengths, not emb.recipe.bidirectional)
        row["mfu"] = f / m.seconds / peak_rate
    if emb.encoder is not None:
        row["encoder_share"] = _encoder_seconds(emb, items, lengths, budget) / m.seconds
    if token_sets:  # what the LLM is fed at other input lengths: layouts only, no model run
        row["tokens_per_text_at"] = {
            key: sum(len(lay.ids) for lay in emb.pipeline.prepare(group).layouts) / len(group)
            for key, group in token_sets.items()
        }
    return row, emb


def bench_st(label: str, model: Any, items: list[str], batch_size: int, device: torch.device) -> dict[str, Any]:
    baselines.st_encode(model, items[: min(len(items), 64)], batch_size)  # warm-up
    m = measure(lambda: baselines.st_encode(model, items, batch_size), device)
    lengths = baselines.st_lengths(model, items)
    real = sum(lengths)
    padded = sum(len(b) * max(b) for b in _st_batches(lengths, batch_size))
    row = _row(label, m.seconds, len(items), real, padded, m.peak_bytes)
    row["batch_size"] = batch_size
    return row


def _st_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    # sentence-transformers sorts by length (longest first) and cuts fixed-size batches
    ordered = sorted(lengths, reverse=True)
    return [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]


def run(opts: BenchOptions, log: Any = print) -> dict[str, Any]:
    device = pick_device(opts.device)
    dtype = pick_dtype(opts.dtype, device)
    warnings.simplefilter("ignore", TruncationWarning)  # long texts are cut at max_length, as in use
    items = texts.read_texts(Path(opts.texts_file), opts.n) if opts.texts_file else texts.mixed_texts(opts.n, opts.seed)
    want_mfu = device.type == "cuda" if opts.mfu is None else opts.mfu
    peak_rate = flops.matmul_rate(device, dtype) if want_mfu else None
    result: dict[str, Any] = {
        "options": asdict(opts),
        "device": str(device),
        "dtype": str(dtype).removeprefix("torch."),
        "machine": describe_machine(device),
        "versions": library_versions(),
        "matmul_tflops": peak_rate / 1e12 if peak_rate else None,
        "recipes": [],
        "baselines": [],
        "sweep": [],
    }
    if peak_rate:
        log(f"measured {dtype} matmul rate: {peak_rate / 1e12:.1f} TFLOP/s")
    from transformers import AutoTokenizer

    folder = models.weights_folder(opts.backbone)
    tok = AutoTokenizer.from_pretrained(folder)
    fixed = {length: texts.fixed_length_texts(tok, length, opts.sweep_n, items, opts.seed) for length in opts.sweep}
    token_sets = {str(length): group for length, group in fixed.items()}
    last: Embedder | None = None
    for i, mode in enumerate(opts.modes or [None]):
        for name in opts.recipes:
            row, last = bench_recipe(name, items, opts, device, peak_rate, token_sets if i == 0 else None, mode)
            result["recipes"].append(row)
            log(_line(row))
    max_length = last.max_length if last is not None else 512
    if opts.modes:
        dtype = torch.float32  # the yardstick: sentence-transformers as users run it on a CPU
    if opts.baselines and isinstance(folder, Path):
        for recipe, pooling in baselines.ST_POOLING.items():
            if recipe not in opts.recipes or recipe not in opts.st_recipes:
                continue
            st = baselines.st_backbone(folder, pooling, device, dtype, max_length)
            for bs in opts.st_batch_sizes:
                row = bench_st(f"sentence-transformers {pooling} (batch {bs})", st, items, bs, device)
                row["same_as"] = recipe
                result["baselines"].append(row)
                log(_line(row))
            del st
    if opts.minilm:
        enc_folder = models.weights_folder(opts.encoder)
        if isinstance(enc_folder, Path):
            st = baselines.st_folder(enc_folder, device, dtype)
            row = bench_st("all-MiniLM-L6-v2 (sentence-transformers, batch 32)", st, items, 32, device)
            result["baselines"].append(row)
            log(_line(row))
    for name in opts.sweep_recipes:
        if not opts.sweep:
            break
        for length, group in fixed.items():
            sub = BenchOptions(**{**asdict(opts), "warmup": min(opts.warmup, len(group))})
            row, _ = bench_recipe(name, group, sub, device, peak_rate)
            row["length"] = length
            result["sweep"].append(row)
            log(_line(row, f"{name} @{length}"))
            if opts.baselines and name in baselines.ST_POOLING and isinstance(folder, Path):
                st = baselines.st_backbone(folder, baselines.ST_POOLING[name], device, dtype, max_length)
                label = f"sentence-transformers {baselines.ST_POOLING[name]} (batch 32)"
                srow = bench_st(label, st, group, 32, device)
                srow["length"] = length
                result["sweep"].append(srow)
                log(_line(srow, f"ST @{length}"))
    result["ratios"] = ratios(result)
    for k, v in result["ratios"].items():
        log(f"{k}: {v:.3f}")
    if opts.quality:
        result["quality"] = mode_quality(opts.quality)
    if opts.modes:
        result["targets"] = targets(result)
        for t in result["targets"]:
            log(f"{t['target']}: {t['measured']} -> {t['verdict']}")
    return result


def _line(row: dict[str, Any], name: str | None = None) -> str:
    extra = f"  MFU {row['mfu']:.1%}" if "mfu" in row else ""
    if "encoder_share" in row:
        extra += f"  light encoder {row['encoder_share']:.1%} of time"
    return (
        f"{name or row['name']:<48} {row['texts_per_s']:9.1f} texts/s {row['real_tokens_per_s']:11.0f} tokens/s "
        f"{row['llm_tokens_per_text']:7.1f} tok/text  pad {row['padding_fraction']:5.1%}  "
        f"peak +{row['peak_memory_mb']:.0f} MB{extra}"
    )


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """The headline ratios: dec2vec over sentence-transformers, and Causal2Vec's token share."""
    first = result["recipes"][0]["mode"] if result["recipes"] else None
    rec = {r["name"]: r for r in result["recipes"] if r.get("mode") == first}
    out: dict[str, float] = {}
    for b in result["baselines"]:
        same = b.get("same_as")
        for r in result["recipes"]:
            if r["name"] == same:
                tag = f" [{r['mode']}]" if len(modes_of(result)) > 1 else ""
                out[f"{same}{tag} texts/s over {b['name']}"] = r["texts_per_s"] / b["texts_per_s"]
    for mode in modes_of(result):
        by = {r["name"]: r for r in result["recipes"] if r.get("mode") == mode}
        if "causal2vec" in by and "mean" in by:
            tag = f" [{mode}]" if len(modes_of(result)) > 1 else ""
            out[f"causal2vec{tag} texts/s over mean{tag}"] = by["causal2vec"]["texts_per_s"] / by["mean"]["texts_per_s"]
    if "causal2vec" in rec:
        c = rec["causal2vec"]
        for other in ("icl", "echo"):
            if other in rec:
                o = rec[other]
                out[f"causal2vec tokens/text over {other}"] = c["llm_tokens_per_text"] / o["llm_tokens_per_text"]
                out[f"causal2vec time/text over {other}"] = o["texts_per_s"] / c["texts_per_s"]
                for length, n in c.get("tokens_per_text_at", {}).items():
                    out[f"causal2vec tokens/text over {other} at {length} tokens"] = n / o["tokens_per_text_at"][length]
    return out


def markdown(result: dict[str, Any], command: str) -> str:
    m, v = result["machine"], result["versions"]
    n = result["recipes"][0]["texts"] if result["recipes"] else 0
    where = m.get("gpu") or f"CPU ({m['cpu']}, {m['torch_threads']} threads)"
    modes = modes_of(result) if result["options"].get("modes") else [result["dtype"]]
    head = f"### {where}, {', '.join(x for x in modes if x)}, {n} mixed texts\n\n"
    lines = [
        head,
        f"`{command}`\n\n",
        f"Machine: {m['cpu']} ({m['cpu_count']} cores, {m['torch_threads']} torch threads), device "
        f"{m.get('gpu') or m['device']}; "
        + ", ".join(f"{k} {val}" for k, val in v.items())
        + (f"; measured matmul rate {result['matmul_tflops']:.0f} TFLOP/s" if result.get("matmul_tflops") else "")
        + "\n\n",
        "| run | LLM tokens/text | texts/s | real tokens/s | padding | peak memory MB | MFU | note |\n",
        "|---|---:|---:|---:|---:|---:|---:|---|\n",
    ]

    def fmt(r: dict[str, Any], name: str) -> str:
        mfu = f"{r['mfu']:.1%}" if "mfu" in r else ""
        note = []
        if r.get("packed"):
            note.append("packed")
        if r.get("compiled"):
            note.append("compiled")
        if "encoder_share" in r:
            note.append(f"light encoder {r['encoder_share']:.1%} of time")
        if "quantize" in r:
            note.append(r["quantize"].split(" (")[0])
        return (
            f"| {name} | {r['llm_tokens_per_text']:.1f} | {r['texts_per_s']:.1f} | {r['real_tokens_per_s']:.0f} | "
            f"{r['padding_fraction']:.1%} | {r['peak_memory_mb']:.0f} | {mfu} | {', '.join(note)} |\n"
        )

    several = len(modes_of(result)) > 1
    lines += [fmt(r, f"dec2vec {r['name']}" + (f" [{r['mode']}]" if several else "")) for r in result["recipes"]]
    lines += [fmt(r, r["name"]) for r in result["baselines"]]
    if result["sweep"]:
        lines.append(
            "\nFixed-length sweep:\n\n| run | length | texts/s | real tokens/s | padding | peak memory MB | MFU |\n"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|\n")
        for r in result["sweep"]:
            mfu = f"{r['mfu']:.1%}" if "mfu" in r else ""
            name = r["name"] if r["name"].startswith("sentence") else f"dec2vec {r['name']}"
            lines.append(
                f"| {name} | {r['length']} | {r['texts_per_s']:.1f} | {r['real_tokens_per_s']:.0f} | "
                f"{r['padding_fraction']:.1%} | {r['peak_memory_mb']:.0f} | {mfu} |\n"
            )
    at = [r for r in result["recipes"] if r.get("tokens_per_text_at")]
    if at:
        keys = list(at[0]["tokens_per_text_at"])
        lines.append("\nLLM tokens per text, by input length (layouts only):\n\n")
        lines.append("| recipe | mixed | " + " | ".join(f"{k} tokens" for k in keys) + " |\n")
        lines.append("|---|---:|" + "---:|" * len(keys) + "\n")
        for r in at:
            cells = " | ".join(f"{r['tokens_per_text_at'][k]:.1f}" for k in keys)
            lines.append(f"| {r['name']} | {r['llm_tokens_per_text']:.1f} | {cells} |\n")
    if result.get("ratios"):
        lines.append("\n| ratio | value |\n|---|---:|\n")
        lines += [f"| {k} | {val:.2f} |\n" for k, val in result["ratios"].items()]
    if result.get("quality"):
        lines.append("\nQuality of each mode on the standard suite (mean main score ×100; − fp32, paired 95% CI):\n\n")
        lines.append(
            "| mode | suite | − fp32 | 95% CI | CI excludes a 0.5-point loss | results |\n|---|---:|---:|---|---|---|\n"
        )
        for mode, q in result["quality"].items():
            if mode == "fp32":
                lines.append(f"| fp32 | {100 * (q['score'] or 0):.2f} | – | – | – | {q['source']} |\n")
                continue
            lo, hi = q["ci"]
            lines.append(
                f"| {mode} | {100 * q['score']:.2f} | {100 * q['diff']:+.2f} | [{100 * lo:+.2f}, {100 * hi:+.2f}] | "
                f"{'yes' if q['not_worse_by_max_loss'] else 'no'} | {q['source']} |\n"
            )
    if result.get("targets"):
        lines.append("\n| target | measured | verdict |\n|---|---:|---|\n")
        lines += [f"| {t['target']} | {t['measured']} | {t['verdict']} |\n" for t in result["targets"]]
    return "".join(lines)


def save(result: dict[str, Any], out: Path, command: str) -> None:
    write_atomic(out / "bench.json", json.dumps({**result, "command": command}, indent=2, default=float))
    write_atomic(out / "bench.md", markdown(result, command))
