r"""Write a trained model's results back to the graph: product embeddings (with a vector index), each user's
top k as RECOMMENDED and each product's nearest products as SIMILAR_TO.

  python scripts/export_to_neo4j.py --model work/scientific/model [--store work/scientific/store] \
      [--k 10] [--similar-k 10] [--batch 1000] [--users all|N] [--csv DIR] [--dry-run] [--neo4j]

Targets: Neo4j (the connection from NEO4J_URI, NEO4J_USERNAME/NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE
or the --neo4j-* flags, as for build_graph.py --neo4j); with --csv DIR the same rows go to
DIR/recommendations.csv, DIR/similar.csv and DIR/embeddings.parquet instead (no server; add --neo4j to
write both); --dry-run prints the Cypher statements and how many rows each would get, writing nothing.

Re-running with the same model changes nothing (every relationship is MERGEd on its start, end and model
version); a new model version writes its relationships and then deletes the old version's, and a source
whose top k changed loses the relationships that dropped out of it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kg.result_writers import CsvResultWriter, DryRunWriter, Neo4jResultWriter  # noqa: E402
from kg.results import ExportSummary, ResultWriter, export_results  # noqa: E402


def _users_arg(value: str) -> int | None:
    if value == "all":
        return None
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--users takes 'all' or a positive number, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"--users takes 'all' or a positive number, got {value!r}")
    return n


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="trained model directory (scripts/train.py --out)")
    ap.add_argument("--store", type=Path, help="embedded store the model was trained on (default: the one "
                                               "recorded with the model)")
    ap.add_argument("--k", type=int, default=10, help="recommendations per user (default 10; 0 skips them)")
    ap.add_argument("--similar-k", type=int, default=10, help="similar products per product (default 10; 0 skips)")
    ap.add_argument("--batch", type=int, default=1000, help="rows per UNWIND batch and sources per model call "
                                                            "(default 1000)")
    ap.add_argument("--users", type=_users_arg, default=None, metavar="all|N",
                    help="export every user (default) or the first N")
    ap.add_argument("--csv", type=Path, metavar="DIR", help="write recommendations.csv, similar.csv and "
                                                            "embeddings.parquet here instead of Neo4j")
    ap.add_argument("--dry-run", action="store_true", help="print the statements and row counts; write nothing")
    ap.add_argument("--json", type=Path, help="write the export summary as JSON here")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    from kg.neo4j_store import add_connection_arguments
    n = add_connection_arguments(ap, "write to Neo4j too when --csv is given")
    n.add_argument("--similarity", choices=("cosine", "euclidean"), default="cosine",
                   help="vector index similarity function (default cosine)")
    args = ap.parse_args(argv)
    if args.k < 0 or args.similar_k < 0 or args.batch < 1:
        ap.error("--k and --similar-k must be >= 0 and --batch >= 1")
    return args


def load_recommender(model_dir: Path, store: Path | None):
    """The query API of the trained model (`fusion.Recommender`)."""
    from fusion import Recommender
    return Recommender.load(model_dir, store=store)


def user_ids(rec, model_dir: Path, store: Path | None, limit: int | None) -> list[str]:
    """The users to export, the first `limit` of them: the recommender's `user_ids` if it has them, else
    the users of the store (`--store`, else the one recorded in the model's meta.json)."""
    ids = getattr(rec, "user_ids", None)
    if ids is None:
        from kg import EmbeddedStore
        meta = model_dir / "meta.json"
        path = store or (json.loads(meta.read_text(encoding="utf-8")).get("store") if meta.exists() else None)
        if not path:
            raise SystemExit(f"error: {model_dir}/meta.json records no store: pass --store")
        ids = EmbeddedStore(path).load().nodes["User"]["id"]
    ids = [str(u) for u in ids]
    return ids if limit is None else ids[:limit]


def open_neo4j(args: argparse.Namespace):
    from kg import Neo4jStore
    from kg.neo4j_store import config_from_args
    return Neo4jStore(config_from_args(args, batch_size=args.batch), show_progress=not args.quiet)


def report(summary: ExportSummary, writers: list[ResultWriter]) -> None:
    rows = ", ".join(f"{n:,} {t}" for t, n in summary.rows.items())
    print(f"model {summary.model}: {summary.products:,} product embeddings (d={summary.dimensions}), "
          f"{summary.users:,} users; rows: {rows or 'none'} ({summary.seconds:.1f}s)")
    for w in writers:
        if isinstance(w, Neo4jResultWriter):
            removed = w.report.get("removed", {})
            print(f"neo4j: {w.report.get('counters', {})}; removed from other model versions: {removed}")
            missing = w.unmatched()
            if missing:
                print(f"warning: rows whose user or product is not in Neo4j (the graph there is not the one "
                      f"the model was trained on?): {missing}", file=sys.stderr)
        elif isinstance(w, CsvResultWriter):
            print(f"csv: {w.report['directory']}: {', '.join(f'{k} {v:,}' for k, v in w.report.items() if k != 'directory')}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    writers: list[ResultWriter] = []
    store = None
    if args.dry_run:
        writers.append(DryRunWriter(batch_size=args.batch, similarity=args.similarity))
    else:
        if args.csv:
            writers.append(CsvResultWriter(args.csv))
        if args.neo4j or not args.csv:
            store = open_neo4j(args)
            writers.append(Neo4jResultWriter(store, similarity=args.similarity))
    try:
        rec = load_recommender(args.model, args.store)
        users = user_ids(rec, args.model, args.store, args.users) if args.k else []
        summary = export_results(rec, writers, users, k=args.k, similar_k=args.similar_k,
                                 chunk_size=args.batch, show_progress=not args.quiet)
    finally:
        if store is not None:
            store.close()
    report(summary, writers)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {**vars(summary), "seconds": round(time.perf_counter() - t0, 3)}
        args.json.write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
