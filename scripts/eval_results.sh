#!/usr/bin/env bash
# Regenerate the results of docs/results.md: build both stores and train our model if missing, evaluate every baseline
# and fusion (with its ablations on scientific) on the same splits,
# write out/eval_{scientific,beauty}.{json,png} and the tables in out/results_tables.md.
#   bash scripts/eval_results.sh            (DATA=../shared/data WORK=work OUT=out PY=.venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}; DATA=${DATA:-../shared/data}; WORK=${WORK:-work}; OUT=${OUT:-out}
export OPENBLAS_NUM_THREADS=1  # implicit and torch bring their own threads
mkdir -p "$OUT"
if [ ! -e "$WORK/scientific/store/CURRENT" ]; then
  $PY scripts/convert_dataset.py amazon-json --items "$DATA/amazon-scientific/Scientific.item.json" \
      --interactions "$DATA/amazon-scientific/Scientific.inter.json" --out "$WORK/scientific"
  $PY scripts/build_graph.py --products "$WORK/scientific/products.csv" \
      --interactions "$WORK/scientific/interactions.csv" --store "$WORK/scientific/store" --quiet
fi
if [ ! -e "$WORK/beauty/store/CURRENT" ]; then
  $PY scripts/convert_dataset.py amazon-kg --dir "$DATA/amazon-beauty-kg" --out "$WORK/beauty"
  $PY scripts/build_graph.py --products "$WORK/beauty/products.csv" --interactions "$WORK/beauty/interactions.csv" \
      --relations "$WORK/beauty/relations.csv" --store "$WORK/beauty/store" --quiet
fi
# our model: trained on the same splits (early stopping on validation, then refit on train + validation)
if [ ! -e "$WORK/scientific/model/model.pt" ]; then
  $PY scripts/train.py --store "$WORK/scientific/store" --out "$WORK/scientific/model" --split loo \
      --config configs/scientific --quiet
fi
if [ ! -e "$WORK/beauty/model/model.pt" ]; then
  $PY scripts/train.py --store "$WORK/beauty/store" --out "$WORK/beauty/model" --split file \
      --test-interactions "$WORK/beauty/test_interactions.csv" --config configs/beauty --quiet
fi
$PY scripts/evaluate.py --store "$WORK/scientific/store" --split loo --baselines all \
    --model "$WORK/scientific/model" --ablations \
    --json "$OUT/eval_scientific.json" --plot "$OUT/eval_scientific.png" > "$OUT/eval_scientific.md"
$PY scripts/evaluate.py --store "$WORK/beauty/store" --split file \
    --test-interactions "$WORK/beauty/test_interactions.csv" --baselines all --model "$WORK/beauty/model" \
    --tune ease,itemknn,implicit_als,lightfm \
    --json "$OUT/eval_beauty.json" --plot "$OUT/eval_beauty.png" > "$OUT/eval_beauty.md"
cat "$OUT/eval_scientific.md" "$OUT/eval_beauty.md" > "$OUT/results_tables.md"
echo "wrote $OUT/results_tables.md" >&2
