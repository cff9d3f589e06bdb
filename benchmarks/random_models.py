"""Random-initialised backbones of real shapes, for speed benchmarks that need no real weights.

    python benchmarks/random_models.py --shape smollm2 --config-from DIR --out /tmp/smollm2-random
    python benchmarks/random_models.py --shape llama-1b --tokenizer-from DIR --out /tmp/llama1b-random
    python benchmarks/random_models.py --shape tiny --tokenizer-from DIR --out /tmp/tiny-random
    python benchmarks/random_models.py --shape encoder --config-from MINILM_DIR --out /tmp/minilm-random

Speed depends on shapes, not on weight values; a GPU machine without the weight packages can still
measure the real shapes. ``llama-1b`` is Llama-3.2-1B's shape (d=2048, 16 layers, 32 heads, 8 KV
heads, MLP 8192, vocab 128,256); it borrows the SmolLM2 tokenizer, whose ids all fit its vocabulary.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, LlamaConfig

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.txt",
    "generation_config.json",
)
ST_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json", "1_Pooling")


def llama_1b() -> LlamaConfig:
    return LlamaConfig(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=64,
        vocab_size=128256,
        max_position_embeddings=8192,
        rope_theta=500000.0,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
    )


def tiny() -> LlamaConfig:
    return LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=49152,
        max_position_embeddings=2048,
        bos_token_id=1,
        eos_token_id=2,
    )


def copy_files(src: Path, dest: Path, names: tuple[str, ...]) -> None:
    for name in names:
        p = src / name
        if p.is_dir():
            shutil.copytree(p, dest / name, dirs_exist_ok=True)
        elif p.is_file():
            shutil.copy(p, dest / name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=["smollm2", "llama-1b", "tiny", "encoder"], required=True)
    ap.add_argument("--config-from", default=None, help="a model folder whose config.json gives the shape")
    ap.add_argument("--tokenizer-from", default=None, help="the folder whose tokenizer files are copied")
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="where weights are drawn")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dtype = getattr(torch, args.dtype)
    tok_src = Path(args.tokenizer_from or args.config_from)
    with torch.device(args.device):  # a 1B model draws its weights in seconds on a GPU, minutes on a CPU
        if args.shape == "encoder":
            model = AutoModel.from_config(AutoConfig.from_pretrained(args.config_from), dtype=dtype)
            copy_files(tok_src, out, TOKENIZER_FILES + ST_FILES)
        else:
            if args.shape == "smollm2":
                config = AutoConfig.from_pretrained(args.config_from)
            else:
                config = llama_1b() if args.shape == "llama-1b" else tiny()
            model = AutoModelForCausalLM.from_config(config, dtype=dtype)
            copy_files(tok_src, out, TOKENIZER_FILES)
    model.save_pretrained(out)
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.shape}: {n / 1e6:.1f}M random parameters ({args.dtype}) in {out}")


if __name__ == "__main__":
    main()
