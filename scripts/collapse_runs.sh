#!/usr/bin/env bash
# Issue 27's experiment: the flagship config for 100 steps as it is, and with a loss on each half
# (stages.0.part_loss=1), same data, seed, teacher and schedule; validation every 25 steps logs each
# half's MRR and spread (valid.csv: part:ctx.*, part:eos.*). Resumable: run it again after a kill.
#   bash scripts/collapse_runs.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-100}
DEC2VEC=${DEC2VEC:-.venv/bin/dec2vec}
common=(--no-progress --resume --set stages.0.steps="$STEPS" --set stages.0.warmup_steps=30
        --set validate_every=25 --set checkpoint_every=25)
$DEC2VEC train configs/causal2vec-distill.yaml "${common[@]}" --output-dir '$DEC2VEC_HOME/runs/i27/concat'
$DEC2VEC train configs/causal2vec-distill.yaml "${common[@]}" --set stages.0.part_loss=1.0 \
  --output-dir '$DEC2VEC_HOME/runs/i27/part-loss'
