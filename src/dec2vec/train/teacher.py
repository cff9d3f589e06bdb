"""A distillation teacher's embeddings, computed once per text and kept on disk.

The cache lives under ``$DEC2VEC_HOME/teacher/<weights digest>-<max length>/`` and is keyed by a
hash of each text, so every run and every method that distils from the same teacher reuses it.
It grows in shards: each block of newly encoded texts is written with
:func:`dec2vec.foundations.files.atomic_path` (a temporary file, fsynced, then renamed into place),
so a process killed mid-way (even ``kill -9``) loses at most the block it was encoding, and the
next run starts from the shards already there.

The teacher runs as a frozen encoder with its own pooling (``dec2vec.encoder.LightEncoder``; for a
sentence-transformers folder that is the folder's pooling and ``max_seq_length``), and its vectors
are L2-normalised.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch

from ..foundations.files import atomic_path

log = logging.getLogger(__name__)

KEY_BYTES = 16  # of sha256(text): collisions are out of reach at any corpus size
STALE_TMP_S = 3600  # a temporary shard this old was left by a killed writer


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:KEY_BYTES]


class TeacherCache:
    """``embeddings(texts)`` -> (n, D) float32 unit vectors, encoding only texts never seen before.

    ``encode`` (texts -> (n, D) array) is given for tests; by default the teacher model is loaded
    on the first miss, so a run whose texts are all cached never loads it.
    """

    def __init__(
        self,
        teacher: str,
        *,
        max_length: int | None = None,
        long_texts: str = "cut",
        shard_size: int = 1024,
        batch_size: int = 32,
        encode: Callable[[list[str]], np.ndarray] | None = None,
        root: Path | None = None,
    ) -> None:
        from .. import models

        folder = models.weights_folder(teacher)
        if not isinstance(folder, Path):
            raise models.ModelNotFoundError(
                f"teacher '{teacher}' must be a local folder or a registered model (`dec2vec models pull NAME`)"
            )
        self.teacher, self.folder = teacher, folder
        self.max_length, self.shard_size, self.batch_size = max_length, shard_size, batch_size
        self.digest = models.weights_digest(folder)
        base = root if root is not None else models.cache_home() / "teacher"
        self.long_texts = long_texts  # a text over the teacher's limit: cut, or averaged over windows
        suffix = "" if long_texts == "cut" else f"-{long_texts}"  # "cut" keeps the caches written before
        self.dir = base / f"{self.digest[:16]}-{max_length or 'native'}{suffix}"
        self._encode = encode
        self._model: torch.nn.Module | None = None
        self._index: dict[bytes, tuple[int, int]] = {}  # key -> (block, row)
        self._blocks: list[np.ndarray] = []
        self._load_shards()

    # ---- disk ----------------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read the shards (another process may have added some)."""
        self._index, self._blocks = {}, []
        self._load_shards()

    def _load_shards(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for tmp in self.dir.glob(".shard-*"):  # atomic_path's temp files (.shard-NAME.npz.XXXXXXXX.npz)
            if now - tmp.stat().st_mtime > STALE_TMP_S:
                tmp.unlink(missing_ok=True)
        for path in sorted(self.dir.glob("shard-*.npz")):
            with np.load(path) as z:
                keys, vectors = z["keys"], z["vectors"]  # (n, KEY_BYTES) uint8, (n, D) float32
            self._add(keys, vectors)

    def _add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        block = len(self._blocks)
        self._blocks.append(vectors)
        for row, key in enumerate(keys):
            self._index.setdefault(key.tobytes(), (block, row))

    def _write_shard(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        name = f"shard-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
        # each shard name is new, so atomic_path's own cleanup never sees a killed writer's temp file:
        # _load_shards removes those by age
        with atomic_path(self.dir / f"{name}.npz", durable=True) as tmp, open(tmp, "wb") as f:
            np.savez(f, keys=keys, vectors=vectors)

    # ---- the teacher ---------------------------------------------------------------------------
    def _encode_texts(self, texts: list[str]) -> np.ndarray:
        if self._encode is not None:
            return np.asarray(self._encode(texts), dtype=np.float32)
        if self._model is None:
            from ..loading import load_encoder

            with torch.random.fork_rng(devices=[]):  # loading must not move the training RNG
                self._model = load_encoder(str(self.folder), max_length=self.max_length or 1 << 20).eval()
                self._model.long_texts = self.long_texts
        enc = self._model
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
        out = np.empty((len(texts), enc.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                feats = enc.tokenize([texts[i] for i in idx])
                vec = enc.encode_features(feats)  # (b, D)
                out[idx] = vec.float().numpy()
        return out

    # ---- lookups -------------------------------------------------------------------------------
    def __contains__(self, text: str) -> bool:
        return text_key(text) in self._index

    def __len__(self) -> int:
        return len(self._index)

    def ensure(self, texts: Iterable[str], progress: bool = False) -> int:
        """Encode and store every text not cached yet, ``shard_size`` at a time; returns how many."""
        missing: dict[bytes, str] = {}
        for t in texts:
            k = text_key(t)
            if k not in self._index:
                missing.setdefault(k, t)
        if not missing:
            return 0
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(missing), desc=f"teacher {self.teacher}", unit="text")
        items = list(missing.items())
        try:
            for start in range(0, len(items), self.shard_size):
                block = items[start : start + self.shard_size]
                vectors = self._encode_texts([t for _, t in block])  # (n, D)
                vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
                keys = np.frombuffer(b"".join(k for k, _ in block), dtype=np.uint8).reshape(len(block), KEY_BYTES)
                self._write_shard(keys, vectors)
                self._add(keys, vectors)
                if bar is not None:
                    bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
        return len(items)

    def embeddings(self, texts: list[str]) -> torch.Tensor:
        """(n, D) float32 unit vectors of ``texts``, in order (encoding any that are missing)."""
        self.ensure(texts)
        rows = [self._index[text_key(t)] for t in texts]
        return torch.from_numpy(np.stack([self._blocks[b][r] for b, r in rows]))
