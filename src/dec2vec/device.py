"""Which device and dtype a model runs on, and how many tokens a batch holds there by default.

Kept apart from the encode engine because loading, training, benchmarks and evaluation need these
facts without encoding anything.
"""

from __future__ import annotations

import torch


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """CUDA when present, then Apple MPS, else CPU; an explicit choice wins (checked: :func:`check_device`)."""
    if device is not None:
        return check_device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(device: str | torch.device) -> torch.device:
    """``device`` if this torch can run on it; else a ConfigError saying why, in one line.

    Why before any weights load: torch reports an unknown name as a RuntimeError, and a CUDA device on a
    CPU-only build as an AssertionError deep in the first ``.to()``, a minute into loading a model.
    """
    from .errors import ConfigError

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"unknown device '{device}'; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "is built without CUDA" if torch.version.cuda is None else "sees no CUDA GPU"
            raise ConfigError(f"device '{device}': this torch {torch.__version__} {why}; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device '{device}': only {torch.cuda.device_count()} CUDA device(s) here (cuda:0 ..)")
        return dev
    if dev.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ConfigError(f"device '{device}': Apple MPS is not available here; use --device cpu")
        return dev
    return dev  # another torch device type (meta, xpu ...): torch's to say whether it runs


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return TORCH_DTYPES[name]


# every spelling the CLI and the API accept for a weight/compute dtype
TORCH_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bfloat16 matmuls run in hardware, not emulated (emulated bf16 is slower than fp32)."""
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def inference_dtype(dtype: str | None, quantize: str | None, device: str | torch.device | None) -> str | None:
    """The dtype the inference commands (embed, serve, index, eval) load a model in when none is asked for.

    bfloat16 on a CPU that runs it natively: on the 2-core CI machine it embedded 1.6x faster than
    float32, and the shipped model's standard-suite score moved by +0.15 points, paired 95% CI
    [-0.07, +0.38], which excludes the 0.5-point loss the default-mode rule allows (docs/BENCHMARKS.md).
    Otherwise ``None``: the model's own dtype ("auto": bfloat16 on CUDA, float32 elsewhere). An
    explicit dtype, or int8 quantization (which needs float32 around it), is left as asked.
    """
    if dtype is not None or quantize is not None:
        return dtype
    if pick_device(device).type == "cpu" and cpu_has_native_bf16():
        return "bfloat16"
    return None


def default_max_tokens(device: torch.device) -> int:
    """Padded tokens per batch when the caller gives none.

    On CPU, large batches are slower, not faster: on 2 cores SmolLM2 ran at 455-506 tokens/s with
    512-1024-token batches against 184 tokens/s with 16,384 (docs/BENCHMARKS.md), as activations
    outgrow the caches. Accelerators want large batches: a small model is launch-bound below tens of
    thousands of tokens per batch (docs/BENCHMARKS.md, GPU budget sweep).
    """
    if device.type == "cuda":
        return 32768
    return 16384 if device.type == "mps" else 1024


def describe_machine(device: torch.device) -> dict[str, str]:
    """What a measured figure ran on: device, CPU model, cores, torch threads, GPU name."""
    import os
    import platform
    from pathlib import Path

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "device": str(device),
        "cpu": cpu,
        "cpu_count": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def precision_of(model: object) -> dict[str, str | None]:
    """The precision a loaded model runs in, as recorded beside its vectors (an index, an ``--output``).

    Why recorded: the same weights in float32 and in bfloat16 give vectors that differ (the shipped
    model: cosine min 0.9978 on examples/demo.py's texts, 0.9818 on a short document in issue 28's
    report), so vectors are only compared with vectors made in the same precision.
    """
    dtype = getattr(model, "dtype", None)
    quantization = getattr(model, "quantization", None)
    return {
        "dtype": str(dtype).removeprefix("torch.") if dtype is not None else None,
        "quantize": getattr(quantization, "mode", None),
    }
