"""A baseline's validation curve: fit it on the training part of a split with early stopping on validation
NDCG@10 and print the (epoch, NDCG@10) checks, the loss per epoch, the best epoch and the time.

  python scripts/validation_curve.py --store work/scientific/store --split loo --model sasrec_text \\
      --set epochs 40 [--set dropout 0.5] [--test-interactions FILE] [--threads 2]

Used to find the epoch counts in `fusion.evaluation.baselines.DEFAULTS` for the iterative baselines
(sasrec, sasrec_text, bpr_mf, lightgcn); the same split (seed, 5% cold products) as scripts/evaluate.py.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--split", choices=("loo", "time", "file"), required=True)
    ap.add_argument("--test-interactions", type=Path)
    ap.add_argument("--model", required=True, help="a baseline name (fusion.evaluation.baselines.BASELINES)")
    ap.add_argument("--set", nargs=2, action="append", default=[], metavar=("PARAM", "JSON"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cold-items", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    import kg
    from fusion.data import TrainData
    from fusion.evaluation import make_split
    from fusion.evaluation.baselines import make_baseline

    torch.set_num_threads(args.threads)
    graph = kg.EmbeddedStore(args.store).load()
    split = make_split(graph, args.split, seed=args.seed, test_file=args.test_interactions, cold_frac=args.cold_items)
    tuning = TrainData.from_graph(split.fit_graph(graph, False), valid=split.valid, seed=args.seed,
                                  cache_dir=str(args.store / "text_cache"))
    params = {k: json.loads(v) for k, v in args.set}
    print(f"{args.model} {params}: {tuning.num_users:,} users, {tuning.num_items:,} items, "
          f"{tuning.user_items.nnz:,} training pairs", file=sys.stderr)
    t0 = time.perf_counter()
    model = make_baseline(args.model, None, **params).fit(tuning)
    out = {"model": args.model, "params": model.params(), "best_epoch": getattr(model, "best_epoch_", None),
           "valid_ndcg@10": getattr(model, "valid_history_", None),
           "loss": [round(x, 4) for x in getattr(model, "loss_history_", [])],
           "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
