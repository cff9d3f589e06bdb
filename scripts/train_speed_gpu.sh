#!/usr/bin/env bash
# The GPU training figures of docs/BENCHMARKS.md ("Training speed") in one call of under 10 minutes:
# the profile of the shipped config's step, tokens/s and MFU by shape (135M, Llama-3.2-1B shape; compiled
# or not; full fine-tuning with gradient checkpointing), and the memory table. Random weights of the real
# shapes (benchmarks/random_models.py): speed depends on shapes, not on weight values.
#
#   make bench-gpu-inputs                       # once, on a machine with the registry models: .bench/
#   bash scripts/train_speed_gpu.sh OUT_DIR     # on the GPU machine (carry .bench/); SMALL=1: a CPU dry run
#
# Every step is cut to end by DEADLINE seconds (default 540), so the run returns what it has.
set -u
OUT=${1:-/tmp/train-speed-gpu}; mkdir -p "$OUT"
export PYTHONPATH=$PWD/src:$PWD/benchmarks:${PYTHONPATH:-} PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
PY=${PYTHON:-python3}
M=/tmp/d2v-train-models; mkdir -p $M
DEADLINE=${DEADLINE:-540}
if [ "${SMALL:-0}" = 1 ]; then
  LL=tiny; STEPS=3; CSTEPS=6; SHAPES="135m-96 1b-512"; XS="--batch 2"; MEM="--batches 2 --lengths 64 --device cpu"; PSTEPS=3
else
  LL=llama-1b; STEPS=12; CSTEPS=12; SHAPES="135m-96 135m-512 1b-512 1b-512-full-ckpt"; XS=""; MEM="--batches 8 32 --lengths 128 512 --chunk 8"; PSTEPS=20
fi
step() { local name=$1 limit=$2; shift 2; local left=$((DEADLINE - SECONDS))
  if [ "$left" -lt 15 ]; then echo "=== $name skipped: deadline"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left; echo "=== $name (limit ${limit}s)"; local t=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  grep -v -e "Loading weights" -e "Writing model" -e "Warning" "$OUT/$name.log" | tail -n 25; echo "=== $name rc=$rc $((SECONDS-t))s"; }

(nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv; date -u; $PY -c "import torch,transformers;print(torch.__version__,transformers.__version__,torch.cuda.is_available())") > "$OUT/env.log" 2>&1; cat "$OUT/env.log"
step models 120 bash -c "$PY benchmarks/random_models.py --shape smollm2 --config-from .bench/smollm2 --out $M/smollm2 && $PY benchmarks/random_models.py --shape encoder --config-from .bench/minilm --out $M/minilm && $PY benchmarks/random_models.py --shape $LL --tokenizer-from .bench/smollm2 --out $M/llama1b"
# pairs for the profile: consecutive texts of the bench set as (query, positive)
$PY - .bench/texts-20k.jsonl "$M/pairs.jsonl" <<'PY'
import json, sys
texts = [json.loads(line)["text"] for line in open(sys.argv[1])][:8000]
with open(sys.argv[2], "w") as f:
    for q, d in zip(texts[0::2], texts[1::2]):
        f.write(json.dumps({"query": q, "positive": d}) + "\n")
PY
SET="--set model.backbone=$M/smollm2 --set model.encoder=$M/minilm --set stages.0.teacher=$M/minilm"
S="$PY benchmarks/train_speed.py --backbone $M/smollm2 --encoder $M/minilm --backbone-1b $M/llama1b $XS --out $OUT/speed.md"
P="$PY benchmarks/train_profile.py --steps $PSTEPS --data $M/pairs.jsonl $SET --out $OUT/profile.md"
# most wanted first: a step cut by the deadline loses the least
step speed 200 $S --steps $STEPS --shapes $SHAPES
step profile 90 $P                               # the shipped config's step (synthetic teacher cache), prefetch on
step memory 150 $PY benchmarks/train_memory.py --backbone $M/smollm2 --encoder $M/minilm $MEM --out "$OUT/memory.md"
step speed_compile 200 $S --steps $CSTEPS --warmup 4 --shapes $( [ "${SMALL:-0}" = 1 ] && echo 135m-512-compile || echo 135m-512-compile 1b-512-compile )
step profile_noprefetch 90 $P --set prefetch=false
echo "=== summary"; cat "$OUT"/profile.md "$OUT"/speed.md "$OUT"/memory.md 2>/dev/null
