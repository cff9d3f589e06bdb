#!/usr/bin/env bash
# The GPU figures of docs/BENCHMARKS.md in one run (random weights of the real shapes; see random_models.py).
#   bash benchmarks/gpu_suite.sh OUT_DIR        (SMALL=1: a few texts each, to check the script on a CPU)
# Needs .bench/ (made by `make bench-gpu-inputs`): SmolLM2 and MiniLM configs + tokenizers, 20,000 mixed texts.
set -u
OUT=${1:-/tmp/gpu-suite}; mkdir -p "$OUT"
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
PY=${PYTHON:-python3}
M=/tmp/d2v-models; mkdir -p $M
if [ "${SMALL:-0}" = 1 ]; then N=24; NS=4; NB=200; NE=8; STREAM="300 900"; DEV="--device cpu"; LL=tiny; SS=tiny; SM=llama1b; else N=20000; NS=1000; NB=20000; NE=64; STREAM="10000 100000"; DEV=""; LL=llama-1b; SS=smollm2; SM=smollm2; fi
DEADLINE=${DEADLINE:-520}  # seconds: every step is cut to end by then, so the run returns what it has
step() { local name=$1 limit=$2; shift 2; local left=$((DEADLINE - SECONDS))
  if [ "$left" -lt 15 ]; then echo "=== $name skipped: deadline"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left; echo "=== $name (limit ${limit}s)"; local t=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  tail -n 25 "$OUT/$name.log" | grep -v -e "Loading weights" -e "Warning" ; echo "=== $name rc=$rc $((SECONDS-t))s"; }
B="$PY -m dec2vec bench $DEV --texts .bench/texts-20k.jsonl"

(nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv; $PY -c "import torch,transformers,sentence_transformers as s;print(torch.__version__,transformers.__version__,s.__version__,torch.cuda.is_available())") > "$OUT/env.log" 2>&1; cat "$OUT/env.log"
step models 90 bash -c "$PY benchmarks/random_models.py --shape $SS --config-from .bench/smollm2 --out $M/smollm2 && $PY benchmarks/random_models.py --shape encoder --config-from .bench/minilm --out $M/minilm && $PY benchmarks/random_models.py --shape $LL --tokenizer-from .bench/smollm2 --out $M/llama1b"
step equivalence 60 $PY benchmarks/equivalence.py --n $NE --backbone $M/smollm2 --encoder $M/minilm $DEV --out "$OUT/equivalence.json"
step st_mean 150 $B --n $N --recipes mean --backbone $M/smollm2 --encoder $M/minilm --st-batch-sizes 32 128 --sweep 32 128 512 --sweep-n $NS --out "$OUT/st_mean"
step llama1b 60 $B --n $N --recipes mean --backbone $M/llama1b --no-baselines --no-minilm --sweep --out "$OUT/llama1b"
step recipes 120 $B --n $N --backbone $M/smollm2 --encoder $M/minilm --no-baselines --no-minilm --sweep --out "$OUT/recipes"
step stream 60 bash -c "$PY -c \"from dec2vec import Embedder; Embedder.from_recipe('mean', '$M/$SM', $( [ "${SMALL:-0}" = 1 ] && echo "device='cpu'," ) dtype='auto').save_pretrained('$M/mean-model')\" && $PY benchmarks/stream_memory.py --model $M/mean-model --source .bench/texts-20k.jsonl --n $STREAM $DEV --out $OUT/stream.json"
for bt in 16384 65536 131072; do step budget_$bt 30 $B --n $NB --recipes mean --backbone $M/smollm2 --no-baselines --no-minilm --sweep --max-tokens $bt --out "$OUT/budget_$bt"; done
step padded 30 $B --n $NB --recipes mean --backbone $M/smollm2 --no-baselines --no-minilm --sweep --padded --out "$OUT/padded"
step compile_smollm2 90 $B --n $N --recipes mean --backbone $M/smollm2 --no-baselines --no-minilm --sweep --compile --out "$OUT/compile_smollm2"
step compile_llama1b 90 $B --n $N --recipes mean --backbone $M/llama1b --no-baselines --no-minilm --sweep --compile --out "$OUT/compile_llama1b"
echo "=== summary"; for f in "$OUT"/*/bench.json; do $PY - "$f" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for row in r["recipes"] + r["baselines"]:
    print(f"{sys.argv[1].split('/')[-2]:<16} {row['name'][:40]:<40} {row['real_tokens_per_s']:>10.0f} tok/s {row['texts_per_s']:>9.1f} texts/s pad {row['padding_fraction']:.1%} mfu {row.get('mfu', 0):.1%}")
PY
done
tar czf /tmp/gpu-suite.tar.gz -C "$OUT" . && mv /tmp/gpu-suite.tar.gz "$OUT/all.tar.gz" && echo "packed $OUT/all.tar.gz"
