r"""The replay evaluation of the real-time paths: how much of a full retrain's gain do `Recommender.record` and
the warm start recover?

  python scripts/eval_realtime.py --store work/scientific/store --split loo --out work/realtime/scientific \
      --json out/realtime_scientific.json --plot out/realtime_scientific.png
  python scripts/eval_realtime.py --store work/beauty/store --split file \
      --test-interactions work/beauty/test_interactions.csv --config configs/beauty --out work/realtime/beauty

One split (no cold products). Four rows, each ranked through the query API (`Recommender.recommend_batch`,
k=20, seen products excluded) for the test users and scored on their test items:

- static: trained on the training rows only (early stopping and the item-item term chosen on validation);
- record: the static model after `record_batch` of every validation row (no training);
- warm: the static model warm-started on training + validation rows (`FusionRecommender.warm_start`);
- full: trained from scratch on training + validation rows for the static run's best epoch count, its
  item-item term fitted with the static run's (reg, weight) (the repo's refit protocol).

Seconds: training time (meta.json's train_seconds; record: the time `record_batch` took). Share = (x - static) /
(full - static) of NDCG@10: the part of the full retrain's gain a row recovers.
Models are saved under --out (static/, warm/, full/) and reused by a rerun with the same split and seed.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROWS = ("static", "record", "warm", "full")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _meta(d: Path) -> dict | None:
    return json.loads((d / "meta.json").read_text()) if (d / "meta.json").exists() else None


def _reusable(d: Path, tag: dict) -> bool:
    """A model saved by an earlier run with the same split (else SystemExit: another --out, or delete it)."""
    meta = _meta(d)
    if meta is None or not (d / "model.pt").exists():
        return False
    if meta.get("realtime") != tag:
        raise SystemExit(f"error: {d} was trained for {meta.get('realtime')}, not {tag}: "
                         "use another --out or delete it")
    return True


def train_rows(graph, split, config, out: Path, cache_dir: str | None = None, warm_epochs: int | None = None,
               show_progress: bool = False) -> dict[str, Path]:
    """Train (or reuse) OUT/static, OUT/full and OUT/warm; returns {row: model dir}."""
    from fusion import FusionRecommender
    from fusion.data import TrainData

    tag = {"split": split.kind, "seed": split.seed, "train": len(split.train), "valid": len(split.valid)}
    dirs = {r: out / r for r in ("static", "full", "warm")}
    train = TrainData.from_graph(split.fit_graph(graph, final=False), valid=split.valid, seed=split.seed,
                                 cache_dir=cache_dir)
    trainval = TrainData.from_graph(split.fit_graph(graph, final=True), seed=split.seed, cache_dir=cache_dir)
    fresh = False
    if not _reusable(dirs["static"], {**tag, "row": "static"}):
        _log("static: training on the training rows (early stopping on validation)")
        FusionRecommender(copy.deepcopy(config), show_progress=show_progress).fit(train).save(
            dirs["static"], extra={"realtime": {**tag, "row": "static"}})
        fresh = True
    static = _meta(dirs["static"])
    if fresh or not _reusable(dirs["full"], {**tag, "row": "full"}):
        cfg = copy.deepcopy(config)
        cfg.train.epochs = max(1, int(static["best_epoch"]))
        ii = static.get("item_item")  # None: no term (disabled, or weight 0 chosen on validation)
        cfg.item_item.reg, cfg.item_item.weight = (ii["reg"], ii["weight"]) if ii else (cfg.item_item.reg, 0.0)
        _log(f"full: training from scratch on training + validation rows for {cfg.train.epochs} epochs")
        FusionRecommender(cfg, show_progress=show_progress).fit(trainval).save(
            dirs["full"], extra={"realtime": {**tag, "row": "full"}})
    from fusion.warm_start import default_epochs

    epochs = warm_epochs if warm_epochs is not None else default_epochs(int(static["best_epoch"]))
    if fresh or not _reusable(dirs["warm"], {**tag, "row": "warm"}) or _meta(dirs["warm"])["warm_epochs"] != epochs:
        _log(f"warm: warm start from static on training + validation rows ({epochs} epochs)")
        FusionRecommender.warm_start(dirs["static"], trainval, epochs=epochs, show_progress=show_progress).save(
            dirs["warm"], extra={"realtime": {**tag, "row": "warm"}})
    return dirs


def validation_events(graph, split):
    """The validation rows as record events: user_id, product_id, timestamp (int seconds or None), event, weight."""
    import pandas as pd

    v = split.valid
    ts = v["timestamp"].astype("float64").to_numpy()
    return pd.DataFrame({"user_id": graph.nodes["User"]["id"].to_numpy()[v["src"].to_numpy()].astype(str),
                         "product_id": graph.nodes["Product"]["id"].to_numpy()[v["dst"].to_numpy()].astype(str),
                         "timestamp": [None if np.isnan(t) else int(t) for t in ts],
                         "event": v["event"].to_numpy(), "weight": v["weight"].to_numpy()})


def rank_metrics(rec, users: list[str], relevant: dict[str, set[str]], k: int = 20) -> dict[str, float]:
    """NDCG@10 and Recall@20 of `rec.recommend_batch(users, k, exclude_seen=True)` on each user's test items."""
    import scipy.sparse as sp

    from fusion.metrics import ndcg_at_k, recall_at_k

    col = {p: i for i, p in enumerate(rec.product_ids)}
    frame = rec.recommend_batch(users, k=k, exclude_seen=True)
    row = {u: i for i, u in enumerate(users)}
    top = np.full((len(users), k), -1, dtype=np.int64)
    top[frame["user_id"].map(row).to_numpy(), frame["rank"].to_numpy() - 1] = frame["product_id"].map(col).to_numpy()
    pairs = np.array([(row[u], col[p]) for u in users for p in relevant[u] if p in col], dtype=np.int64).reshape(-1, 2)
    rel = sp.csr_matrix((np.ones(len(pairs), np.float32), (pairs[:, 0], pairs[:, 1])), shape=(len(users), len(col)))
    return {"ndcg@10": ndcg_at_k(top, rel, 10), "recall@20": recall_at_k(top, rel, 20)}


def replay(graph, split, config, out: Path, cache_dir: str | None = None, warm_epochs: int | None = None,
           show_progress: bool = False) -> dict:
    """The four rows (see the module docstring): {row: {ndcg@10, recall@20, seconds, share, fit_interactions}}."""
    from tqdm import tqdm

    from fusion import Recommender

    dirs = train_rows(graph, split, config, out, cache_dir, warm_epochs, show_progress)
    train_graph, trainval_graph = split.fit_graph(graph, final=False), split.fit_graph(graph, final=True)
    ids_u, ids_p = graph.nodes["User"]["id"].astype(str).to_numpy(), graph.nodes["Product"]["id"].astype(str).to_numpy()
    users = sorted(set(ids_u[split.test["src"].to_numpy()]))
    relevant: dict[str, set[str]] = {u: set() for u in users}
    for u, p in zip(ids_u[split.test["src"].to_numpy()], ids_p[split.test["dst"].to_numpy()]):
        relevant[u].add(p)
    events = validation_events(graph, split)
    n_train, n_valid = len(split.train), len(split.valid)
    rows: dict[str, dict] = {}
    for name in tqdm(ROWS, desc="rows", disable=not show_progress):
        d = dirs["static" if name == "record" else name]
        rec = Recommender.load(d, store=trainval_graph if name in ("warm", "full") else train_graph, event_log=None)
        meta = _meta(d)
        seconds, n_fit = float(meta["train_seconds"]), n_train if name == "static" else n_train + n_valid
        if name == "record":
            t0 = time.perf_counter()
            rec.record_batch(events)
            seconds = time.perf_counter() - t0  # no training: the time to take the events
        rows[name] = {**rank_metrics(rec, users, relevant), "seconds": round(seconds, 2), "fit_interactions": n_fit,
                      "model_dir": str(d), **({"warm_epochs": meta["warm_epochs"], "warm_lr": meta["warm_lr"]}
                                              if name == "warm" else {}),
                      **({"epochs": meta["best_epoch"]} if name in ("static", "full") else {})}
    gain = rows["full"]["ndcg@10"] - rows["static"]["ndcg@10"]
    for r in rows.values():
        r["share"] = None if gain == 0 else (r["ndcg@10"] - rows["static"]["ndcg@10"]) / gain
    return rows


def markdown(rows: dict) -> str:
    lines = ["| Row | NDCG@10 | Recall@20 | Seconds | Share of full gain |", "|---|---:|---:|---:|---:|"]
    for name, r in rows.items():
        share = "n/a" if r["share"] is None else f"{100 * r['share']:.0f}%"
        lines.append(f"| {name} | {r['ndcg@10']:.4f} | {r['recall@20']:.4f} | {r['seconds']:.1f} | {share} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--split", choices=("loo", "time", "file"), required=True)
    ap.add_argument("--test-interactions", type=Path, help="test file for --split file")
    ap.add_argument("--config", type=Path,
                    help="model directory whose config.json to train with (default FusionConfig())")
    ap.add_argument("--out", type=Path, required=True, help="where the static/, warm/ and full/ models go")
    ap.add_argument("--warm-epochs", type=int, help="default: a quarter of the static run's best epoch count, "
                    "rounded up (fusion.warm_start.default_epochs)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.split == "file" and not args.test_interactions:
        ap.error("--split file needs --test-interactions")

    import resource

    import torch

    from fusion import FusionConfig
    from fusion.evaluation.splits import make_split
    from kg import EmbeddedStore

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    graph = EmbeddedStore(args.store).load()
    split = make_split(graph, args.split, seed=args.seed, test_file=args.test_interactions, cold_frac=0.0)
    _log(split.summary())
    config = FusionConfig.load(args.config) if args.config else FusionConfig()
    config.train.seed = args.seed
    rows = replay(graph, split, config, args.out, str(args.store / "text_cache"), args.warm_epochs,
                  show_progress=not args.quiet)
    name = args.store.parent.name if args.store.name == "store" else args.store.name
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\n### Real-time replay: {name} ({args.split} split, {split.test['src'].nunique():,} test users)\n")
    print(markdown(rows))
    full, warm = rows["full"]["seconds"], rows["warm"]["seconds"]
    print(f"\nwarm start {full / warm:.1f}x faster than the full retrain; "
          f"total {(time.perf_counter() - t0) / 60:.1f} min, "
          f"peak RSS {peak:.2f} GiB")
    if args.json:
        from fusion.evaluation.report import write_json
        write_json({"dataset": name, "split": args.split, "rows": rows, "warm_speedup": round(full / warm, 2),
                    "split_info": {**split.info, "train": len(split.train), "valid": len(split.valid),
                                   "test": len(split.test), "test_users": int(split.test["src"].nunique())},
                    "seed": args.seed, "peak_rss_gib": round(peak, 2),
                    "total_seconds": round(time.perf_counter() - t0, 1)}, args.json)
    if args.plot:
        from fusion.evaluation.report import plot_results
        from fusion.evaluation.runner import RunResult
        plot_results([RunResult(n, {}, r, {}, r["seconds"], 0.0) for n, r in rows.items()], args.plot,
                     title=f"{name} ({args.split}): real-time replay")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
