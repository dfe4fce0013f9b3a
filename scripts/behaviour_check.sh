#!/usr/bin/env bash
# Behaviour check for a refactor: run the same jobs in a code tree and keep their outputs, so that two trees
# (e.g. worktrees of the commits before and after) can be diffed.
#   git worktree add ../before <rev>; git worktree add ../after HEAD
#   bash scripts/behaviour_check.sh ../before out/check/before; bash scripts/behaviour_check.sh ../after out/check/after
#   diff <(grep -v load out/check/before/api_session.txt) <(grep -v load out/check/after/api_session.txt)
# Jobs (on the Scientific store and model in $WORK, built and trained first when missing, by the tree itself):
# a 3-epoch training from scratch (weights' SHA-256), scripts/api_session.py, and scripts/evaluate.py of
# eight baselines beside the trained model (eval.json). Training is not bit-reproducible run to run on CPU
# (float noise of about 1e-5 in the weights, even on one thread): compare two runs of the same tree first.
set -euo pipefail
TREE=$(cd "$1" && pwd); OUT=$(mkdir -p "$2" && cd "$2" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}; WORK=$(mkdir -p "${WORK:-$ROOT/work}" && cd "${WORK:-$ROOT/work}" && pwd)
DATA=${DATA:-$ROOT/../shared/data}
cd "$TREE"
export OPENBLAS_NUM_THREADS=1
if [ ! -e "$WORK/scientific/store/CURRENT" ]; then
  $PY scripts/convert_dataset.py amazon-json --items "$DATA/amazon-scientific/Scientific.item.json" \
      --interactions "$DATA/amazon-scientific/Scientific.inter.json" --out "$WORK/scientific"
  $PY scripts/build_graph.py --products "$WORK/scientific/products.csv" --interactions "$WORK/scientific/interactions.csv" \
      --store "$WORK/scientific/store" --quiet
fi
if [ ! -e "$WORK/scientific/model/model.pt" ]; then
  $PY scripts/train.py --store "$WORK/scientific/store" --out "$WORK/scientific/model" --split loo --quiet
fi
$PY scripts/train.py --store "$WORK/scientific/store" --out "$OUT/model_small" --split loo --quiet \
    --set train.epochs 3 > "$OUT/train_small.txt" 2>&1
(cd "$OUT" && sha256sum model_small/*.pt model_small/*.npz > model_small.sha256 2>/dev/null || true)
$PY scripts/api_session.py --model "$WORK/scientific/model" > "$OUT/api_session.txt" 2>&1
$PY scripts/evaluate.py --store "$WORK/scientific/store" --split loo \
    --baselines popularity,itemknn,ease,bpr_mf,lightgcn,text_only,implicit_als,implicit_bpr \
    --model "$WORK/scientific/model" --json "$OUT/eval.json" > "$OUT/eval.md" 2> "$OUT/eval.log"
echo "behaviour check of $TREE written to $OUT"
