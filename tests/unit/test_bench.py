"""``dec2vec bench`` and its parts on tiny models: rows, ratios, FLOP counts, reports, errors."""

import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from dec2vec.bench import flops, run, texts
from dec2vec.bench.measure import measure
from dec2vec.cli import main

from ..conftest import SENTENCES, tiny_config

MIXED = [*SENTENCES, "the cat", "a big old house on the road to the city and the river", "green tree ."] * 3


@pytest.fixture(scope="module")
def texts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "texts.jsonl"
    texts.write_texts(path, MIXED)
    return path


def test_forward_flops_match_a_hand_count():
    model = AutoModelForCausalLM.from_config(tiny_config("llama"))
    dec = model.get_decoder()
    d, inter, layers = 32, 37, 2
    per_layer = 4 * d * d + 3 * d * inter  # q, k, v, o (2 heads of 16, no GQA) and the gated MLP
    assert flops.linear_params(dec) == layers * per_layer  # the LM head and embeddings are not counted
    lengths = [3, 5]
    causal = flops.forward_flops(dec, model.config, lengths, causal=True)
    assert causal == 2 * layers * per_layer * 8 + 4 * layers * d * (9 + 25) * 0.5
    assert flops.forward_flops(dec, model.config, lengths, causal=False) > causal


def test_matmul_rate_is_positive_and_finite():
    rate = flops.matmul_rate(torch.device("cpu"), torch.float32, size=64, repeats=2)
    assert math.isfinite(rate) and rate > 0


def test_measure_reports_time_and_result():
    m = measure(lambda: sum(range(1000)), torch.device("cpu"))
    assert m.result == 499500 and m.seconds >= 0 and m.peak_bytes >= 0


def test_fixed_length_texts_have_about_that_many_tokens(tiny_backbone):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_backbone)
    for length in (8, 32):
        out = texts.fixed_length_texts(tok, length, 5, MIXED)
        counts = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in out]
        assert len(out) == 5 and all(abs(c - (length - 2)) <= 2 for c in counts), counts


def test_bench_run_side_by_side(tiny_backbone, tiny_encoder, texts_file, one_thread):
    opts = run.BenchOptions(
        recipes=["mean", "last-token", "echo", "causal2vec"],
        n=len(MIXED),
        sweep=[8, 16],
        sweep_n=4,
        device="cpu",
        dtype="float32",
        backbone=str(tiny_backbone),
        encoder=str(tiny_encoder),
        texts_file=str(texts_file),
        mfu=True,
        warmup=4,
    )
    result = run.run(opts, log=lambda s: None)
    rows = {r["name"]: r for r in result["recipes"]}
    assert list(rows) == opts.recipes
    for r in rows.values():
        assert r["texts"] == len(MIXED) and r["texts_per_s"] > 0 and 0 <= r["padding_fraction"] < 1
        assert 0 < r["mfu"] < 1
    assert rows["echo"]["llm_tokens_per_text"] > 1.5 * rows["mean"]["llm_tokens_per_text"]
    # BOS (bos_first: the tiny tokenizer adds none) and the Contextual token
    assert rows["causal2vec"]["llm_tokens_per_text"] == pytest.approx(rows["mean"]["llm_tokens_per_text"] + 2)
    assert 0 < rows["causal2vec"]["encoder_share"] < 1
    names = [b["name"] for b in result["baselines"]]
    assert any("sentence-transformers mean" in n for n in names) and any("lasttoken" in n for n in names)
    assert any("all-MiniLM" in n for n in names)
    assert [s["length"] for s in result["sweep"]] == [8, 8, 16, 16]  # dec2vec and ST at each length
    at = rows["echo"]["tokens_per_text_at"]  # what echo feeds the LLM for texts of about 8 and 16 tokens
    assert set(at) == {"8", "16"} and at["16"] > at["8"]
    ratios = result["ratios"]
    c2v_at = rows["causal2vec"]["tokens_per_text_at"]
    for length in ("8", "16"):
        ratio = ratios[f"causal2vec tokens/text over echo at {length} tokens"]
        assert ratio == pytest.approx(c2v_at[length] / at[length]) and ratio < 1
    assert not any("over icl" in k for k in ratios)  # icl was not run, so nothing is compared with it
    assert "causal2vec tokens/text over echo" in ratios and ratios["causal2vec tokens/text over echo"] < 1
    assert any(k.startswith("mean texts/s over sentence-transformers") for k in ratios)
    md = run.markdown(result, "dec2vec bench ...")
    assert "| dec2vec causal2vec |" in md and "Fixed-length sweep" in md and "light encoder" in md


def test_bench_cli_writes_json_and_markdown(tiny_backbone, texts_file, tmp_path, capsys, one_thread):
    out = tmp_path / "b"
    rc = main(
        ["bench", "--recipes", "mean", "--backbone", str(tiny_backbone), "--texts", str(texts_file), "--n", "10"]
        + ["--sweep", "--no-baselines", "--no-minilm", "--device", "cpu", "--dtype", "float32", "--out", str(out)]
    )
    assert rc == 0
    data = json.loads((out / "bench.json").read_text())
    assert data["recipes"][0]["texts"] == 10 and data["command"].startswith("dec2vec bench")
    assert "dec2vec mean" in (out / "bench.md").read_text()
    assert "texts/s" in capsys.readouterr().out


def test_bench_cli_errors(tiny_backbone, texts_file, capsys):
    assert main(["bench", "--recipes", "nope"]) == 2
    assert "unknown recipe" in capsys.readouterr().err
    assert main(["bench", "--backbone", str(tiny_backbone), "--texts", str(texts_file), "--n", "999"]) == 2
    assert f"holds {len(MIXED)} texts; asked for 999" in capsys.readouterr().err


def test_bench_modes_targets_and_the_quality_rule(tiny_backbone, tiny_encoder, texts_file, tmp_path, one_thread):
    """Every recipe in each CPU mode, sentence-transformers in fp32, targets per mode, and the default-mode rule."""
    import numpy as np

    from dec2vec.bench import targets

    from .test_eval_stats import _results

    rng = np.random.default_rng(0)
    base = rng.random(400)
    quality = {
        "fp32": _results(tmp_path / "fp32.json", {"c2v": {"t1": base, "t2": base}}),
        "bf16": _results(tmp_path / "bf16.json", {"c2v": {"t1": base + 0.001, "t2": base}}),  # level: CI tight
        "int8": _results(tmp_path / "int8.json", {"c2v": {"t1": base - 0.2 * rng.random(400), "t2": base}}),
    }
    opts = run.BenchOptions(
        recipes=["mean", "causal2vec"],
        n=len(MIXED),
        sweep=[],
        device="cpu",
        backbone=str(tiny_backbone),
        encoder=str(tiny_encoder),
        texts_file=str(texts_file),
        warmup=4,
        st_recipes=["mean"],
        minilm=False,
        modes=["fp32", "bf16", "int8"],
        quality=quality,
    )
    result = run.run(opts, log=lambda s: None)
    assert [(r["name"], r["mode"]) for r in result["recipes"]] == [
        (name, mode) for mode in ("fp32", "bf16", "int8") for name in ("mean", "causal2vec")
    ]
    assert all(("quantize" in r) == (r["mode"] == "int8") for r in result["recipes"])
    assert len(result["baselines"]) == 1 and result["dtype"] == "float32"
    got = {t["target"]: t for t in result["targets"]}
    for mode in ("fp32", "bf16", "int8"):
        by = {r["name"]: r for r in result["recipes"] if r["mode"] == mode}
        c2v = got[f"[{mode}] Causal2Vec texts/s >= 90% of mean's"]
        ratio = by["causal2vec"]["texts_per_s"] / by["mean"]["texts_per_s"]
        assert c2v["measured"] == f"{ratio:.2f}" and c2v["verdict"] == ("met" if ratio >= 0.9 else "missed")
        st = next(t for k, t in got.items() if k.startswith(f"[{mode}] mean texts/s >= 2x sentence-transformers"))
        assert st["verdict"] in ("met", "missed")
    q = result["quality"]
    assert q["bf16"]["not_worse_by_max_loss"] and not q["int8"]["not_worse_by_max_loss"]
    assert q["int8"]["diff"] < -0.01 and q["int8"]["ci"][1] < 0
    chosen = got[next(k for k in got if k.startswith("default CPU mode"))]["measured"]
    speed = {m: targets.by_mode_speed(result, m) for m in ("fp32", "bf16")}
    assert chosen == max(speed, key=speed.get)  # int8 is out: its loss is too large, however fast
    md = run.markdown(result, "dec2vec bench --modes ...")
    assert "| dec2vec causal2vec [int8] |" in md and "| int8 |" in md and "default CPU mode" in md


def test_bench_quality_needs_an_fp32_reference(tmp_path, capsys):
    from .test_eval_stats import _results

    only = _results(tmp_path / "b.json", {"m": {"t": [0.1, 0.2]}})
    assert main(["bench", "--quality", f"bf16={only}"]) == 2  # fails before any model loads
    assert "fp32=RESULTS" in capsys.readouterr().err
    assert main(["bench", "--quality", "fp16=x"]) == 2
    assert "MODE=RESULTS" in capsys.readouterr().err
