r"""Evaluate baselines, our fusion model and its ablations on one split of a graph store.

    python scripts/evaluate.py --store work/scientific/store --split loo --baselines all \
        --json out/eval_scientific.json --plot out/eval_scientific.png

Prints a markdown table (best value per column in bold), writes the JSON results and a bar chart of
NDCG@10 and Recall@20. Every model is fitted on the same training graph, which never holds a test pair.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BASELINE_NAMES = ("popularity", "itemknn", "ease", "bpr_mf", "lightgcn", "text_only", "implicit_als",
                  "implicit_bpr", "lightfm", "sasrec", "sasrec_text", "gds_fastrp")  # gds_fastrp: skipped (with why) without a GDS server
FUSION_NAMES = ("fusion", "fusion_no_text", "fusion_no_gnn", "fusion_no_kg_loss", "fusion_no_text_loss",
                "fusion_no_pref_loss", "fusion_no_item_item", "fusion_no_cold_mix", "fusion_no_tower")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True, help="embedded graph store directory")
    p.add_argument("--split", required=True, choices=("loo", "time", "file"))
    p.add_argument("--test-interactions", help="test file (user_id, product_id[, timestamp]) for --split file")
    p.add_argument("--model", help="trained fusion model directory (scripts/train.py on the same store and split); "
                   "evaluated as 'fusion'")
    p.add_argument("--baselines", default="all", help="'all', 'none' or a comma-separated list of "
                   + ", ".join(BASELINE_NAMES) + " and of our model and its ablations: " + ", ".join(FUSION_NAMES)
                   + " (those are trained in this run; 'fusion' comes from --model when given)")
    p.add_argument("--ablations", action="store_true", help="also train and evaluate every fusion ablation")
    p.add_argument("--dataset", help="dataset name for the report and the tuned defaults "
                   "(default: from the store path, e.g. 'scientific')")
    p.add_argument("--tune", nargs="?", const="all", default="",
                   help="re-run the validation grids (all baselines, or a comma-separated list) instead of "
                        "the tuned defaults")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cold-items", type=float, default=0.05, metavar="FRAC",
                   help="share of products whose every interaction is held out for the cold-start slice "
                        "(default 0.05; 0 = none, then the slice is test items without training interactions)")
    p.add_argument("--json", help="write results JSON here")
    p.add_argument("--plot", help="write the PNG bar chart here")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: small-batch training oversubscribes a shared CPU badly)")
    a = p.parse_args(argv)
    if a.split == "file" and not a.test_interactions:
        p.error("--split file needs --test-interactions F")
    if a.split != "file" and a.test_interactions:
        p.error("--test-interactions is only used with --split file")
    if a.baselines in ("all", ""):
        a.names = list(BASELINE_NAMES)
    elif a.baselines == "none":
        a.names = []
    else:
        a.names = [x.strip() for x in a.baselines.split(",") if x.strip()]
        bad = [x for x in a.names if x not in BASELINE_NAMES + FUSION_NAMES]
        if bad:
            p.error(f"unknown model {bad[0]!r}; choose from {', '.join(BASELINE_NAMES + FUSION_NAMES)}")
    a.fusion_names = [x for x in a.names if x in FUSION_NAMES]
    a.names = [x for x in a.names if x in BASELINE_NAMES]
    if a.model and "fusion" not in a.fusion_names:
        a.fusion_names.insert(0, "fusion")
    if "fusion" in a.fusion_names and "fusion_no_item_item" not in a.fusion_names:
        a.fusion_names.append("fusion_no_item_item")  # the same network without the term: no extra training
    if "fusion" in a.fusion_names and "fusion_no_cold_mix" not in a.fusion_names:
        a.fusion_names.append("fusion_no_cold_mix")  # and without the cold text mix: no extra training either
    if a.ablations:
        a.fusion_names += [x for x in FUSION_NAMES[1:] if x not in a.fusion_names]
    a.tune_names = list(BASELINE_NAMES) if a.tune == "all" else [x.strip() for x in a.tune.split(",") if x.strip()]
    return a


def dataset_name(store: Path) -> str:
    """'work/scientific/store' -> 'scientific'."""
    return store.parent.name if store.name in ("store", "graph") else store.name


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import kg
    from fusion.evaluation import (check_model_dir, make_split, markdown_table, plot_results, results_json,
                                   run_baselines, run_fusion, write_json)

    store = Path(args.store)
    if not kg.EmbeddedStore(store).exists():
        print(f"error: no graph store at {store} (build one with scripts/build_graph.py)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    dataset = args.dataset or dataset_name(store)
    t0 = time.perf_counter()
    graph = kg.EmbeddedStore(store).load()
    split = make_split(graph, args.split, seed=args.seed, test_file=args.test_interactions,
                       cold_frac=args.cold_items)
    print(split.summary(), file=sys.stderr)
    if split.info.get("test_users_unknown"):
        print(f"dropped {split.info['test_users_unknown']:,} test users unknown to the store "
              f"({split.info['test_rows_unknown_user']:,} rows)", file=sys.stderr)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.model and args.fusion_names:  # before the baselines: a wrong model must not cost a long run
        try:
            check_model_dir(args.model, split, args.seed)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    # a model that raises is reported and the others still run; the JSON is rewritten after each finished
    # row, so that a long run killed half-way keeps what it measured
    done: list = []
    failures: list = []

    def summary(final: bool) -> dict:
        extra = {"split_info": {**split.info, "train": len(split.train), "valid": len(split.valid),
                                "test": len(split.test), "test_users": int(split.test["src"].nunique())},
                 "seed": args.seed, "tuned": args.tune_names, "total_seconds": round(time.perf_counter() - t0, 1),
                 "complete": final and not failures,
                 "failed": {f.name: {"error": f.error, "seconds": round(f.seconds, 1)} for f in failures}}
        return results_json(done, dataset, args.split, extra)

    def finished(res) -> None:
        done.append(res)
        if args.json:
            write_json(summary(False), args.json)

    run_baselines(graph, split, args.names, dataset=dataset, do_tune=args.tune_names, seed=args.seed,
                  cache_dir=str(store / "text_cache"), log=log, failures=failures, on_result=finished)
    if args.fusion_names:
        run_fusion(graph, split, args.fusion_names, model_dir=args.model, seed=args.seed,
                   cache_dir=str(store / "text_cache"), log=log, failures=failures, on_result=finished)
    results = done
    for f in failures:
        print(f"error: {f.name} failed after {f.seconds:.1f}s: {f.error}", file=sys.stderr)
    if not results:
        print("error: nothing was evaluated", file=sys.stderr)
        return 1
    print(f"\n### {dataset} ({args.split} split)\n")
    print(markdown_table(results))
    if args.json:
        write_json(summary(True), args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        plot_results(results, args.plot, title=f"{dataset} ({args.split})")
        print(f"wrote {args.plot}", file=sys.stderr)
    if failures:
        print(f"error: {len(failures)} of {len(results) + len(failures)} models failed "
              f"({', '.join(f.name for f in failures)}); the others' rows are above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
