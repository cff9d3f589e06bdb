#!/bin/bash
# docs/RESULTS.md end to end on the default models: train every method at the same CPU-scale budget,
# quick-suite scores for each, the held-out validation split for the shipped model's choice, the pooling
# ablation, the side-by-side report, and the packaged default model. Seeded (seed 0 in every config);
# one run at a time (2 cores). About 100 minutes on a 2-core CPU.
#   bash scripts/reproduce.sh
set -euo pipefail
B=${B:-.venv/bin}
OUT=runs/repro
mkdir -p $OUT
$B/dec2vec data build
# unimae before unimae-supervised (it starts from unimae's merged backbone)
for m in last-token causal2vec mean unimae llm2vec echo unimae-supervised causal2vec-nobos; do
  if [ ! -f $OUT/$m/model/dec2vec.json ]; then
    /usr/bin/time -v $B/dec2vec train configs/repro/$m.yaml > $OUT/$m.train.out 2> $OUT/$m.train.err
  fi
  $B/dec2vec eval --models $m=$OUT/$m/model --baselines none --tasks quick --no-plots --out $OUT/eval/$m
done
# the shipped model is chosen on the held-out valid split of the training data, never on the suite
$B/dec2vec validate configs/repro/causal2vec.yaml --n 50 --out $OUT/validation.json --models \
  c2v=$OUT/causal2vec/model c2v-nobos=$OUT/causal2vec-nobos/model c2v-untrained=causal2vec last-token=$OUT/last-token/model
# pooling ablation: the same trained causal2vec pooled as h_eos only and as h_ctx only
$B/python scripts/pooling_variant.py $OUT/causal2vec/model $OUT/causal2vec-eos --pooling eos
$B/python scripts/pooling_variant.py $OUT/causal2vec/model $OUT/causal2vec-ctx --pooling ctx
$B/dec2vec eval --models causal2vec-eos-only=$OUT/causal2vec-eos causal2vec-ctx-only=$OUT/causal2vec-ctx \
  --baselines none --tasks quick --no-plots --out $OUT/eval/pooling
# everything side by side: these runs next to the committed baselines (LSA, MiniLM, every untrained recipe)
$B/python scripts/repro_table.py docs/eval/quick/results.json $OUT/eval/*/results.json --out docs/eval/repro
$B/python scripts/repro_summary.py $OUT --plot docs/eval/repro/losses.png
$B/python scripts/ship_default.py $OUT/causal2vec/model --card docs/MODEL_CARD.md
