"""A run's fingerprint: the hash of what determines its trajectory, which ``--resume`` compares.

Kept apart from the config's definition: it is the resume contract (which settings a resume may
change), and it must keep the hashes of runs checkpointed before a setting existed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .config import TrainConfig

_LATER_DEFAULTS: dict[str, dict[str, Any]] = {
    "run": {
        "precision": "fp32",
        "length_buckets": 0,
        "projector_init": "random",
        "projector_init_texts": 2048,
        "distributed": "ddp",
    },
    "stage": {
        "teacher": "all-mpnet-base-v2",
        "teacher_max_length": None,
        "distill_kl": 1.0,
        "distill_mse": 0.0,
        "distill_nce": 0.0,
        "soft_labels": 1.0,
        "distill_temperature": 0.05,
        "data_seed": None,
    },
}
_DISTILL_ONLY = set(_LATER_DEFAULTS["stage"]) - {"data_seed"}


def config_fingerprint(cfg: TrainConfig) -> str:
    """A hash of what determines the run's trajectory, checked on --resume.

    Settings that change only logging, checkpointing, validation, where files go, the device,
    bad-line skipping, how the result is saved or how fast a step runs (gradient checkpointing,
    compilation, prefetching) are left out, so a resume may change them.
    """
    d = cfg.to_dict()
    for k in (
        "checkpoint_every",
        "keep_checkpoints",
        "log_every",
        "tensorboard",
        "device",
        "skip_bad",
        "output_dir",
        "merge_on_save",
        "max_bad_steps",
        "validate_every",  # validation keeps the RNG stream as it was, so the weights do not depend on it
        "validate_pairs",
        "gradient_checkpointing",  # the same function recomputed: same gradients
        "compile",
        "prefetch",
    ):
        d.pop(k, None)
    # settings added later count only when set, so runs checkpointed before they existed still resume
    for key, default in _LATER_DEFAULTS["run"].items():
        if d.get(key) == default or (key == "projector_init_texts" and d.get("projector_init") == "random"):
            d.pop(key, None)
    for stage in d["stages"]:
        for key, default in _LATER_DEFAULTS["stage"].items():
            if stage.get(key) == default or (stage.get("objective") != "distill" and key in _DISTILL_ONLY):
                stage.pop(key, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]
