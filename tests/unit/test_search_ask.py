"""``ask`` on a tiny model: grounded generation, extractive fallback, "cannot answer", and the base LM under LoRA."""

import copy
import json

import pytest
import torch

from dec2vec import Embedder, InputError
from dec2vec.generation import greedy_continuations
from dec2vec.search.grounding import split_sentences
from dec2vec.search.indexer import Index
from dec2vec.search.language_model import LanguageModel, base_weights, is_peft_model, language_model_of
from dec2vec.search.rag import NO_ANSWER, ask

COLORS = ["red", "blue", "green", "old", "new"]
PLACES = ["mat", "road", "river", "city", "sky"]
ROWS = [f"the {c} fox is on the {p} . it is big ." for c in COLORS for p in PLACES]  # 25: enough to judge relevance
PROMPTS = ["the cat sat on the", "a dog runs"]


class ScriptedLM(LanguageModel):
    """A language model that replies with a fixed text, and counts its calls."""

    def __init__(self, emb: Embedder, reply: str) -> None:
        super().__init__(emb.backbone, emb.tokenizer)
        self.reply, self.calls = reply, 0

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        self.calls += 1
        return [self.reply]


@pytest.fixture(scope="module")
def emb(tiny_mean_emb):
    return tiny_mean_emb


@pytest.fixture(scope="module")
def index(emb, tmp_path_factory):
    root = tmp_path_factory.mktemp("ask")
    (root / "rows.jsonl").write_text(
        "".join(json.dumps({"text": t, "title": f"row {i}"}) + "\n" for i, t in enumerate(ROWS))
    )
    index = Index(root / "db", emb)
    index.build([root / "rows.jsonl"])
    return index


def lora(model: torch.nn.Module):
    """``model`` (a copy) with a random, non-zero LoRA adapter: it changes what the model computes."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    return get_peft_model(copy.deepcopy(model), config)


def logits(model, tokenizer) -> torch.Tensor:
    with torch.inference_mode():
        return model(**tokenizer(PROMPTS[0], return_tensors="pt")).logits  # (1, T, V)


QUESTION = "where is the fox ?"  # every row is about the fox, so whatever the tiny model ranks first is on topic


def top_place(index) -> str:
    """Where the top hit for QUESTION says its thing is."""
    return index.search(QUESTION, k=1)[0].text.split(" . ")[0].split()[-1]


def test_a_supported_generated_answer_is_kept_with_its_citation(index, emb):
    place = top_place(index)
    lm = ScriptedLM(emb, f"It is on the {place} [1]. It was made of gold in 1066.")
    answer = ask(index, QUESTION, k=3, lm=lm, min_relevance=0)
    assert answer.mode == "generated" and lm.calls == 1 and answer.generated == lm.reply
    assert answer.text == f"It is on the {place}. {''.join(f'[{c}]' for c in answer.citations)}"
    cited = answer.sources[answer.citations[0] - 1].text
    assert place in cited
    assert f"Question: {QUESTION}" in answer.prompt and answer.relevance is not None
    assert json.loads(json.dumps(answer.to_json()))["mode"] == "generated"


@pytest.mark.parametrize("reply", ["B", "a jackfruit", "The answer is: the fox.", "It is on the moon by the sea."])
def test_an_unsupported_answer_falls_back_to_a_quoted_source_sentence(index, emb, reply):
    lm = ScriptedLM(emb, reply)
    answer = ask(index, QUESTION, k=3, lm=lm, min_relevance=0)
    assert answer.mode == "extractive" and answer.generated == reply and "not supported" in answer.reason
    assert len(answer.citations) == 1 and answer.text.endswith(f" [{answer.citations[0]}]")
    quote = answer.text.removesuffix(f" [{answer.citations[0]}]")
    source = answer.sources[answer.citations[0] - 1].text
    assert quote in split_sentences(source) or quote in source  # verbatim from the cited source
    strict = ask(index, QUESTION, k=3, lm=lm, mode="generate", min_relevance=0)
    assert strict.mode == "none" and strict.text == NO_ANSWER and strict.generated == reply


def test_a_quote_must_share_a_word_with_the_question(index, emb):
    answer = ask(index, "who painted the moon ?", k=3, lm=ScriptedLM(emb, "B"), min_relevance=0)
    assert answer.mode == "none" and answer.text == NO_ANSWER and not answer.citations
    assert answer.reason.endswith(
        "not supported by the sources; no sentence of the sources shares a word with the question"
    )


def test_extractive_mode_never_generates(index, emb):
    lm = ScriptedLM(emb, "It is on the mat.")
    answer = ask(index, QUESTION, k=2, lm=lm, mode="extractive", min_relevance=0)
    assert lm.calls == 0 and answer.mode == "extractive" and answer.prompt == "" and answer.generated == ""
    assert answer.text.endswith(f" [{answer.citations[0]}]") and len(answer.sources) == 2


def test_weak_hits_get_cannot_answer(index, emb, tmp_path):
    lm = ScriptedLM(emb, "It is on the mat.")
    answer = ask(index, QUESTION, k=3, lm=lm, min_relevance=1.5)  # nothing reaches it: as weak as it gets
    assert answer.mode == "none" and answer.text == NO_ANSWER and lm.calls == 0
    assert "weak" in answer.reason and answer.relevance < 1.5 and len(answer.sources) == 3 and not answer.citations
    (tmp_path / "few.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in ROWS[:5]))
    small = Index(tmp_path / "db", emb)  # 5 chunks: too few to judge relevance
    small.build([tmp_path / "few.jsonl"])
    answer = ask(small, QUESTION, k=2, lm=lm, min_relevance=1.5)
    assert answer.relevance is None and answer.mode != "none"


def test_errors(index, emb):
    with pytest.raises(InputError, match="question is empty"):
        ask(index, " ")
    with pytest.raises(InputError, match="mode must be one of auto, extractive, generate"):
        ask(index, QUESTION, mode="guess")
    with pytest.raises(InputError, match="leaves no room for a prompt"):
        ask(index, QUESTION, max_new_tokens=600, lm=ScriptedLM(emb, "x"), min_relevance=0)


def test_default_generation_is_the_backbones_greedy_continuation(index, emb):
    answer = ask(index, QUESTION, k=2, max_new_tokens=4, min_relevance=0)
    want = greedy_continuations(emb.backbone, emb.tokenizer, [answer.prompt], max_new_tokens=4)[0].strip()
    assert answer.generated == want and answer.mode in ("generated", "extractive")


def test_the_adapter_is_off_while_generating(emb, tiny_backbone):
    base = emb.backbone
    want, want_logits = (
        greedy_continuations(base, emb.tokenizer, PROMPTS, max_new_tokens=8),
        logits(base, emb.tokenizer),
    )
    tuned = lora(base)
    assert is_peft_model(tuned) and not is_peft_model(base)
    assert not torch.allclose(logits(tuned, emb.tokenizer), want_logits, atol=1e-4)  # the adapter matters
    with base_weights(tuned) as model:
        torch.testing.assert_close(logits(model, emb.tokenizer), want_logits)
    assert not torch.allclose(logits(tuned, emb.tokenizer), want_logits, atol=1e-4)  # and is back on afterwards
    assert LanguageModel(tuned, emb.tokenizer).generate(PROMPTS, max_new_tokens=8) == want
    trained = Embedder.from_recipe("mean", tiny_backbone, device="cpu")  # as in training: a peft backbone
    trained.backbone = lora(trained.backbone)
    lm = language_model_of(trained)
    assert lm.model is trained.backbone and lm.generate(PROMPTS, max_new_tokens=8) == want


def test_a_merged_adapter_generates_with_the_saved_base(emb, tmp_path):
    lora(emb.backbone).save_pretrained(tmp_path / "adapter")
    saved = copy.deepcopy(emb)
    saved.attach_adapter(tmp_path / "adapter")
    saved.save_pretrained(tmp_path / "model")
    # the adapter is merged into the backbone; float32, as emb (the logits are compared with its own)
    loaded = Embedder.from_pretrained(tmp_path / "model", device="cpu", dtype="float32")
    base_logits = logits(emb.backbone, emb.tokenizer)
    assert not torch.allclose(logits(loaded.backbone, loaded.tokenizer), base_logits, atol=1e-4)
    lm = language_model_of(loaded, str(tmp_path / "model"))
    assert lm.model is not loaded.backbone
    torch.testing.assert_close(logits(lm.model, lm.tokenizer), base_logits)
    want = greedy_continuations(emb.backbone, emb.tokenizer, PROMPTS, max_new_tokens=8)
    assert lm.generate(PROMPTS, max_new_tokens=8) == want
    assert language_model_of(loaded).model is loaded.backbone  # no reference to reload from: what is in memory
    assert language_model_of(emb, "mean").model is emb.backbone  # a recipe name: untrained, no adapter
