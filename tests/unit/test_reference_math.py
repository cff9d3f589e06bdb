"""Every recipe against stock transformers, with its input written out by hand from its definition.

The other recipe tests compare dec2vec's fast paths with its own ``forward``; a mistake shared by
both (a wrong position pooled, the halves of Causal2Vec's concat swapped, a causal mask where a
bidirectional one belongs) passes them. Here the reference is the unmodified transformers model
(eager attention, ``output_hidden_states``), run one text at a time without padding, fed token ids
or input embeddings built in this file from each recipe's definition (README's recipe table):

  mean         text + EOS, causal               mean of h over the text tokens (instruction excluded)
  last-token   text + EOS, causal               h_eos
  echo         "Rewrite the sentence: x\\nRewritten sentence: x" + EOS, mean over the second copy
  icl          few-shot "<instruct>..<query>..<response>.." prefix, query, EOS; h_eos
  llm2vec      text + EOS, bidirectional        mean over the text
  unimae       as last-token at inference
  causal2vec   BOS, Contextual token (MLP(light encoder vector)), text, EOS; concat(h_ctx, h_eos)
  nv-embed     text + EOS, bidirectional        latent attention, MLP, mean over the text

dec2vec runs the same texts as padded batches of different lengths (left and right padding, the
reference ``forward`` and ``encode``'s unmasked and packed fast paths) and must give the same raw
(unnormalised) vectors.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from dec2vec import Embedder, recipe_names

from ..conftest import SENTENCES
from .test_recipes import SMALL_OPTIONS, build

INSTRUCTION = "find the animal"
TEMPLATE = "Instruct: {instruction}\nQuery: "  # RecipeOptions' default, written out
ECHO_FIRST, ECHO_SECOND = "Rewrite the sentence: ", "\nRewritten sentence: "
ICL_TASK = "Given a text, retrieve texts that are semantically similar or that answer it"
ATOL, RTOL = 2e-5, 1e-4  # fp32; eager (reference) against SDPA and the varlen loop (dec2vec)


@pytest.fixture(scope="module")
def stock(tiny_backbone, tiny_encoder):
    """The unmodified transformers models and tokenizers, loaded from the same folders as dec2vec's."""
    model = AutoModelForCausalLM.from_pretrained(tiny_backbone, attn_implementation="eager").eval()
    encoder = AutoModel.from_pretrained(tiny_encoder, attn_implementation="eager").eval()
    return {
        "model": model,
        "tok": AutoTokenizer.from_pretrained(tiny_backbone),
        "encoder": encoder,
        "enc_tok": AutoTokenizer.from_pretrained(tiny_encoder),
    }


def ids_of(tok, s: str) -> list[int]:
    return tok(s, add_special_tokens=False)["input_ids"]


def prompt(recipe: str, text: str, instruction: str | None) -> str:
    """The string the backbone reads (before EOS, and after BOS and the Contextual token for causal2vec)."""
    head = TEMPLATE.format(instruction=instruction) if instruction else ""
    if recipe == "echo":
        return f"{head}{ECHO_FIRST}{text}{ECHO_SECOND}{text}"
    if recipe == "icl":
        task = instruction or ICL_TASK
        shots = "\n\n".join(f"<instruct>{task}\n<query>{q}\n<response>{a}" for q, a in SMALL_OPTIONS["icl"]["examples"])
        return f"{shots}\n\n<instruct>{task}\n<query>{text}\n<response>"
    return head + text


def text_tokens(tok, recipe: str, text: str, instruction: str | None) -> list[int]:
    """The pooled tokens: the text's own, which follow a template ending in a space or start the input."""
    follows_space = instruction is not None or recipe == "echo"
    return ids_of(tok, " " + text) if follows_space else ids_of(tok, text)


def last_hidden(model, ids: list[int] | None = None, embeds: torch.Tensor | None = None, bidirectional=False):
    """(T, d) last-layer states of one unpadded input, from the stock model's ``hidden_states``."""
    if embeds is None:
        embeds = model.get_input_embeddings()(torch.tensor([ids]))  # (1, T, d)
    T = embeds.shape[1]
    # bidirectional: an additive (1, 1, T, T) mask of zeros (nothing hidden), which transformers takes as
    # the layer's mask instead of building its causal one; causal: no mask, the model's own default
    mask = torch.zeros(1, 1, T, T) if bidirectional else None
    with torch.no_grad():
        out = model(inputs_embeds=embeds, attention_mask=mask, output_hidden_states=True, use_cache=False)
    return out.hidden_states[-1][0]  # (T, d), after the final norm


def mlp_by_hand(seq: torch.nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Linear, GELU, Linear written out with the layer's weights."""
    first, last = seq[0], seq[2]
    return F.linear(F.gelu(F.linear(x, first.weight, first.bias)), last.weight, last.bias)


def latent_pool_by_hand(layer, h: torch.Tensor) -> torch.Tensor:
    """NV-Embed pooling of (n, d) text states: tokens attend to the latent array, MLP, both residual, mean."""
    n, d = h.shape
    H = layer.num_heads
    dh = d // H
    q = (h @ layer.q_proj.weight.T).view(n, H, dh)  # (n, H, dh)
    kv = layer.latents @ layer.kv_proj.weight.T  # (r, 2d)
    k, v = kv[:, :d].reshape(-1, H, dh), kv[:, d:].reshape(-1, H, dh)  # (r, H, dh) each
    weights = torch.softmax(torch.einsum("nhe,rhe->hnr", q, k) / dh**0.5, dim=-1)  # (H, n, r)
    att = torch.einsum("hnr,rhe->nhe", weights, v).reshape(n, d)  # (n, d)
    x = h + att @ layer.o_proj.weight.T
    x = x + mlp_by_hand(layer.mlp, x)
    return x.mean(0)  # (d,)


def contextual_token_by_hand(emb: Embedder, stock, text: str) -> torch.Tensor:
    """(d,): the light encoder's mean-pooled vector of the text (no instruction) through the projector."""
    enc_ids = torch.tensor([stock["enc_tok"](text)["input_ids"]])
    with torch.no_grad():
        vec = stock["encoder"](input_ids=enc_ids).last_hidden_state[0].mean(0)  # (e,)
        return mlp_by_hand(emb.heads["projector"].net, vec)


def reference(emb: Embedder, stock, text: str, instruction: str | None) -> torch.Tensor:
    """The recipe's raw embedding of one text, from the stock model on hand-built inputs."""
    recipe, tok, model = emb.config.recipe, stock["tok"], stock["model"]
    ids = [*ids_of(tok, prompt(recipe, text, instruction)), tok.eos_token_id]
    bidirectional = recipe in ("llm2vec", "nv-embed")
    if recipe == "causal2vec":
        table = model.get_input_embeddings()
        with torch.no_grad():
            bos = table(torch.tensor([tok.bos_token_id]))  # (1, d): BOS first (bos_first), then the Contextual token
            rest = table(torch.tensor(ids))  # (n + 1, d): the prompt's tokens, then EOS
            ctx = contextual_token_by_hand(emb, stock, text)[None]  # (1, d)
        h = last_hidden(model, embeds=torch.cat([bos, ctx, rest])[None])
        return torch.cat([h[1], h[-1]])  # (2d,): h_ctx, then h_eos
    h = last_hidden(model, ids, bidirectional=bidirectional)  # (T, d)
    if recipe in ("last-token", "icl", "unimae"):
        return h[-1]
    pooled = text_tokens(tok, recipe, text, instruction)
    assert ids[-1 - len(pooled) : -1] == pooled, "the text closes the prompt"
    text_states = h[-1 - len(pooled) : -1]  # (n, d): the text's tokens, just before EOS
    if recipe in ("mean", "echo", "llm2vec"):
        return text_states.mean(0)
    assert recipe == "nv-embed", f"no reference for recipe '{recipe}'"
    with torch.no_grad():
        return latent_pool_by_hand(emb.heads["latent"], text_states)


def sharpen_heads(emb: Embedder) -> None:
    """Untrained heads are initialised small (N(0, 0.02)); large random weights make every head's
    arithmetic show in the output, so a mistake in it cannot hide under the residual path."""
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in emb.heads.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


def dec2vec_outputs(emb: Embedder, texts: list[str], instruction: str | None) -> dict[str, torch.Tensor]:
    """Raw embeddings of one padded batch by every path: forward (both paddings), encode (both, packed)."""
    out = {}
    with torch.no_grad():
        for side in ("right", "left"):
            out[f"forward-{side}"] = emb(emb.tokenize(texts, instruction, padding_side=side))
    for side in ("right", "left"):
        got = emb.encode(texts, instruction, normalize=False, padding_side=side, packed=False, max_tokens=100_000)
        out[f"encode-{side}"] = torch.from_numpy(got)
    got = emb.encode(texts, instruction, normalize=False, packed=True, max_tokens=100_000)
    out["encode-packed"] = torch.from_numpy(got)
    return out


@pytest.fixture(scope="module", params=recipe_names())
def recipe_emb(request, tiny_backbone, tiny_encoder):
    emb = build(request.param, tiny_backbone, tiny_encoder)
    sharpen_heads(emb)
    return emb


@pytest.mark.parametrize("instruction", [None, INSTRUCTION], ids=["plain", "instruction"])
def test_every_recipe_equals_stock_transformers_on_hand_built_inputs(recipe_emb, stock, instruction, one_thread):
    texts = SENTENCES  # lengths 3 to 20 words: one batch with much padding
    expected = torch.stack([reference(recipe_emb, stock, t, instruction) for t in texts])  # (n, D)
    assert expected.shape == (len(texts), recipe_emb.embedding_dim)
    for path, got in dec2vec_outputs(recipe_emb, texts, instruction).items():
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL, msg=lambda m, p=path: f"{p}: {m}")


def test_hand_built_prompts_are_what_the_tokenizer_gives(stock):
    """The reference's own premise: a template ending in a space and the text after it tokenize as the
    template without the space, then " text" (byte-level BPE puts the space on the next word)."""
    tok = stock["tok"]
    for text in SENTENCES:
        whole = ids_of(tok, TEMPLATE.format(instruction=INSTRUCTION) + text)
        parts = ids_of(tok, TEMPLATE.format(instruction=INSTRUCTION).rstrip(" ")) + ids_of(tok, " " + text)
        assert whole == parts


# ---- Causal2Vec: concat(h_ctx, h_eos), in that order ---------------------------------------------


@pytest.mark.parametrize("pooling", ["concat", "ctx", "eos"])
def test_causal2vec_pools_h_ctx_then_h_eos(tiny_backbone, tiny_encoder, stock, pooling, one_thread):
    """Each half of the embedding against the stock model's state at the Contextual token and at EOS.

    The halves must differ clearly, so that swapping them (or pooling the wrong position) fails.
    """
    emb = build("causal2vec", tiny_backbone, tiny_encoder, pooling=pooling)
    sharpen_heads(emb)
    full = torch.stack([reference(emb, stock, t, None) for t in SENTENCES])  # (n, 2d): h_ctx ; h_eos
    d = emb.hidden_size
    h_ctx, h_eos = full[:, :d], full[:, d:]
    assert (h_ctx - h_eos).abs().amax(dim=1).min() > 0.1
    expected = {"concat": full, "ctx": h_ctx, "eos": h_eos}[pooling]
    for path, got in dec2vec_outputs(emb, SENTENCES, None).items():
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL, msg=lambda m, p=path: f"{p}: {m}")


def test_causal2vec_contextual_token_is_the_projected_encoder_vector(tiny_backbone, tiny_encoder, stock):
    """dec2vec's input embeddings: BOS, then exactly MLP(encoder vector) at the slot, then the text's tokens."""
    emb = build("causal2vec", tiny_backbone, tiny_encoder)
    sharpen_heads(emb)
    feats = emb.tokenize(SENTENCES, padding_side="left")
    with torch.no_grad():
        x = emb.input_embeddings(feats)  # (B, T, d)
    table = stock["model"].get_input_embeddings()
    for b, text in enumerate(SENTENCES):
        n = int(feats["attention_mask"][b].sum())
        row = x[b, -n:]  # left padding: the real tokens are the last n
        ids = ids_of(stock["tok"], text)
        with torch.no_grad():
            torch.testing.assert_close(row[0], table.weight[stock["tok"].bos_token_id])
            torch.testing.assert_close(row[1], contextual_token_by_hand(emb, stock, text), atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(row[2:], table(torch.tensor([*ids, stock["tok"].eos_token_id])))


# ---- the reference's bidirectional mask is really bidirectional ----------------------------------


def test_hand_built_bidirectional_reference_sees_later_tokens(stock):
    """With the zeros mask, changing the last token changes the first token's state; without it, not."""
    tok, model = stock["tok"], stock["model"]
    a = [*ids_of(tok, "the cat sat on the mat"), tok.eos_token_id]
    b = list(a)
    b[-2] = ids_of(tok, " rug")[0]
    assert a != b
    for bidirectional in (True, False):
        ha = last_hidden(model, a, bidirectional=bidirectional)
        hb = last_hidden(model, b, bidirectional=bidirectional)
        first = (ha[0] - hb[0]).abs().max().item()
        assert (first > 1e-4) if bidirectional else (first == 0.0)


@pytest.mark.parametrize("recipe", ["llm2vec", "nv-embed"])
def test_bidirectional_recipes_differ_from_their_causal_reference(tiny_backbone, tiny_encoder, stock, recipe):
    """The comparison above can tell the attention apart: a causal run of the same input is far off."""
    emb = build(recipe, tiny_backbone, tiny_encoder)
    sharpen_heads(emb)
    got = dec2vec_outputs(emb, SENTENCES[:2], None)["forward-right"]
    tok, model = stock["tok"], stock["model"]
    for row, text in zip(got, SENTENCES[:2], strict=True):
        ids = [*ids_of(tok, text), tok.eos_token_id]
        pooled = {}
        for bidirectional in (False, True):
            states = last_hidden(model, ids, bidirectional=bidirectional)[:-1]  # (n, d): the text, EOS left out
            with torch.no_grad():
                pool = states.mean(0) if recipe == "llm2vec" else latent_pool_by_hand(emb.heads["latent"], states)
            pooled[bidirectional] = pool
        bidir, causal = pooled[True], pooled[False]
        torch.testing.assert_close(row, bidir, atol=ATOL, rtol=RTOL)
        assert (row - causal).abs().max() > 100 * ATOL
