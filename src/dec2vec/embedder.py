"""``Embedder``: one class that embeds text with any registered recipe on any causal LM.

Flow: texts -> token layouts (recipe) -> length-sorted token-budget batches (engine) -> backbone
run causally or bidirectionally (attention) -> pooled by the recipe -> numpy, in input order.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from . import models, pretrained
from .attention import check_attn_implementation, decoder_of, run_decoder, run_decoder_packed, varlen_supported
from .config import CONFIG_NAME, FORMAT_VERSION, EmbedderConfig
from .encoder import LightEncoder, native_pooling
from .engine import Prefetcher, chunked, default_max_tokens, pick_device, pick_dtype, plan_batches
from .errors import ConfigError, InputError, ModelNotFoundError, TruncationError
from .inputs import Layout, TextTokenizer, build_layouts, collate, pack_features
from .recipes import Recipe, get_recipe, recipe_names

HEADS_NAME = "heads.safetensors"
# texts tokenized, length-sorted and batched together. Small enough that tokenizing the next block
# overlaps with the model running this one; large enough that sorting leaves little padding.
ENCODE_CHUNK = 2048


class TruncationWarning(UserWarning):
    """Some texts were longer than the model's limit and were cut; ``indices`` says which."""

    def __init__(self, indices: list[int]) -> None:
        super().__init__(
            f"{len(indices)} text(s) exceeded the model's limit and were truncated (first: item {indices[0]})"
        )
        self.indices = indices


def validate_texts(texts: Any, offset: int = 0) -> list[str]:
    """The caller's texts as a list of non-empty strings, or an InputError naming the bad item.

    ``offset`` is the index of ``texts[0]`` in a longer stream, so messages name the global item.
    """
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or isinstance(texts, (bytes, bytearray)):
        raise InputError(f"texts must be a string or a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise InputError("no texts to encode: the list is empty")
    for i, t in enumerate(texts, start=offset):
        if not isinstance(t, str):
            raise InputError(f"item {i}: expected a string, got {type(t).__name__}", index=i)
        if not t.strip():
            raise InputError(f"item {i}: the text is empty or whitespace-only", index=i)
    return list(texts)


def _load_backbone(ref: str, dtype: torch.dtype) -> tuple[nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = models.resolve(ref)
    kwargs: dict[str, Any] = {}
    if isinstance(where, Path) and (gguf := models.gguf_in(where)):
        kwargs["gguf_file"] = gguf
    try:
        model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype, attn_implementation="sdpa", **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
    except (OSError, ValueError, ImportError) as e:
        raise ModelNotFoundError(f"could not load backbone '{ref}': {e}") from e
    check_attn_implementation(model)
    return model, tokenizer


def _load_encoder(ref: str, dtype: torch.dtype, max_length: int, pooling: str | None) -> LightEncoder:
    from transformers import AutoModel, AutoTokenizer

    where = models.resolve(ref)
    try:
        model = AutoModel.from_pretrained(where, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(where)
    except (OSError, ValueError, ImportError) as e:
        raise ModelNotFoundError(f"could not load light encoder '{ref}': {e}") from e
    if isinstance(where, Path):
        pooling = pooling or native_pooling(where)
        st_cfg = where / "sentence_bert_config.json"
        if st_cfg.is_file():  # the encoder's trained length (256 for all-MiniLM-L6-v2)
            import json

            max_length = min(max_length, int(json.loads(st_cfg.read_text()).get("max_seq_length", max_length)))
    return LightEncoder(model, tokenizer, pooling or "mean", max_length)


def _hub_folder(ref: str) -> Path | None:
    """A saved dec2vec model on the Hugging Face hub, downloaded; None when it cannot be had."""
    if ref.count("/") != 1 or ref.startswith((".", "/", "~")):
        return None
    try:
        from huggingface_hub import hf_hub_download, snapshot_download

        hf_hub_download(ref, CONFIG_NAME)  # cheap check first: never download a plain LLM repo
        return Path(snapshot_download(ref))
    except Exception:  # offline, no such repo, not a dec2vec repo, no access: the caller's message covers them
        return None


def _not_an_embedder(name: str) -> str:
    """Why a registry model name is not something ``from_pretrained`` loads, and what to do instead."""
    if models.REGISTRY[name].role == "encoder":
        return (
            f"'{name}' is an encoder-only model, not a dec2vec embedder: `dec2vec embed --model {name}` embeds "
            f"with it as it ships (dec2vec.sentence_encoder.SentenceEncoder); as Causal2Vec's light encoder: "
            f"Embedder.from_recipe('causal2vec', encoder='{name}')"
        )
    return (
        f"'{name}' is a backbone LLM, not a dec2vec embedder: give it a recipe, "
        f"e.g. Embedder.from_recipe('mean', backbone='{name}'), or train one (dec2vec train)"
    )


class Embedder(nn.Module):
    """Text embeddings from a causal LM with a registered recipe.

    Build one with :meth:`from_recipe` (untrained, any backbone) or :meth:`from_pretrained`
    (a saved folder, or a recipe name on the default models), then call :meth:`encode`.
    """

    def __init__(
        self,
        config: EmbedderConfig,
        backbone: nn.Module,
        tokenizer: Any,
        encoder: LightEncoder | None = None,
        heads: nn.ModuleDict | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.recipe: Recipe = get_recipe(config.recipe)(config.recipe_options)
        config.recipe_options = self.recipe.options.to_dict()  # normalised, defaults filled in
        if self.recipe.contextual_token and encoder is None:
            raise ConfigError(f"recipe '{config.recipe}' needs a light encoder")
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.text_tokenizer = TextTokenizer(tokenizer, force_bos=self.recipe.bos_first)
        self.encoder = encoder if self.recipe.contextual_token else None
        if heads is None:
            gen = torch.Generator().manual_seed(config.seed)
            heads = self.recipe.build_heads(self.hidden_size, encoder.dim if encoder else None, gen)
        self.heads = heads
        self._adapter_dir: Path | None = None
        limit = getattr(backbone.config, "max_position_embeddings", None)
        self.max_length = min(config.max_length, limit) if limit else config.max_length
        self.heads.to(device=self.device, dtype=self.dtype)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_recipe(
        cls,
        recipe: str,
        backbone: str | os.PathLike[str] = models.DEFAULT_BACKBONE,
        encoder: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: str = "auto",
        seed: int = 0,
        max_length: int = 512,
        **recipe_options: Any,
    ) -> Embedder:
        """An untrained embedder: ``recipe`` on ``backbone`` (and ``encoder`` for Causal2Vec)."""
        recipe_cls = get_recipe(recipe)
        if recipe_cls.contextual_token and encoder is None:
            encoder = models.DEFAULT_ENCODER
        config = EmbedderConfig(
            recipe=recipe,
            backbone=os.fspath(backbone),
            encoder=os.fspath(encoder) if recipe_cls.contextual_token and encoder is not None else None,
            recipe_options=dict(recipe_options),
            max_length=max_length,
            seed=seed,
            dtype=dtype,
        )
        recipe_cls.Options.from_dict(config.recipe_options)  # fail on bad options before loading weights
        return cls._build(config, config.backbone, config.encoder, device)

    @classmethod
    def _build(
        cls, config: EmbedderConfig, backbone_ref: str, encoder_ref: str | None, device: str | torch.device | None
    ) -> Embedder:
        dev = pick_device(device)
        dt = pick_dtype(config.dtype, dev)
        model, tokenizer = _load_backbone(backbone_ref, dt)
        enc = None
        if encoder_ref is not None:
            enc = _load_encoder(encoder_ref, dt, config.encoder_max_length, config.encoder_pooling)
            config.encoder_pooling = enc.pooling  # saved, so a reload does not depend on the folder's extras
            config.encoder_max_length = enc.max_length
        emb = cls(config, model, tokenizer, enc)
        return emb.to(dev).eval()

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike[str], *, device: str | torch.device | None = None, dtype: str | None = None
    ) -> Embedder:
        """A saved dec2vec folder, a packaged trained model (`dec2vec.pretrained`), or a recipe name (untrained)."""
        ref = os.fspath(name_or_path)
        folder = Path(ref).expanduser()
        if (folder / CONFIG_NAME).is_file():
            return cls._load_saved(folder, device, dtype)
        if ref in pretrained.PACKAGED:
            return cls._load_saved(pretrained.path(ref), device, dtype)
        if ref in recipe_names():
            return cls.from_recipe(ref, device=device, dtype=dtype or "auto")
        if folder.exists():
            raise ModelNotFoundError(f"'{ref}' is not a saved dec2vec model: {folder / CONFIG_NAME} is missing")
        if ref in models.REGISTRY:
            raise ModelNotFoundError(_not_an_embedder(ref))
        hub = _hub_folder(ref)
        if hub is not None:
            return cls._load_saved(hub, device, dtype)
        raise ModelNotFoundError(
            f"'{ref}' is neither a saved dec2vec model folder nor a recipe; recipes: {', '.join(recipe_names())}"
        )

    @classmethod
    def _load_saved(cls, folder: Path, device: str | torch.device | None, dtype: str | None) -> Embedder:
        from safetensors.torch import load_file

        config = EmbedderConfig.load(folder)
        # options a folder of an older format left out meant that format's behaviour, not today's default
        for key, value in get_recipe(config.recipe).Options.legacy.get(config.format_version, {}).items():
            config.recipe_options.setdefault(key, value)
        config.format_version = FORMAT_VERSION
        if dtype is not None:
            config.dtype = dtype
        # a slim folder (dec2vec.pretrained) holds only the trained parts and names its base models
        backbone_ref = str(folder / "backbone") if (folder / "backbone").is_dir() else config.backbone
        enc_ref = None
        if config.encoder is not None:
            enc_ref = str(folder / "encoder") if (folder / "encoder").is_dir() else config.encoder
        emb = cls._build(config, backbone_ref, enc_ref, device)
        if config.adapter:
            emb._merge_adapter(folder / config.adapter)
        heads_file = folder / HEADS_NAME
        if len(emb.heads) and heads_file.is_file():
            state = load_file(heads_file, device=str(emb.device))
            emb.heads.load_state_dict(state, strict=True)
            emb.heads.to(dtype=emb.dtype)
        elif len(emb.heads):
            raise ModelNotFoundError(f"{folder}: {HEADS_NAME} is missing for recipe '{config.recipe}'")
        return emb

    def _merge_adapter(self, adapter: Path) -> None:
        """Apply a saved LoRA adapter and merge it; the model in memory is then a plain one again."""
        try:
            from peft import PeftModel
        except ImportError as e:
            raise ModelNotFoundError(f"{adapter} is a LoRA adapter; loading it needs peft: pip install peft") from e
        with warnings.catch_warnings():
            # peft reads transformers' deprecated `is_gradient_checkpointing` while wrapping the model;
            # the warning is about peft's code, says nothing to a user, and came on every load
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            self.backbone = PeftModel.from_pretrained(self.backbone, adapter).merge_and_unload()
        self.config.adapter = None  # merged: a re-save writes the merged backbone and no adapter

    def attach_adapter(self, adapter: Path) -> None:
        """Save a (not merged) peft adapter folder beside the base backbone on the next save."""
        self._adapter_dir = Path(adapter)
        self.config.adapter = "adapter"

    def save_pretrained(self, folder: str | os.PathLike[str]) -> None:
        """Write a self-contained folder (safetensors + JSON) atomically: temp folder, then rename.

        It also loads with ``SentenceTransformer(folder, trust_remote_code=True)``.
        """
        from safetensors.torch import save_file

        from .integrations.sentence_transformers import write_st_files

        dest = Path(folder).expanduser().resolve()
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            self.config.save(tmp)
            if self.config.adapter:
                shutil.copytree(self._adapter_dir, tmp / self.config.adapter)
            self.backbone.save_pretrained(tmp / "backbone", safe_serialization=True)
            self.tokenizer.save_pretrained(tmp / "backbone")
            if self.encoder is not None:
                self.encoder.model.save_pretrained(tmp / "encoder", safe_serialization=True)
                self.encoder.tokenizer.save_pretrained(tmp / "encoder")
            if len(self.heads):
                state = {k: v.detach().contiguous().cpu() for k, v in self.heads.state_dict().items()}
                save_file(state, tmp / HEADS_NAME)
            write_st_files(tmp, self.embedding_dim)
            tmp.chmod(0o755)  # mkdtemp makes it private; a saved model is for others to read too
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if not dest.exists():
            os.replace(tmp, dest)
            return
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)  # an existing folder cannot be replaced in one rename; keep it until the new one is in
        try:
            os.replace(tmp, dest)
        except BaseException:
            os.replace(old, dest)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)

    # ---- facts ----------------------------------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        return int(self.backbone.get_input_embeddings().weight.shape[-1])

    @property
    def embedding_dim(self) -> int:
        return self.recipe.embedding_dim(self.hidden_size)

    @property
    def device(self) -> torch.device:
        return self.backbone.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.backbone.get_input_embeddings().weight.dtype

    def num_parameters(self) -> dict[str, int]:
        parts = {"backbone": self.backbone, "heads": self.heads}
        if self.encoder is not None:
            parts["encoder"] = self.encoder
        return {k: sum(p.numel() for p in m.parameters()) for k, m in parts.items()}

    # ---- texts -> tensors -----------------------------------------------------------------------
    def layouts(self, texts: list[str], instruction: str | None = None, truncate: bool = True) -> list[Layout]:
        """Token layouts of validated texts, cut to ``max_length`` (warning) or refused (error)."""
        out, cut = self._layouts(texts, instruction, truncate)
        if cut:
            warnings.warn(TruncationWarning(cut), stacklevel=3)
        return out

    def _layouts(
        self, texts: list[str], instruction: str | None, truncate: bool, offset: int = 0
    ) -> tuple[list[Layout], list[int]]:
        """Layouts and the (chunk-local) indices of truncated texts; errors name item ``offset + i``."""
        tt, recipe = self.text_tokenizer, self.recipe
        out = build_layouts([recipe.segments(t, instruction) for t in texts], tt, recipe.contextual_token)
        cut: list[int] = []
        for i, lay in enumerate(out):
            if not any(lay.pooled):
                raise InputError(f"item {offset + i}: the text has no tokens for this tokenizer", index=offset + i)
            if len(lay.ids) > self.max_length:
                if not truncate:
                    raise TruncationError(
                        f"item {offset + i}: {len(lay.ids)} tokens (template included) exceed max_length "
                        f"{self.max_length}; shorten the text or allow truncation",
                        index=offset + i,
                    )
                out[i] = self._truncated(offset + i, texts[i], instruction, len(lay.ids))
                cut.append(i)
        if self.encoder is not None:
            counts = self.encoder.count_tokens(texts)
            long = [i for i, n in enumerate(counts) if n > self.encoder.max_length]
            if long and not truncate:
                raise TruncationError(
                    f"item {offset + long[0]}: {counts[long[0]]} tokens exceed the light encoder's limit "
                    f"{self.encoder.max_length}",
                    index=offset + long[0],
                )
            cut = sorted(set(cut) | set(long))
        return out, cut

    def _truncated(self, i: int, text: str, instruction: str | None, length: int) -> Layout:
        """The layout of ``text`` cut at a token boundary so that the whole input fits ``max_length``."""
        tt, recipe = self.text_tokenizer, self.recipe
        offsets = tt.offsets([text])[0]
        keep = len(offsets) - math.ceil((length - self.max_length) / recipe.text_copies)
        while keep >= 1:  # joint tokenization can merge differently at the cut: shrink until it fits
            lay = build_layouts(
                [recipe.segments(text[: offsets[keep - 1][1]], instruction)], tt, recipe.contextual_token
            )[0]
            if len(lay.ids) <= self.max_length:
                return lay
            keep -= 1
        raise InputError(f"item {i}: the template and instruction alone fill max_length {self.max_length}", index=i)

    def tokenize(
        self,
        texts: Sequence[str],
        instruction: str | None = None,
        truncate: bool = True,
        padding_side: Literal["right", "left"] = "right",
    ) -> dict[str, torch.Tensor]:
        """One batch of features (CPU tensors) for :meth:`forward`."""
        texts = validate_texts(texts)
        return self._features(texts, self.layouts(texts, instruction, truncate), padding_side)

    def _features(
        self, texts: list[str], layouts: list[Layout], padding_side: Literal["right", "left"]
    ) -> dict[str, torch.Tensor]:
        feats = collate(layouts, self.text_tokenizer.pad_id, padding_side)
        if self.encoder is not None:
            feats.update(self.encoder.tokenize(texts))
        return feats

    # ---- tensors -> embeddings ------------------------------------------------------------------
    def input_embeddings(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T, d) backbone input: token embeddings, with the Contextual token in its slot."""
        input_ids = features["input_ids"]  # (B, T)
        x = self.backbone.get_input_embeddings()(input_ids)  # (B, T, d)
        if self.recipe.contextual_token:
            assert self.encoder is not None
            v = self.encoder(features["encoder_input_ids"], features["encoder_attention_mask"])  # (B, e)
            ctx = self.heads["projector"](v).to(x.dtype)  # (B, d): the Contextual token
            slot = nn.functional.one_hot(features["ctx_index"], input_ids.shape[1]).bool()  # (B, T)
            x = torch.where(slot[..., None], ctx[:, None, :], x)  # (B, T, d)
        return x

    def hidden_states(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T, d) last-layer states, with the recipe's attention (training objectives read them)."""
        x = self.input_embeddings(features)
        return run_decoder(self.backbone, x, features["attention_mask"], bidirectional=self.recipe.bidirectional)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Features from :meth:`tokenize` -> (B, embedding_dim) raw (unnormalised) embeddings."""
        return self.recipe.pool(self.hidden_states(features), features, self.heads)  # (B, D)

    def encode(
        self,
        texts: str | Sequence[str],
        instruction: str | None = None,
        normalize: bool = True,
        *,
        max_tokens: int | None = None,
        max_batch_size: int | None = None,
        truncate: bool = True,
        padding_side: Literal["right", "left"] = "right",
        packed: bool | None = None,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Embed texts: float32 array (n, embedding_dim), rows in input order.

        Batches hold at most ``max_tokens`` backbone tokens (default: 1024 on CPU, 32768 on CUDA)
        of length-sorted texts. ``instruction`` is written before every text with the recipe's
        template (queries usually get one, documents not). ``packed`` runs texts unpadded through
        the varlen attention kernel (default: where it exists, i.e. CUDA in half precision).
        """
        texts = validate_texts(texts)  # every item checked before any work
        if show_progress is None:
            show_progress = len(texts) >= 1000
        cut: list[int] = []
        parts = list(
            self.encode_iter(
                texts,
                instruction,
                normalize,
                chunk_size=ENCODE_CHUNK,
                max_tokens=max_tokens,
                max_batch_size=max_batch_size,
                truncate=truncate,
                padding_side=padding_side,
                packed=packed,
                show_progress=show_progress,
                total=len(texts),
                on_truncated=cut.extend,
            )
        )
        if cut:  # one warning for the whole call, however many blocks it took
            warnings.warn(TruncationWarning(cut), stacklevel=2)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def encode_iter(
        self,
        texts: Iterable[str],
        instruction: str | None = None,
        normalize: bool = True,
        *,
        chunk_size: int = 4096,
        max_tokens: int | None = None,
        max_batch_size: int | None = None,
        truncate: bool = True,
        padding_side: Literal["right", "left"] = "right",
        packed: bool | None = None,
        show_progress: bool = False,
        total: int | None = None,
        on_truncated: Callable[[list[int]], None] | None = None,
    ) -> Iterator[np.ndarray]:
        """Embed a stream of texts: yields (len(chunk), D) float32 arrays, one per ``chunk_size`` texts, in order.

        Memory is bounded by the chunk and the token budget, not by the stream: a file of any size
        can be embedded to disk row block by row block. A background thread tokenizes and collates
        the next batches while the model runs the current one. Truncated texts are reported per
        chunk with a :class:`TruncationWarning` whose indices count from the start of the stream, or
        handed to ``on_truncated`` instead.
        """
        if padding_side not in ("right", "left"):
            raise ConfigError(f"padding_side must be 'right' or 'left', got '{padding_side}'")
        if packed is None:
            packed = self.can_pack() and padding_side == "right"
        elif packed and padding_side != "right":
            raise ConfigError("packed encoding needs padding_side='right'")
        budget = max_tokens or default_max_tokens(self.device)
        pin = self.device.type == "cuda"
        progress = None
        if show_progress:
            from tqdm.auto import tqdm

            progress = tqdm(total=total, desc="encode", unit="text")

        def prepared() -> Iterator[tuple[Any, ...]]:
            start = 0
            for chunk in chunked(texts, chunk_size):
                chunk = validate_texts(chunk, offset=start)
                layouts, cut = self._layouts(chunk, instruction, truncate, offset=start)
                batches = plan_batches([len(lay.ids) for lay in layouts], budget, max_batch_size or 1 << 30)
                for idx in batches:
                    feats = self._features([chunk[i] for i in idx], [layouts[i] for i in idx], padding_side)
                    if packed:
                        feats.update(pack_features(feats["attention_mask"]))
                    if pin:
                        feats = {k: v.pin_memory() for k, v in feats.items()}
                    yield ("batch", idx, feats)
                yield ("chunk", len(chunk), [start + i for i in cut])
                start += len(chunk)

        was_training = self.training
        self.eval()
        rows: list[torch.Tensor] = []
        order: list[int] = []
        try:
            with torch.inference_mode():
                for item in Prefetcher(prepared(), depth=16):
                    if item[0] == "batch":
                        _, idx, feats = item
                        feats = {k: v.to(self.device, non_blocking=True) for k, v in feats.items()}
                        emb = self._embed_batch(feats, packed=packed, right_padded=padding_side == "right").float()
                        if normalize:
                            emb = nn.functional.normalize(emb, dim=-1)
                        rows.append(emb)  # (b, D), left on the device: no sync per batch
                        order.extend(idx)
                        if progress is not None:
                            progress.update(len(idx))
                        continue
                    _, n, block_cut = item
                    out = np.empty((n, self.embedding_dim), dtype=np.float32)
                    out[np.asarray(order)] = torch.cat(rows).cpu().numpy()
                    rows, order = [], []
                    if block_cut and on_truncated is not None:
                        on_truncated(block_cut)
                    elif block_cut:
                        warnings.warn(TruncationWarning(block_cut), stacklevel=3)
                    yield out
        finally:
            self.train(was_training)
            if progress is not None:
                progress.close()

    # ---- the fast path --------------------------------------------------------------------------
    def can_pack(self) -> bool:
        """Whether encode runs texts unpadded by default: a varlen kernel exists here, and no
        sliding-window layer could see past its window (the varlen kernel applies none)."""
        window = getattr(self.backbone.config, "sliding_window", None)
        if window is not None and self.max_length > int(window):
            return False
        return varlen_supported(self.device, self.dtype)

    def compile(self, **options: Any) -> Embedder:
        """``torch.compile`` the backbone's decoder for :meth:`encode` (dynamic shapes); returns self.

        It pays on GPUs, where a small model is bound by kernel launches and elementwise memory
        traffic that the compiler fuses; ``options`` go to ``torch.compile`` (e.g.
        ``mode="max-autotune-no-cudagraphs"``). Training and :meth:`forward` keep the eager model.
        """
        options.setdefault("dynamic", True)
        # kept out of the module tree, so state_dict and save_pretrained never see the wrapper
        object.__setattr__(self, "_compiled", torch.compile(decoder_of(self.backbone), **options))
        return self

    def _embed_batch(self, feats: dict[str, torch.Tensor], *, packed: bool, right_padded: bool) -> torch.Tensor:
        """(B, D) embeddings of one collated batch by the fast path; the same function as :meth:`forward`."""
        decoder = self.__dict__.get("_compiled")
        bidirectional = self.recipe.bidirectional
        x = self.input_embeddings(feats)  # (B, T, d)
        window = getattr(self.backbone.config, "sliding_window", None)
        if packed and window is not None and x.shape[1] > int(window):
            packed = False  # the varlen kernel applies no window; texts this long take the padded path
        if not packed:
            hidden = run_decoder(
                self.backbone,
                x,
                feats["attention_mask"],
                bidirectional=bidirectional,
                right_padded=right_padded,
                decoder=decoder,
            )
            return self.recipe.pool(hidden, feats, self.heads)
        B, T, d = x.shape
        pack_index = feats["pack_index"]  # (N,)
        packed_x = x.reshape(B * T, d).index_select(0, pack_index)  # (N, d)
        states = run_decoder_packed(
            self.backbone,
            packed_x,
            feats["pack_positions"],
            feats["cu_seqlens"],
            T,
            bidirectional=bidirectional,
            decoder=decoder,
        )  # (N, d)
        hidden = x.new_zeros(B * T, d).index_copy_(0, pack_index, states).view(B, T, d)  # padding rows stay 0
        return self.recipe.pool(hidden, feats, self.heads)
