r"""Train the fusion model on a store, holding out exactly what scripts/evaluate.py holds out.

  python scripts/train.py --store work/scientific/store --out work/scientific/model --split loo --config configs/scientific
  python scripts/train.py --store work/beauty/store --out work/beauty/model --split file \
      --test-interactions work/beauty/test_interactions.csv
  python scripts/train.py --neo4j --store work/scientific/store --out work/scientific/model --split loo
  python scripts/train.py --store work/scientific/store --out work/scientific/model-warm --split loo \
      --warm-start work/scientific/model

With --neo4j the graph is read from the Neo4j server (NEO4J_URI, NEO4J_PASSWORD, ... or the --neo4j-*
flags, as for build_graph.py --neo4j), the source of truth; --store is then the local embedded copy that
build_graph.py --neo4j keeps beside it (the text cache lives there and the query API loads it).

Two stages, as every iterative baseline is trained: early stopping on validation NDCG@10 (training rows
only), then retraining from scratch on training + validation rows for the best number of epochs; the
saved weights are the retrained ones. Seeded; a checkpoint each epoch of each stage (re-run the same
command after a kill to resume); writes config.json beside the weights, history.json and curves.png.

With --warm-start MODEL_DIR there is no tuning stage: the saved model (its config, its weights matched to the
store's current entities by id, new users and products freshly initialised; see fusion/warm_start.py) trains
--warm-epochs epochs (default a quarter of its best epoch count) on the split's final rows, and its item-item
term is refitted with the saved (reg, weight).

Several processes (torch.distributed, `fusion.distributed`): each rank computes its share of every batch and
DistributedDataParallel averages the gradients (gloo on CPU, nccl on GPUs); rank 0 evaluates, checkpoints
and writes the model directory, and the run ends by checking that every rank holds the same weights.

  torchrun --nproc_per_node=2 scripts/train.py --store work/scientific/store --out work/scientific/model2 --split loo
  torchrun --nnodes=2 --node_rank=R --nproc_per_node=4 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 \
      scripts/train.py ...          # several machines: the same command on each, R = 0, 1; a shared --out
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_config(args: argparse.Namespace):
    from fusion import FusionConfig
    cfg = FusionConfig.load(args.config) if args.config else FusionConfig()
    if args.variant:
        cfg = cfg.ablation(args.variant)
    for key, value in (args.set or []):
        obj = cfg
        *path, last = key.split(".")
        for p in path:
            obj = getattr(obj, p)
        if not hasattr(obj, last):
            raise SystemExit(f"--set {key}: no such option")
        old = getattr(obj, last)
        setattr(obj, last, type(old)(json.loads(value)) if old is not None and not isinstance(old, bool)
                else json.loads(value))
    cfg.train.seed = args.seed
    return FusionConfig.from_dict(cfg.to_dict())  # checks the --set values as a config file's are checked


def load_graph(args: argparse.Namespace):
    """The training graph: from Neo4j with --neo4j (read through the driver), else the embedded store."""
    from kg import EmbeddedStore
    if not args.neo4j:
        graph = EmbeddedStore(args.store).load()
        if not graph.num_nodes("Product"):
            raise SystemExit(f"error: {args.store} holds no knowledge graph: run scripts/build_graph.py --store "
                             f"{args.store} first")
        return graph
    from kg import Neo4jStore
    from kg.neo4j_store import config_from_args
    with Neo4jStore(config_from_args(args), show_progress=not args.quiet) as store:
        graph = store.load()
    if not graph.num_nodes("Product"):
        raise SystemExit(f"error: Neo4j at {store.config.uri} holds no knowledge graph: run build_graph.py --neo4j first")
    return graph


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="model directory")
    ap.add_argument("--split", choices=("loo", "time", "file"), required=True)
    ap.add_argument("--test-interactions", type=Path, help="test file for --split file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cold-items", type=float, default=0.05, metavar="FRAC",
                    help="share of products held out as cold (as scripts/evaluate.py; default 0.05)")
    ap.add_argument("--config", type=Path, help="start from this model directory's config.json")
    ap.add_argument("--variant", help="ablation: fusion_no_text, fusion_no_gnn, fusion_no_kg_loss, "
                                      "fusion_no_text_loss, fusion_no_pref_loss")
    ap.add_argument("--set", nargs=2, action="append", metavar=("KEY", "JSON"),
                    help="override a config field, e.g. --set train.epochs 20 --set gnn.num_layers 1")
    ap.add_argument("--no-refit", action="store_true", help="keep the early-stopped model trained on the training "
                    "rows only instead of retraining on training + validation rows for the best epoch count")
    ap.add_argument("--warm-start", type=Path, metavar="MODEL_DIR",
                    help="continue training this saved model on the store's current graph (no tuning stage)")
    ap.add_argument("--warm-epochs", type=int, metavar="N",
                    help="epochs of the warm start (default: a quarter of the saved best epoch count, at least 1)")
    ap.add_argument("--quiet", action="store_true")
    from kg.neo4j_store import add_connection_arguments
    add_connection_arguments(ap, "read the training graph from the Neo4j server instead of the embedded store")
    args = ap.parse_args(argv)
    if args.split == "file" and not args.test_interactions:
        ap.error("--split file needs --test-interactions")
    if args.warm_start and (args.config or args.variant or args.set or args.no_refit):
        ap.error("--warm-start keeps the saved model's config: drop --config, --variant, --set and --no-refit")
    if args.warm_epochs is not None and not args.warm_start:
        ap.error("--warm-epochs needs --warm-start")

    from fusion import FusionRecommender, distributed
    from fusion.data import TrainData
    from fusion.evaluation.splits import make_split
    from fusion.trainer import plot_curves, write_history

    if distributed.init_from_env():
        if args.warm_start:
            ap.error("--warm-start runs in one process")
        print(f"rank {distributed.rank()} of {distributed.world_size()}, {__import__('torch').get_num_threads()} "
              f"threads", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    graph = load_graph(args)
    source = f"neo4j {args.neo4j_uri or os.environ.get('NEO4J_URI', '')}" if args.neo4j else "embedded"
    split = make_split(graph, args.split, seed=args.seed, test_file=args.test_interactions,
                       cold_frac=args.cold_items)
    print(split.summary())
    cache = str(args.store / "text_cache")
    if args.warm_start:
        return warm_start(args, graph, split, source, cache, t0)
    cfg = build_config(args)
    tuning = TrainData.from_graph(split.fit_graph(graph, final=False), valid=split.valid, seed=args.seed,
                                  cache_dir=cache, valid_cold=split.valid_cold)
    final = TrainData.from_graph(split.fit_graph(graph, final=True), seed=args.seed, cache_dir=cache)
    if cfg.use_text and distributed.world_size() > 1:  # rank 0 fills the text cache, the other ranks read it
        with distributed.main_first():
            from fusion.features import text_embeddings
            text_embeddings(final.graph, final.items, cfg.encoder, cache, show_progress=False)
    rec = FusionRecommender(cfg, name=args.variant or "fusion", tuning=tuning, out_dir=str(args.out),
                            show_progress=not args.quiet and distributed.is_main(), refit=not args.no_refit)
    rec.fit(final)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if distributed.world_size() > 1:
        digests = distributed.check_agreement(rec.model_)  # RuntimeError if the ranks drifted apart
        if not distributed.is_main():
            print(f"rank {distributed.rank()}: weights agree with rank 0 ({digests[0]}), peak RSS {peak_gib:.2f} GiB",
                  file=sys.stderr, flush=True)
            return 0
        print(f"{len(digests)} ranks agree: weights digest {digests[0]}")
    rec.save(args.out, extra={"store": str(args.store.resolve()), "graph_source": source, "split": args.split, "seed": args.seed,
                              "cold_items": args.cold_items, "test_interactions": str(args.test_interactions or ""),
                              "peak_rss_gib": round(peak_gib, 2), "world_size": distributed.world_size()})
    curve = rec.state_
    if rec.tuning_history_:  # plot the validation-monitored run; the refit repeats it without validation
        from fusion.trainer import TrainState
        curve = TrainState(epoch=len(rec.tuning_history_), best_epoch=rec.state_.best_epoch,
                           best_ndcg=rec.state_.best_ndcg, history=rec.tuning_history_, seconds=rec.state_.seconds)
    write_history(curve, args.out / "history.json")
    plot_curves(curve, args.out / "curves.png", title=f"{args.store.parent.name} ({args.split})")
    s = rec.state_
    print(f"best epoch {s.best_epoch}: valid NDCG@10 {s.best_ndcg:.4f}; trained {rec.fit_seconds_ / 60:.1f} min "
          f"(both stages), "
          f"total {(time.perf_counter() - t0) / 60:.1f} min, peak RSS {peak_gib:.2f} GiB -> {args.out}")
    return 0


def warm_start(args: argparse.Namespace, graph, split, source: str, cache: str, t0: float) -> int:
    """--warm-start: the saved model continues on the split's final fit graph, saved to --out like a normal run."""
    from fusion import FusionRecommender
    from fusion.data import TrainData
    from fusion.trainer import plot_curves, write_history

    final = TrainData.from_graph(split.fit_graph(graph, final=True), seed=args.seed, cache_dir=cache)
    rec = FusionRecommender.warm_start(args.warm_start, final, epochs=args.warm_epochs, out_dir=str(args.out),
                                       show_progress=not args.quiet)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    rec.save(args.out, extra={"store": str(args.store.resolve()), "graph_source": source, "split": args.split,
                              "seed": args.seed, "cold_items": args.cold_items,
                              "test_interactions": str(args.test_interactions or ""),
                              "peak_rss_gib": round(peak_gib, 2)})
    (args.out / "checkpoint-warm.pt").unlink(missing_ok=True)  # done: the next warm start into --out starts afresh
    write_history(rec.state_, args.out / "history.json")
    plot_curves(rec.state_, args.out / "curves.png", title=f"{args.store.parent.name} ({args.split}, warm start)")
    print(f"warm start from {args.warm_start}: {rec.state_.epoch} epochs at lr {rec.config.train.lr:g}; trained "
          f"{rec.fit_seconds_ / 60:.1f} min, total {(time.perf_counter() - t0) / 60:.1f} min, "
          f"peak RSS {peak_gib:.2f} GiB -> {args.out}")
    return 0


def run(argv: list[str] | None = None) -> int:
    """main, then leave the process group that torchrun's ranks joined (every rank, also on errors)."""
    from fusion import distributed
    try:
        return main(argv)
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    raise SystemExit(run())
