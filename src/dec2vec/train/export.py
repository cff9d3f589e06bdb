"""The result of a run: the trained embedder saved to ``output_dir/model``, LoRA merged or kept as an
adapter, with ``training.json`` beside it (steps, stages, counters, versions)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..embedder import Embedder
from ..foundations.files import write_atomic
from .checkpoint import TrainingState
from .config import TrainConfig


def unwrap_lora(
    emb: Embedder, backbone_peft: Any, encoder_peft: Any, merge: bool, adapter_parent: Path | None
) -> Path | None:
    """Take the peft wrappers off ``emb`` for saving, in eval mode: the encoder's LoRA is always merged
    (the encoder is small); the backbone's is merged, or with ``merge`` false saved as an adapter into a
    temporary folder under ``adapter_parent`` (the main process's; None on the others) and attached to
    ``emb``, which then saves it as ``adapter/``. Returns that temporary folder, for the caller to remove."""
    emb.eval()
    if encoder_peft is not None:
        assert emb.encoder is not None
        emb.encoder.model = encoder_peft.merge_and_unload()
    adapter: Path | None = None
    if backbone_peft is not None:
        if merge:
            emb.backbone = backbone_peft.merge_and_unload()
        else:
            if adapter_parent is not None:
                adapter = Path(tempfile.mkdtemp(prefix=".adapter.", dir=adapter_parent))
                backbone_peft.save_pretrained(adapter)
            emb.backbone = backbone_peft.unload()
            if adapter is not None:
                emb.attach_adapter(adapter)
    return adapter


def training_summary(
    cfg: TrainConfig, state: TrainingState, versions: dict[str, str], device: str | None = None
) -> dict[str, Any]:
    """``training.json``: what the saved model went through, and where it finished (``device``: the
    hardware behind its wall times, e.g. ``cuda (NVIDIA H200) x 1`` or ``cpu (2 threads) x 1``)."""
    return {
        "device": device,
        "steps": state.global_step,
        "stages": [s.name for s in cfg.stages],
        "encoder_mode": cfg.encoder_mode,
        "bad_steps": state.bad_steps,
        "bad_lines": state.bad_lines,
        "versions": versions,
    }


def hardware(device: torch.device, processes: int) -> str:
    """What ran the steps, for training.json: device kind and name (threads on a CPU), and processes."""
    if device.type == "cuda":
        what = f"cuda ({torch.cuda.get_device_name(device)})"
    else:
        what = f"{device.type} ({torch.get_num_threads()} threads)"
    return f"{what} x {processes}"


def write_model(emb: Embedder, dest: Path, summary: dict[str, Any], adapter: Path | None) -> None:
    """Save ``emb`` and its ``training.json`` to ``dest`` (main process), then drop the temporary adapter."""
    try:
        emb.save_pretrained(dest)
        write_atomic(dest / "training.json", json.dumps(summary, indent=2) + "\n", durable=True)
    finally:
        if adapter is not None:
            shutil.rmtree(adapter, ignore_errors=True)
