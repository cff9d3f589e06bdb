"""``EmbeddingModel``: features in, embeddings out. The weights and the forward pass, nothing else.

The module tree (``backbone``, ``encoder``, ``heads``) is what training optimises and checkpoints
and what a saved folder holds; :class:`~dec2vec.Embedder` builds on it with loading, texts and the
encode engine. Two forwards compute the same function: :meth:`EmbeddingModel.forward`, the
reference (training uses it, like a sentence-transformers module), and :meth:`embed_batch`, the
encode engine's fast path (no mask where none is needed, unpadded varlen batches, compilation).
"""

from __future__ import annotations

from typing import Any, Self

import torch
from torch import nn

from .attention import decoder_of, run_decoder, run_decoder_packed
from .config import EmbedderConfig
from .encoder import LightEncoder
from .errors import ConfigError
from .recipes import Recipe, get_recipe


class EmbeddingModel(nn.Module):
    """A causal LM, the recipe's heads and (Causal2Vec) a light encoder, run the recipe's way."""

    def __init__(
        self,
        config: EmbedderConfig,
        backbone: nn.Module,
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
        self.encoder = encoder if self.recipe.contextual_token else None
        if heads is None:  # seeded: an untrained model is the same on every run and machine
            gen = torch.Generator().manual_seed(config.seed)
            heads = self.recipe.build_heads(self.hidden_size, encoder.dim if encoder else None, gen)
        self.heads = heads
        self.heads.to(device=self.device, dtype=self.dtype)

    # ---- facts ----------------------------------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        return int(self.backbone.get_input_embeddings().weight.shape[-1])

    @property
    def embedding_dim(self) -> int:
        return self.recipe.embedding_dim(self.hidden_size, self.encoder_dim)

    @property
    def encoder_dim(self) -> int | None:
        """The light encoder's vector width; None without one."""
        return self.encoder.dim if self.encoder is not None else None

    @property
    def embedding_parts(self) -> dict[str, slice]:
        """Named slices of a composite embedding ({} for one state): validation scores each alone."""
        return self.recipe.embedding_parts(self.hidden_size, self.encoder_dim)

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

    # ---- the reference forward ------------------------------------------------------------------
    def input_embeddings(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T, d) backbone input: token embeddings, with the Contextual token in its slot."""
        return self._inputs(features)[0]

    def _inputs(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The (B, T, d) backbone input and what pooling may read besides the states: the light
        encoder's (B, e) vector as ``encoder_vector`` (Causal2Vec's ``eos+encoder`` pooling)."""
        input_ids = features["input_ids"]  # (B, T)
        x = self.backbone.get_input_embeddings()(input_ids)  # (B, T, d)
        if not self.recipe.contextual_token:
            return x, features
        assert self.encoder is not None
        owner = features.get("encoder_owner")  # (R,) when long texts are read in windows
        v = self.encoder(features["encoder_input_ids"], features["encoder_attention_mask"], owner)  # (B, e)
        ctx = self.heads["projector"](v).to(x.dtype)  # (B, d): the Contextual token
        slot = nn.functional.one_hot(features["ctx_index"], input_ids.shape[1]).bool()  # (B, T)
        x = torch.where(slot[..., None], ctx[:, None, :], x)  # (B, T, d)
        return x, {**features, "encoder_vector": v}

    def _states(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(B, T, d) last-layer states with the recipe's attention, and the features pooling reads."""
        x, feats = self._inputs(features)
        hidden = run_decoder(self.backbone, x, feats["attention_mask"], bidirectional=self.recipe.bidirectional)
        return hidden, feats

    def hidden_states(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T, d) last-layer states, with the recipe's attention (training objectives read them)."""
        return self._states(features)[0]

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Features from ``Embedder.tokenize`` -> (B, embedding_dim) raw (unnormalised) embeddings."""
        return self.recipe.pool(*self._states(features), self.heads)  # (B, D)

    # ---- the fast forward -----------------------------------------------------------------------
    def compile(self, **options: Any) -> Self:
        """``torch.compile`` the backbone's decoder for ``encode`` (dynamic shapes); returns self.

        It pays on GPUs, where a small model is bound by kernel launches and elementwise memory
        traffic that the compiler fuses; ``options`` go to ``torch.compile`` (e.g.
        ``mode="max-autotune-no-cudagraphs"``). Training and :meth:`forward` keep the eager model.
        """
        options.setdefault("dynamic", True)
        # kept out of the module tree, so state_dict and save_pretrained never see the wrapper
        object.__setattr__(self, "_compiled", torch.compile(decoder_of(self.backbone), **options))
        return self

    def embed_batch(self, feats: dict[str, torch.Tensor], *, packed: bool, right_padded: bool) -> torch.Tensor:
        """(B, D) embeddings of one collated batch by the fast path; the same function as :meth:`forward`.

        ``right_padded`` lets a causal model run without a padding mask (real tokens never see a later
        position), so SDPA takes its fused causal kernel; ``packed`` runs the batch's real tokens as
        one unpadded row through the varlen kernel (features from ``inputs.pack_features``).
        """
        decoder = self.__dict__.get("_compiled")
        bidirectional = self.recipe.bidirectional
        x, feats = self._inputs(feats)  # (B, T, d)
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

    _embed_batch = embed_batch  # the name tests/unit/test_engine_fast.py calls
