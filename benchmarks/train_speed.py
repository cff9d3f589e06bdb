"""Training throughput of every method's config on this machine (CPU or GPU), or of model shapes with MFU.

    dec2vec data build                      # the corpora the configs read
    python benchmarks/train_speed.py [--configs configs/tiny/*.yaml] [--steps N] [--out docs/BENCHMARKS.md]
    python benchmarks/train_speed.py --logs runs/tiny-*      # summarise runs already made with `dec2vec train`
    python benchmarks/train_speed.py --shapes 135m-96 135m-512 1b-512 [--backbone DIR --encoder DIR
        --backbone-1b DIR] [--steps N] [--batch B] [--out FILE]

``--shapes``: one row per shape with tokens/s and MFU (``SHAPES`` below; see ``shape_rows``).

Each config runs as written (or ``--steps`` steps per stage), without checkpoints, in a temporary
folder; the first step of each stage is warm-up and left out. Tokens are the real (non-pad) backbone tokens of all texts
in the step (queries, positives, hard negatives; both SimCSE views), as the trainer logs them.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import transformers
from report import cpu_name, emit
from transformers.utils import logging as hf_logging

from dec2vec.train.config import TrainConfig, load_config
from dec2vec.train.config_files import apply_override
from dec2vec.train.trainer import Trainer


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# name -> (backbone argument, max length, batch, LoRA, extra top-level config); Causal2Vec + light encoder, bf16
SHAPES: dict[str, tuple[str, int, int, bool, dict[str, Any]]] = {
    "135m-96": ("backbone", 96, 32, True, {}),  # the shipped config's step (configs/causal2vec-distill.yaml)
    "135m-512": ("backbone", 512, 32, True, {}),
    "135m-512-compile": ("backbone", 512, 32, True, {"compile": True}),
    "1b-512": ("backbone_1b", 512, 32, True, {}),
    "1b-512-compile": ("backbone_1b", 512, 32, True, {"compile": True}),
    "1b-512-full-ckpt": ("backbone_1b", 512, 32, False, {"gradient_checkpointing": True}),
}
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}  # dense, per card


def peak_flops(device: torch.device) -> tuple[float, str]:
    """The card's dense bf16 peak from its data sheet, or on a CPU this core's measured bf16 matmul rate."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in PEAK_BF16.items():
            if key in name:
                return value, f"{name} data sheet, dense bf16"
        return float("nan"), f"{name}: peak unknown"
    a = torch.randn(1024, 1024, dtype=torch.bfloat16)
    a @ a
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 2.0:
        a @ a
        n += 1
    rate = n * 2 * 1024**3 / (time.perf_counter() - t0)
    return rate, f"measured bf16 1024^3 matmul rate of this CPU ({torch.get_num_threads()} threads)"


def matmul_params(model: torch.nn.Module) -> tuple[int, int, int]:
    """Weights of the decoder layers' matmuls (LoRA adapters left out), layer count and width."""
    from dec2vec.train.speed import decoder_layers

    layers = decoder_layers(model)
    n = sum(
        p.numel() for layer in layers for name, p in layer.named_parameters() if p.dim() == 2 and "lora_" not in name
    )
    return n, len(layers), int(model.get_input_embeddings().weight.shape[-1])


def synthetic_pairs(path: Path, n: int, words: int) -> None:
    """Pairs of long texts (``words`` words each) of a fixed vocabulary: every text fills the token limit."""
    import random

    rng = random.Random(0)
    vocab = (
        "the of and to in is was for on that with as by at from his her they this which were be are an had it "
        "not but have one all their has been there who more its time would when new some other can what into "
        "only years first after over also most made such any these two may city people many state world house "
        "river church music school water history small great light north south early during between under"
    ).split()
    with open(path, "w") as f:
        for _ in range(n):
            q, d = (" ".join(rng.choice(vocab) for _ in range(words)) for _ in range(2))
            f.write(json.dumps({"query": q, "positive": d}) + "\n")


def shape_rows(args: argparse.Namespace) -> None:
    """Train each shape for a few steps with the real Trainer and report tokens/s and MFU.

    Model FLOPs per real token: (6 N for full fine-tuning, 4 N with LoRA: frozen weights get no weight
    gradient) + 12 L d T for attention (T = the step's max length), N = the decoder layers' matmul
    weights. The light encoder's forward and the embedding lookups are left out (under 2 %).
    """
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    peak, peak_how = peak_flops(device)
    rows = []
    for name in args.shapes:
        which, length, batch, lora, extra = SHAPES[name]
        backbone = getattr(args, which)
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "pairs.jsonl"
            synthetic_pairs(data, 64 * (args.batch or batch), words=length * 2)
            values: dict[str, Any] = {
                "model": {
                    "recipe": "causal2vec",
                    "backbone": backbone,
                    "encoder": args.encoder,
                    "max_length": length,
                },
                "output_dir": f"{tmp}/run",
                "device": str(device),
                "precision": "bf16",
                "checkpoint_every": 0,
                "lora": {"r": 16, "alpha": 32, "dropout": 0.0, "enabled": lora},
                "stages": [
                    {
                        "objective": "contrastive",
                        "data": [{"path": str(data)}],
                        "steps": args.steps or 4,
                        "batch_size": args.batch or batch,
                        "hard_negatives": 0,
                        "max_length": length,
                    }
                ],
                **extra,
            }
            for assignment in args.set:
                apply_override(values, assignment)
            cfg = TrainConfig.from_dict(values)
            trainer = Trainer(cfg, progress=False)
            n, layers, width = matmul_params(trainer.emb.backbone)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            trainer.run()
            mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
            log = _read(Path(tmp) / "run" / "log.csv")[args.warmup :]
        sec = statistics.median(float(r["sec_per_step"]) for r in log)
        tok = statistics.mean(int(r["tokens"]) for r in log)
        per_token = (4 if lora else 6) * n + 12 * layers * width * length
        mfu = tok * per_token / sec / peak
        rows.append(
            (
                name,
                f"{n / 1e6:.0f}M",
                "LoRA r16" if lora else "full",
                length,
                batch if not args.batch else args.batch,
                tok,
                sec,
                tok / sec,
                mfu,
                mem,
                extra,
            )
        )
        print(
            f"{name:<18} {tok:8.0f} tok/step {sec:7.3f} s/step {tok / sec:9.0f} tok/s MFU {mfu:6.1%} "
            f"peak mem {mem:.1f} GiB",
            flush=True,
        )
    dev = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({cpu_name()}, {torch.get_num_threads()} threads)"
    )
    steps = f" --steps {args.steps}" if args.steps else ""
    batch = f" --batch {args.batch}" if args.batch else ""
    header = (
        f"\n### Training speed by shape, {dev}, {time.strftime('%Y-%m-%d')}\n\n"
        f"torch {torch.__version__}, transformers {transformers.__version__}; Causal2Vec + light encoder, contrastive "
        f"(in-batch negatives), bf16 autocast, AdamW; median of the steps after {args.warmup} warm-up step(s); "
        f"MFU against {peak_how} ({peak / 1e12:.1f} TFLOP/s); `python benchmarks/train_speed.py --shapes "
        f"{' '.join(args.shapes)}{steps}{batch}`\n\n"
        "| shape | matmul params | training | max length | pairs/step | real tokens/step | s/step | tokens/s | MFU "
        "| peak GPU memory (GiB) | options |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    table = header + "".join(
        f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.0f} | {r[6]:.3f} | {r[7]:.0f} | {r[8]:.1%} | "
        f"{'n/a' if r[9] != r[9] else f'{r[9]:.1f}'} | {', '.join(f'{k}' for k in r[10]) or '-'} |\n"
        for r in rows
    )
    emit(table, args.out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", nargs="*", default=None, choices=sorted(SHAPES), help="shape rows instead of configs")
    ap.add_argument("--backbone", default="smollm2-135m-instruct", help="--shapes: the 135M backbone")
    ap.add_argument("--encoder", default="all-minilm-l6-v2", help="--shapes: the light encoder")
    ap.add_argument("--backbone-1b", default="/tmp/d2v-models/llama1b", help="--shapes: a Llama-3.2-1B-shaped folder")
    ap.add_argument("--batch", type=int, default=None, help="--shapes: pairs per step (default: the shape's)")
    ap.add_argument("--warmup", type=int, default=1, help="--shapes: steps left out of the median")
    ap.add_argument("--device", default=None)
    ap.add_argument("--configs", nargs="*", default=sorted(glob.glob("configs/tiny/*.yaml")))
    ap.add_argument("--steps", type=int, default=None, help="steps per stage (default: the config's)")
    ap.add_argument("--logs", nargs="*", default=None, help="summarise these finished run folders instead")
    ap.add_argument("--set", action="append", default=[], help="extra overrides for every config")
    ap.add_argument("--out", default=None, help="append a Markdown table to this file")
    args = ap.parse_args()
    hf_logging.disable_progress_bar()
    if args.shapes:
        shape_rows(args)
        return
    rows = []
    runs = [(Path(d) / "config.json", Path(d)) for d in args.logs] if args.logs is not None else None
    for path, folder in runs or [(Path(c), None) for c in args.configs]:
        if folder is None:
            with tempfile.TemporaryDirectory() as tmp:
                cfg = load_config(path, [f"output_dir={tmp}", "checkpoint_every=0", *args.set])
                for s in cfg.stages:
                    s.steps = args.steps or s.steps
                    s.warmup_steps = min(s.warmup_steps, s.steps)
                Trainer(cfg, progress=False).run()
                log = _read(Path(tmp) / "log.csv")
        else:
            cfg = TrainConfig.from_dict(json.loads(path.read_text()))
            log = _read(folder / "log.csv")
        for stage in cfg.stages:
            mine = [r for r in log if r["stage"] == stage.name][1:]
            sec = [float(r["sec_per_step"]) for r in mine]
            tok = [int(r["tokens"]) for r in mine]
            name = folder.name if folder else path.stem
            row = (
                name,
                stage.objective,
                stage.batch_size,
                stage.max_length or cfg.model.max_length,
                statistics.mean(tok),
                statistics.median(sec),
                sum(tok) / sum(sec),
            )
            rows.append(row)
            print(
                f"{row[0]:<18} {row[1]:<12} batch {row[2]:>3} len<={row[3]:<4} {row[4]:8.0f} tok/step "
                f"{row[5]:7.2f} s/step {row[6]:8.0f} tok/s",
                flush=True,
            )
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    how = "--logs " + " ".join(args.logs) if args.logs is not None else (f"--steps {args.steps}" if args.steps else "")
    dev = device if device == "cpu" else torch.cuda.get_device_name()
    header = (
        f"\n### Training throughput, {dev} ({cpu_name()}, {torch.get_num_threads()} threads), "
        f"{cfg.model.dtype}, LoRA r={cfg.lora.r}\n\n"
        f"torch {torch.__version__}, transformers {transformers.__version__}, Python {platform.python_version()}; "
        f"`python benchmarks/train_speed.py {how}`"
        "; tokens = real (non-pad) backbone tokens of all texts in a step\n\n"
        "| config | objective | batch | max length | real tokens/step | s/step (median) | tokens/s |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    table = header + "".join(
        f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.0f} | {r[5]:.2f} | {r[6]:.0f} |\n" for r in rows
    )
    emit(table, args.out)


if __name__ == "__main__":
    main()
