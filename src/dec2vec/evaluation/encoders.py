"""The models a report compares, behind one small interface, and their adapter to mteb.

A :class:`TextModel` turns texts (with an optional task instruction) into L2-normalised float32
rows. Three kinds exist: any dec2vec :class:`~dec2vec.embedder.Embedder` (trained folder or
untrained recipe), the TF-IDF+SVD (LSA) baseline, and all-MiniLM-L6-v2 with mean pooling, the
small model a user would pick instead. :class:`MtebEncoder` is what mteb's evaluators call: it
memoises embeddings by (instruction, text), so a Wikipedia summary shared by four tasks is
embedded once per instruction, and it counts texts, tokens and seconds for the cost table.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import models
from ..device import inference_dtype
from ..embedder import Embedder
from ..errors import InputError
from ..foundations.fingerprint import module_digest
from ..pipeline import TruncationWarning
from ..recipes import recipe_names

LSA = "lsa"
MINILM = "minilm"
MPNET = "mpnet"
# sentence-transformers encoders scored with mean pooling over 256 tokens: report name -> registry model
SENTENCE_ENCODERS = {
    MINILM: ("all-minilm-l6-v2", "all-MiniLM-L6-v2 (mean)"),
    MPNET: ("all-mpnet-base-v2", "all-mpnet-base-v2 (mean)"),
}


class BaselineMissing(InputError):
    """A baseline whose model packages are not installed (e.g. ``mpnet`` before ``dec2vec models pull``)."""


class TextModel:
    """A model in the report: texts -> (n, d) unit rows. ``identity`` keys the result cache."""

    name: str
    kind: str  # "dec2vec", "lsa" or "minilm"
    uses_instructions: bool = False
    fits_per_task: bool = False  # True when prepare() changes the embedding space (memoised rows go stale)
    generates: bool = False  # True for a dec2vec model: its base LM can be scored on generation too

    def embed(self, texts: list[str], instruction: str | None) -> np.ndarray:
        raise NotImplementedError

    def count_tokens(self, texts: list[str], instruction: str | None) -> list[int] | None:
        """Tokens the model processes per text (None when the notion does not apply)."""
        return None

    def prepare(self, texts: Iterable[str]) -> None:
        """Called with a task's texts before it runs (the LSA baseline fits on them)."""

    def identity(self) -> str:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind}


class Dec2VecTextModel(TextModel):
    """A dec2vec Embedder. Every recipe may read ``text_tokens`` tokens of each text: the backbone
    limit is set per call to that budget times the recipe's text copies plus its template and
    instruction, so echo's repeat and icl's few-shot prefix cost tokens (the cost table shows it)
    but never cut the text shorter than another recipe sees it."""

    kind = "dec2vec"
    uses_instructions = True
    generates = True

    def __init__(self, name: str, embedder: Embedder, text_tokens: int, source: str) -> None:
        self.name = name
        self.embedder = embedder
        self.text_tokens = text_tokens
        self.source = source
        self._identity: str | None = None
        limit = getattr(embedder.backbone.config, "max_position_embeddings", None)
        self._ceiling = limit or 1 << 30

    def _set_length(self, instruction: str | None) -> None:
        emb = self.embedder
        emb.max_length = self._ceiling
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncationWarning)
            probe = emb.layouts(["x"], instruction)[0]  # "x" is one token per copy
        copies = emb.recipe.text_copies
        emb.max_length = min(self._ceiling, len(probe.ids) - copies + copies * self.text_tokens)

    def embed(self, texts: list[str], instruction: str | None) -> np.ndarray:
        self._set_length(instruction)
        with warnings.catch_warnings():  # long news bodies are cut on purpose (see Settings.max_length)
            warnings.simplefilter("ignore", TruncationWarning)
            return self.embedder.encode(texts, instruction, normalize=True)

    def count_tokens(self, texts: list[str], instruction: str | None) -> list[int]:
        self._set_length(instruction)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncationWarning)
            return [len(lay.ids) for lay in self.embedder.layouts(texts, instruction)]

    def identity(self) -> str:
        if self._identity is None:
            cfg = (
                self.embedder.config.to_dict()
                if hasattr(self.embedder.config, "to_dict")
                else vars(self.embedder.config)
            )
            extra: dict[str, Any] = {"config": cfg, "text_tokens": self.text_tokens}
            if self.embedder.quantization is not None:  # absent for float models: their old keys stay valid
                extra["quantization"] = self.embedder.quantization.to_dict()
            self._identity = module_digest(self.embedder, extra)
        return self._identity

    def describe(self) -> dict[str, Any]:
        e = self.embedder
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "recipe": e.config.recipe,
            "backbone": e.config.backbone,
            "encoder": e.config.encoder,
            "embedding_dim": e.embedding_dim,
            "text_tokens": self.text_tokens,
            "parameters": e.num_parameters(),  # float parameters: int8 layers hold packed weights instead
            "dtype": str(e.dtype).removeprefix("torch."),
            "quantize": e.quantization.summary() if e.quantization else None,
        }


class LsaModel(TextModel):
    """TF-IDF (sublinear tf, English stop words) then truncated SVD, fitted on each task's own texts.

    Fitting on the unlabelled texts of the task being evaluated is the usual LSA setting; it sees
    no labels or relevance judgements.
    """

    kind = LSA
    fits_per_task = True

    def __init__(self, name: str = "tfidf-svd (LSA)", dim: int = 256, seed: int = 0) -> None:
        self.name, self.dim, self.seed = name, dim, seed
        self._pipe: Any = None

    def prepare(self, texts: Iterable[str]) -> None:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline

        corpus = sorted(set(texts))
        tfidf = TfidfVectorizer(sublinear_tf=True, stop_words="english", min_df=1)
        n_terms = len(tfidf.fit(corpus).vocabulary_)
        k = max(1, min(self.dim, n_terms - 1, len(corpus) - 1))
        self._pipe = make_pipeline(tfidf, TruncatedSVD(n_components=k, random_state=self.seed)).fit(corpus)

    def embed(self, texts: list[str], instruction: str | None) -> np.ndarray:
        if self._pipe is None:
            raise RuntimeError("LsaModel.prepare(texts) must run before embed")
        x = np.asarray(self._pipe.transform(texts), dtype=np.float32)  # (n, k)
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.maximum(norm, 1e-12)

    def identity(self) -> str:
        return hashlib.sha256(f"lsa:v1:{self.dim}:{self.seed}".encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "embedding_dim": self.dim, "fit_on": "each task's texts"}


class MiniLMModel(TextModel):
    """A sentence-transformers encoder with mean pooling (its native setting), 256 tokens:
    all-MiniLM-L6-v2 by default, or another registry model (all-mpnet-base-v2 for ``mpnet``)."""

    kind = MINILM

    def __init__(
        self, name: str = "all-MiniLM-L6-v2 (mean)", device: str | None = None, model: str = models.DEFAULT_ENCODER
    ) -> None:
        from ..device import pick_device
        from ..encoder_only import EncoderOnlyEmbedder
        from ..loading import load_encoder

        self.name = name
        self.device = pick_device(device)
        self.model = model
        self.encoder = load_encoder(model, dtype=torch.float32, max_length=256, pooling="mean").to(self.device).eval()
        self.embedder = EncoderOnlyEmbedder(model, self.encoder)  # its encode batches, as everywhere else
        self._identity: str | None = None

    def embed(self, texts: list[str], instruction: str | None) -> np.ndarray:
        """(n, e) unit rows; the task instruction is not used (``uses_instructions`` is False)."""
        with warnings.catch_warnings():  # long texts are cut at 256 tokens on purpose, as the model ships
            warnings.simplefilter("ignore", TruncationWarning)
            return self.embedder.encode(texts, max_batch_size=64, show_progress=False)

    def count_tokens(self, texts: list[str], instruction: str | None) -> list[int]:
        return [min(n, self.encoder.max_length) for n in self.encoder.count_tokens(texts)]

    def identity(self) -> str:
        if self._identity is None:
            extra = {"kind": "minilm", "max_length": self.encoder.max_length}
            if self.model != models.DEFAULT_ENCODER:  # all-MiniLM-L6-v2's key stays as it was
                extra["model"] = self.model
            self._identity = module_digest(self.encoder, extra)
        return self._identity

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "embedding_dim": self.encoder.dim,
            "max_length": self.encoder.max_length,
        }


def check_spec(spec: str) -> None:
    """Refuse a model spec that :func:`load_model` would refuse, without loading anything.

    Baselines that are not installed are left to ``load_model`` (the report skips them).
    """
    from ..loading import check_model

    _, _, ref = spec.partition("=") if "=" in spec else ("", "", spec)
    if ref == LSA or ref in SENTENCE_ENCODERS:
        return
    if not ref:
        raise InputError(f"model '{spec}': empty reference")
    check_model(ref)


def load_model(
    spec: str,
    *,
    text_tokens: int,
    device: str | None = None,
    dtype: str | None = None,
    quantize: str | None = None,
) -> TextModel:
    """``lsa``, ``minilm``, ``mpnet``, a recipe name (untrained, on the default backbone and encoder) or a saved folder;
    ``NAME=SPEC`` renames. ``dtype`` (float32, bfloat16) and ``quantize`` (int8) apply to dec2vec models; the
    baselines stay fp32."""
    name, _, ref = spec.partition("=") if "=" in spec else ("", "", spec)
    if ref == LSA:
        return LsaModel(name or "tfidf-svd (LSA)")
    if ref in SENTENCE_ENCODERS:
        registry_name, label = SENTENCE_ENCODERS[ref]
        if registry_name in models.REGISTRY and not models.is_installed(registry_name):
            raise BaselineMissing(
                f"{registry_name} is not installed; run `dec2vec models pull {registry_name}` to add its row"
            )
        if registry_name not in models.REGISTRY:
            raise BaselineMissing(f"{registry_name} is not a registered model in this dec2vec version")
        return MiniLMModel(name or label, device, registry_name)
    if not ref:
        raise InputError(f"model '{spec}': empty reference")
    load_as = inference_dtype(dtype, quantize, device)  # bf16 on CPUs that run it natively
    emb = Embedder.from_pretrained(ref, device=device, dtype=load_as, quantize=quantize)
    label = name or (f"{ref} (untrained)" if ref in recipe_names() else ref.rstrip("/").split("/")[-1])
    if label == "model" and "/" in ref.rstrip("/"):  # runs/NAME/model -> NAME
        label = ref.rstrip("/").split("/")[-2]
    if dtype and dtype not in ("float32", "auto") and not name:
        label += f" [{dtype}]"
    if quantize and not name:
        label += f" [{quantize}]"
    return Dec2VecTextModel(label, emb, text_tokens, ref)


@dataclass
class Cost:
    texts: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def add(self, texts: int, tokens: int, seconds: float) -> None:
        self.texts += texts
        self.tokens += tokens
        self.seconds += seconds


def _mteb_base() -> type:
    from mteb.models.abs_encoder import AbsEncoder

    return AbsEncoder


class MtebEncoder(_mteb_base()):  # type: ignore[misc]
    """mteb's EncoderProtocol over a :class:`TextModel`, with an embedding memo and cost counters.

    Retrieval and reranking queries get the task's instruction and documents none; every text of a
    symmetric task (STS, classification, clustering) gets it, as MTEB does for instruction models.
    """

    def __init__(self, model: TextModel, instructions: dict[str, str] | None) -> None:
        from mteb.models.model_meta import ModelMeta, ScoringFunction

        self.model = model
        self.instructions = instructions or {}
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model.name)
        self.mteb_model_meta = ModelMeta.create_empty(
            overwrites={
                "name": f"dec2vec/{safe}",
                "revision": model.identity()[:12],
                "similarity_fn_name": ScoringFunction.COSINE,
            }
        )
        self.memo: dict[tuple[str | None, str], np.ndarray] = {}
        self.cost = Cost()

    def prepare(self, texts: Iterable[str]) -> None:
        """Before a task: let the model fit on the task's texts (LSA); its old rows are then invalid."""
        self.model.prepare(texts)
        if self.model.fits_per_task:
            self.memo.clear()

    def instruction(self, task_name: str, task_type: str, prompt_type: Any) -> str | None:
        if not self.model.uses_instructions:
            return None
        text = self.instructions.get(task_name)
        if task_type in ("Retrieval", "Reranking"):
            is_query = prompt_type is not None and str(getattr(prompt_type, "value", prompt_type)) == "query"
            return text if is_query else None
        return text

    def embed(self, texts: list[str], instruction: str | None) -> np.ndarray:
        """(n, d) rows for ``texts``, computing only the ones not memoised."""
        todo = list(dict.fromkeys(t for t in texts if (instruction, t) not in self.memo))
        if todo:
            t0 = time.perf_counter()
            vecs = self.model.embed(todo, instruction)
            dt = time.perf_counter() - t0
            counts = self.model.count_tokens(todo, instruction)
            self.cost.add(len(todo), sum(counts) if counts else 0, dt)
            for t, v in zip(todo, vecs, strict=True):
                self.memo[(instruction, t)] = v
        return np.stack([self.memo[(instruction, t)] for t in texts]) if texts else np.zeros((0, 1), np.float32)

    def encode(
        self, inputs: Any, *, task_metadata: Any, hf_split: str, hf_subset: str, prompt_type: Any = None, **kwargs: Any
    ) -> np.ndarray:
        texts = [t for batch in inputs for t in batch["text"]]
        return self.embed(texts, self.instruction(task_metadata.name, task_metadata.type, prompt_type))
