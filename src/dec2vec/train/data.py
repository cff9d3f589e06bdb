"""Training data: JSONL sources streamed in shuffled blocks, mixed so each batch has one source.

Files are read a block of ``buffer`` lines at a time and each block is shuffled with a seed
derived from (seed, epoch, block start), so a file larger than memory streams, and a reader's
position is five integers: resuming re-reads the current block and lands on the same record.
Which source a step draws from depends only on (seed, step), so a resumed run sees exactly the
batches an uninterrupted one would.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .config import DataSpec


@dataclass(frozen=True)
class Record:
    """One training example. Pairs/triplets fill query/positive/negatives; plain text fills text."""

    query: str | None = None
    positive: str | None = None
    negatives: tuple[str, ...] = ()
    text: str | None = None


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"field '{key}' must be a non-empty string")
    return value


def parse_record(line: bytes, kind: str, text_field: str) -> Record:
    """One JSONL line -> Record; ValueError says what is wrong (the caller adds file:line)."""
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"not valid JSON ({e.msg if hasattr(e, 'msg') else e})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if kind == "any":  # distillation: pairs where the line has a query, plain text otherwise
        kind = "pairs" if "query" in obj else "text"
    if kind == "text":
        if text_field in obj:
            return Record(text=_string(obj[text_field], text_field))
        raise ValueError(f"missing field '{text_field}' (unsupervised objectives read plain text)")
    for key in ("query", "positive"):
        if key not in obj:
            raise ValueError(f"missing field '{key}' (contrastive data needs query and positive)")
    negs = obj.get("negatives", [])
    if "negative" in obj:
        negs = [obj["negative"], *negs] if isinstance(negs, list) else negs
    if not isinstance(negs, list):
        raise ValueError("field 'negatives' must be a list of strings")
    return Record(
        query=_string(obj["query"], "query"),
        positive=_string(obj["positive"], "positive"),
        negatives=tuple(_string(n, "negatives") for n in negs),
    )


def resolve_data_path(path: str) -> Path:
    """A data file: a path as given, or a bare file name found in ``dec2vec data build``'s folder."""
    p = Path(path).expanduser()
    if p.is_file() or "/" in path:
        return p
    from ..models import cache_home

    built = cache_home() / "data" / path
    if built.is_file():
        return built
    raise InputError(
        f"training data not found: '{path}' is neither a file nor a corpus in {built.parent}; "
        "run `dec2vec data build` first, or give a path"
    )


class JsonlStream:
    """Endless, resumable stream of records from one JSONL file, shuffled block by block."""

    def __init__(
        self,
        path: str | Path,
        kind: str,
        *,
        text_field: str = "text",
        buffer: int = 10000,
        seed: int = 0,
        skip_bad: bool = False,
    ) -> None:
        self.path = resolve_data_path(str(path))
        if not self.path.is_file():
            raise InputError(f"training data not found: {self.path}")
        self.kind, self.text_field, self.buffer, self.seed, self.skip_bad = kind, text_field, buffer, seed, skip_bad
        self.epoch = 0
        self.block_start = 0  # byte offset of the current block
        self.block_line = 1  # line number of its first line
        self.index = 0  # next record within the block
        self.skipped_before = 0  # bad lines skipped in earlier blocks
        self._block: list[Record] | None = None
        self._identity: str | None = None
        self._block_skipped = 0
        self._next_start = 0
        self._next_line = 1

    # ---- state ---------------------------------------------------------------------------------
    def identity(self) -> str:
        """Size + hash of the first MiB: a resumed position is only valid in the same file."""
        import hashlib

        if self._identity is None:  # computed once: the file must not change under a running job
            with open(self.path, "rb") as f:
                head = hashlib.sha256(f.read(1 << 20)).hexdigest()[:16]
            self._identity = f"{self.path.stat().st_size}:{head}"
        return self._identity

    def state_dict(self) -> dict[str, Any]:
        return {
            "file": self.identity(),
            "epoch": self.epoch,
            "block_start": self.block_start,
            "block_line": self.block_line,
            "index": self.index,
            "skipped_before": self.skipped_before,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("file", self.identity()) != self.identity():
            raise InputError(
                f"{self.path} changed since the checkpoint was written; resuming would read other records "
                "from a stale position. Restore the file, or start a new run (another output_dir)"
            )
        self.epoch, self.block_start, self.block_line = state["epoch"], state["block_start"], state["block_line"]
        self.index, self.skipped_before = state["index"], state["skipped_before"]
        self._block = None

    @property
    def skipped(self) -> int:
        return self.skipped_before + self._block_skipped

    # ---- reading -------------------------------------------------------------------------------
    def _load_block(self) -> None:
        records: list[Record] = []
        skipped = 0
        line_no = self.block_line
        with open(self.path, "rb") as f:
            f.seek(self.block_start)
            n = 0
            while n < self.buffer:
                raw = f.readline()
                if not raw:
                    break
                n += 1
                if raw.strip():
                    try:
                        records.append(parse_record(raw, self.kind, self.text_field))
                    except ValueError as e:
                        if not self.skip_bad:
                            raise InputError(f"{self.path}:{line_no}: {e}") from None
                        skipped += 1
                line_no += 1
            self._next_start, self._next_line = f.tell(), line_no
        random.Random(f"{self.seed}:{self.epoch}:{self.block_start}").shuffle(records)
        self._block, self._block_skipped = records, skipped

    def next(self) -> Record:
        eofs = 0  # reaching the end twice in one call means a whole pass found no usable record
        while True:
            if self._block is None:
                self._load_block()
            assert self._block is not None
            if self.index < len(self._block):
                rec = self._block[self.index]
                self.index += 1
                return rec
            self.skipped_before += self._block_skipped
            self._block_skipped = 0
            if self._next_start >= self.path.stat().st_size:
                eofs += 1
                if eofs == 2 or (self.block_start == 0 and not self._block):
                    raise InputError(f"{self.path}: no usable records" + (" (all lines bad)" if self.skipped else ""))
                self.epoch += 1
                self.block_start, self.block_line = 0, 1
                self.skipped_before = 0  # a new pass re-reads (and re-counts) the same bad lines
            else:
                self.block_start, self.block_line = self._next_start, self._next_line
            self.index = 0
            self._block = None


def record_length(r: Record) -> int:
    """Characters a record feeds the model: a cheap, tokenizer-free stand-in for its token count."""
    return sum(len(t) for t in (r.text, r.query, r.positive) if t)


@dataclass
class _Pool:
    """Length-bucketed batches of one source: where the stream stood when the pool was drawn, the
    batches, and how many were served (so a resume redraws the same pool and skips as many)."""

    start: dict[str, Any]
    batches: list[list[Record]]
    served: int = 0


def bucket_batches(records: list[Record], size: int, rng: random.Random) -> list[list[Record]]:
    """Sort by length (stable), cut into batches of ``size``, and shuffle the batch order."""
    ordered = sorted(records, key=record_length)
    batches = [ordered[i : i + size] for i in range(0, len(ordered), size)]
    rng.shuffle(batches)
    return batches


class MixtureLoader:
    """Global batches, each drawn from one source picked by weight with a per-step seed.

    With ``buckets`` = k >= 2, a source's next k batches are drawn together, sorted by length and
    re-cut, so each batch holds texts of similar length and pads less; the batch order within the
    pool is shuffled from a seed tied to the pool's position, so it is deterministic and resumable.
    """

    def __init__(
        self, specs: list[DataSpec], kind: str, *, seed: int, buffer: int, skip_bad: bool, buckets: int = 0
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise InputError(f"data sources need distinct names, got {names}; set 'name' on each")
        self.specs = specs
        self.seed = seed
        self.buckets = buckets
        self.streams = {
            s.name: JsonlStream(s.path, kind, text_field=s.text_field, buffer=buffer, seed=seed, skip_bad=skip_bad)
            for s in specs
        }
        self._pools: dict[str, _Pool] = {}

    def _draw_pool(self, name: str, size: int, served: int = 0) -> _Pool:
        stream = self.streams[name]
        start = stream.state_dict()
        records = [stream.next() for _ in range(size * self.buckets)]
        rng = random.Random(f"{self.seed}:bucket:{name}:{start['epoch']}:{start['block_start']}:{start['index']}")
        return _Pool(start, bucket_batches(records, size, rng), served)

    def pick(self, step: int) -> DataSpec:
        rng = random.Random(f"{self.seed}:source:{step}")
        return rng.choices(self.specs, weights=[s.weight for s in self.specs])[0]

    def batch(self, step: int, size: int) -> tuple[DataSpec, list[Record]]:
        spec = self.pick(step)
        name: str = spec.name  # type: ignore[assignment]
        if self.buckets < 2:
            stream = self.streams[name]
            return spec, [stream.next() for _ in range(size)]
        pool = self._pools.get(name)
        if pool is None or pool.served >= len(pool.batches) or len(pool.batches[pool.served]) != size:
            pool = self._pools[name] = self._draw_pool(name, size)
        pool.served += 1
        return spec, list(pool.batches[pool.served - 1])

    @property
    def skipped(self) -> dict[str, int]:
        return {name: s.skipped for name, s in self.streams.items()}

    def state_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: s.state_dict() for name, s in self.streams.items()}
        for name, pool in self._pools.items():  # a pool is resumed by redrawing it from its start
            out[name] = {"pool_start": pool.start, "served": pool.served, "size": len(pool.batches[0])}
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pools = {}
        for name, s in self.streams.items():
            if name not in state:
                continue
            saved = state[name]
            if "pool_start" in saved:
                s.load_state_dict(saved["pool_start"])
                self._pools[name] = self._draw_pool(name, saved["size"], saved["served"])
            else:
                s.load_state_dict(saved)


def draw_texts(loader: MixtureLoader, n: int) -> list[str]:
    """The first ``n`` texts ``loader`` draws, batch by batch: plain texts, queries and positives."""
    texts: list[str] = []
    step = 0
    while len(texts) < n:
        _, records = loader.batch(step, min(64, n))
        for r in records:
            texts.extend(t for t in (r.text, r.query, r.positive) if t)
        step += 1
    return texts[:n]
