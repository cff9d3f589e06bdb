"""Int8 dynamic quantization for CPU inference, with the layers that cannot take it left in float.

Why not every ``nn.Linear``: dynamic int8 quantizes each layer's *input* with one scale per tensor,
its peak / 127. Some layers of a decoder see inputs with a few huge outlier features (in SmolLM2 most
MLP ``down_proj`` layers: peak 55x the RMS, up to 270x), and then the ordinary values fall into one
or two int8 steps. Quantizing every linear layer of the shipped Causal2Vec model gave vectors at
cosine 0.59-0.71 to the float ones (docs/BENCHMARKS.md). Which layers suffer is a property of what
flows through them, not of their names, so it is measured: a few calibration texts run through the
float model, and a layer is quantized only if its input's crest factor (peak / RMS over the
calibration tokens) is at most ``max_crest``, so a typical input value spans at least
127 / ``max_crest`` int8 steps. The default, 32, quantizes 204 of the 249 linear layers of the shipped
model, with vectors at mean cosine 0.978 (min 0.836) to float on 160 benchmark texts and a
standard-suite score of −0.07 [−0.69, +0.61] points against fp32 (docs/BENCHMARKS.md). A rule on
the layers' own output error (relative L2) did worse in a trial on 64 texts (mean cosine 0.937 with
164 layers against 0.979 with 204), as it does not see how far an error spreads downstream.
Layers the embedding path never runs (an LM head) stay float, so generation is unchanged.

The calibration texts are written here, not drawn from any evaluation set, and are the same on
every call, so a model quantizes to the same layers every time (the evaluation cache relies on it).
Dynamic quantization is a CPU feature of PyTorch: the quantized layers run on the CPU only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from .errors import ConfigError

MODES = ("int8",)
DEFAULT_MAX_CREST = 32.0  # peak / RMS of a layer's input on the calibration texts

CALIBRATION_TEXTS: tuple[str, ...] = (
    "How do I reset my password if I no longer have access to the email on the account?",
    "The committee approved the budget after a long debate about school funding and road repairs.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "A quiet, beautifully shot film that never quite finds its story.",
    "def mean(xs): return sum(xs) / len(xs)",
    "Shares fell 4% on Tuesday after the company cut its forecast for the second half of the year, "
    "citing weaker demand in Europe and higher costs for raw materials and shipping.",
    "The river rises in the mountains, flows east across the plain and reaches the sea after 800 km; "
    "its delta is one of the most densely populated regions of the country.",
    "Symptoms include fever, a dry cough and fatigue; most patients recover within two weeks.",
    "what is the capital of australia",
    "Preheat the oven to 200 °C, slice the onions thinly and cook them slowly in butter until golden.",
    "The treaty ended the war, redrew the borders of the region and created three new states, "
    "whose minorities were promised rights that were rarely honoured in the decades that followed.",
    "Ich habe den Zug verpasst und komme eine Stunde später.",
)


class _Encodes(Protocol):
    def encode(self, texts: Sequence[str]) -> Any: ...

    def named_modules(self) -> Any: ...


@dataclass
class Quantization:
    """What ``quantize_int8`` did: kept in the model so that results and caches can say it."""

    mode: str
    max_crest: float
    quantized: list[str] = field(default_factory=list)
    kept_float: dict[str, float] = field(default_factory=dict)  # layer -> its input's measured crest factor
    unused: list[str] = field(default_factory=list)  # not run by encode: left as they were

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.mode}: {len(self.quantized)} linear layers quantized, {len(self.kept_float)} kept in float "
            f"(input peak/RMS > {self.max_crest:g}), {len(self.unused)} unused by encode"
        )


def check_mode(quantize: str | None, device: torch.device, dtype: torch.dtype) -> None:
    """Refuse the combinations that cannot run, before any weight is loaded or changed."""
    if quantize is None:
        return
    if quantize not in MODES:
        raise ConfigError(f"unknown quantization '{quantize}'; known: {', '.join(MODES)}")
    if device.type != "cpu":
        raise ConfigError(f"--quantize {quantize} runs on the CPU only (PyTorch dynamic quantization); got {device}")
    if dtype != torch.float32:
        raise ConfigError(f"--quantize {quantize} needs float32 weights around the int8 layers; got {dtype}")


def layer_crests(model: _Encodes, texts: Sequence[str] = CALIBRATION_TEXTS) -> tuple[dict[str, float], list[str]]:
    """Peak / RMS of every linear layer's input over ``texts``, and the layers encode never ran."""
    linears = {n: m for n, m in model.named_modules() if type(m) is nn.Linear}
    peak = dict.fromkeys(linears, 0.0)
    squares = dict.fromkeys(linears, 0.0)
    count = dict.fromkeys(linears, 0)

    def keep(name: str):  # noqa: ANN202 - a forward hook
        def hook(_m: nn.Module, args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
            x = args[0].detach().float()  # (..., in)
            peak[name] = max(peak[name], float(x.abs().max()))
            squares[name] += float(x.pow(2).sum())
            count[name] += x.numel()

        return hook

    handles = [m.register_forward_hook(keep(n)) for n, m in linears.items()]
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a short-limit model cuts the longer texts: fine for calibration
            model.encode(list(texts))
    finally:
        for h in handles:
            h.remove()
    crests = {n: peak[n] / max((squares[n] / count[n]) ** 0.5, 1e-12) for n in linears if count[n]}
    return crests, [n for n in linears if not count[n]]


def quantize_int8(
    model: _Encodes, *, max_crest: float = DEFAULT_MAX_CREST, texts: Sequence[str] = CALIBRATION_TEXTS
) -> Quantization:
    """Quantize ``model``'s linear layers to int8 in place, except those whose inputs peak over ``max_crest``.

    ``model`` is an :class:`~dec2vec.Embedder` (anything with ``encode`` and ``named_modules``).
    """
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    crests, unused = layer_crests(model, texts)
    chosen = sorted(n for n, c in crests.items() if c <= max_crest)
    kept = {n: round(c, 1) for n, c in sorted(crests.items()) if c > max_crest}
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; the eager API still ships with torch
        # 2.11-2.13 (the versions dec2vec supports) and needs no extra package
        warnings.simplefilter("ignore")
        quantize_dynamic(model, {n: default_dynamic_qconfig for n in chosen}, dtype=torch.qint8, inplace=True)
    return Quantization("int8", max_crest, chosen, kept, sorted(unused))
