"""What an embedding server is allowed to do: names, limits, batching and the API key.

Kept free of FastAPI so the CLI can build and check settings before any heavy import.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    import torch

DEFAULT_MAX_INPUTS = 256
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024  # 256 inputs x 512 tokens is ~0.5 MB of text; JSON escapes can grow it
DEFAULT_BATCH_WAIT_MS = 5.0
DEFAULT_MAX_QUEUE = 1024
CPU_MERGE_BATCHES = 8  # forward batches one merged call spans on CPU (see default_batch_tokens)


def default_batch_tokens(device: torch.device) -> int:
    """Tokens one merged model call collects when ``--batch-tokens`` is not given, per device type.

    A merge is handed whole to ``encode``, which length-sorts it and cuts it into forward batches
    of the device's own budget (:func:`dec2vec.device.default_max_tokens`). On accelerators that
    budget is already large, so one forward batch per merge is enough. On CPU it is small (1024
    padded tokens, because bigger forward batches outgrow the caches), and a merge of that size
    holds only a handful of requests of mixed lengths, which pad badly: on the load test's texts
    about 58 % of the padded tokens were real with 1024-token merges, 84-86 % with 8192 (99.7 % when one
    call sorts them all). Eight forward batches per merge let the length sort work while each
    forward batch keeps the CPU's own size; the server then ran at the speed of direct encoding
    (docs/SERVING.md, "Load test"). It only matters under load: an idle server sends what arrived
    within ``--batch-wait-ms``, whatever the budget.
    """
    from ..device import default_max_tokens  # torch: only once a model is served, not for `--help`

    forward = default_max_tokens(device)
    return forward * CPU_MERGE_BATCHES if device.type == "cpu" else forward


@dataclass(frozen=True)
class ServerSettings:
    """Server limits and behaviour; ``None`` means "take it from the model" (see :func:`create_app`).

    ``truncate`` is the default for requests that do not say (like TEI's ``--auto-truncate``): True cuts
    over-long inputs to the limit, False rejects them. ``batch_tokens`` is how many tokens one merged
    model call may collect before it stops waiting for more requests (``None``: :func:`default_batch_tokens`).
    """

    served_name: str | None = None  # None: the recipe name
    api_key: str | None = None
    max_inputs: int = DEFAULT_MAX_INPUTS
    max_tokens_per_input: int | None = None
    truncate: bool = True
    batch_tokens: int | None = None
    batch_wait_ms: float = DEFAULT_BATCH_WAIT_MS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_queue: int = DEFAULT_MAX_QUEUE

    def __post_init__(self) -> None:
        positive = {
            "max_inputs": self.max_inputs,
            "max_body_bytes": self.max_body_bytes,
            "max_queue": self.max_queue,
            "max_tokens_per_input": self.max_tokens_per_input,
            "batch_tokens": self.batch_tokens,
        }
        for name, value in positive.items():
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"server setting {name} must be a positive integer, got {value!r}")
        if not (0 <= self.batch_wait_ms <= 10_000):
            raise ConfigError(f"server setting batch_wait_ms must be within 0..10000 ms, got {self.batch_wait_ms}")
        if self.served_name is not None and not self.served_name.strip():
            raise ConfigError("server setting served_name must not be empty")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("the API key must not be empty; leave it unset to serve without one")

    def public(self) -> dict[str, Any]:
        """The settings a client may see (for ``GET /info``): everything but the key."""
        out = asdict(self)
        out.pop("api_key")
        out["auth"] = self.api_key is not None
        return out
