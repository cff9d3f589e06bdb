#!/bin/bash
# The training half of scripts/reproduce.sh on one GPU: the reproduction configs run side by side, since
# one 135M-parameter run leaves most of a large GPU idle. Chains (A,B) run in order: unimae-supervised
# starts from unimae's model. Every run resumes from its checkpoints, so a rerun after a cut goes on.
#
#   bash scripts/repro_gpu.sh [LOG_DIR] [RUN|A,B ...]   (LOG_DIR '' = $DEC2VEC_HOME/runs/repro/gpu-logs;
#                                                       default runs: every repro method)
#
# Needs what scripts/reproduce.sh needs (`dec2vec data build`, the teacher's vectors cached under
# $DEC2VEC_HOME/teacher). Writes LOG_DIR/NAME.log, LOG_DIR/times.tsv (run, exit code, seconds) and, for
# each finished run, a line of $DEC2VEC_HOME/runs/repro/where.tsv (the hardware column of the report).
# Seen on one H200 (2026-11-30): five runs side by side took 4 min each; a run alone 0.35 s a step
# (not profiled).
# Evaluate afterwards with scripts/reproduce.sh (it skips runs whose model is saved).
set -uo pipefail
LOG=${1:-}; shift || true
RUNS=("$@"); [ ${#RUNS[@]} -gt 0 ] || RUNS=(last-token mean echo nv-embed llm2vec unimae,unimae-supervised)
PY=${PYTHON:-python3}
THREADS=$(( $(nproc) / ${#RUNS[@]} )); [ "$THREADS" -ge 1 ] || THREADS=1
GPU=$($PY -c "import torch; print(torch.cuda.get_device_name(0))" 2>/dev/null || echo "no GPU")
R=$($PY -c "from dec2vec.models import cache_home; print(cache_home() / 'runs' / 'repro')"); mkdir -p "$R"
LOG=${LOG:-$R/gpu-logs}; mkdir -p "$LOG"
chain() {  # run the comma-separated configs of $1 in order; stop the chain at the first failure
  local IFS=,; for name in $1; do
    local t=$SECONDS
    OMP_NUM_THREADS=$THREADS $PY -m dec2vec train "configs/repro/$name.yaml" --resume --no-progress > "$LOG/$name.log" 2>&1
    local rc=$?; printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t))" >> "$LOG/times.tsv"
    [ $rc -ne 0 ] || printf '%s\tGPU (%s), %s runs side by side\n' "$name" "$GPU" "${#RUNS[@]}" >> "$R/where.tsv"
    [ $rc -eq 0 ] || return $rc
  done
}
for r in "${RUNS[@]}"; do chain "$r" & done
wait
cat "$LOG/times.tsv"
