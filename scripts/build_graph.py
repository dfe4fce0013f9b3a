r"""Build or update the knowledge graph from products / interactions / relations files.

  python scripts/build_graph.py --products products.csv --interactions interactions.csv \
      [--relations relations.csv] --store work/store [--neo4j] [--on-error fail|skip] [--json out.json]

Re-running with the same files changes nothing; adding a new file adds only what is new. Every file is
validated before anything is written, and the store is replaced atomically, so a failed build keeps
the previous graph. With --neo4j the graph in Neo4j is the source of truth: it is read, merged with
the files, the changes are written back in batches, and the embedded store gets a local copy.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kg import EmbeddedStore, InputError, merge_files, write_skip_report  # noqa: E402
from kg.neo4j_store import Neo4jConnectionError  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=Path, help="products file (.csv, .parquet, .jsonl)")
    ap.add_argument("--interactions", type=Path, help="interactions file")
    ap.add_argument("--relations", type=Path, help="product-to-product relations file")
    ap.add_argument("--store", type=Path, required=True, help="embedded store directory (created if new)")
    ap.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                    help="fail on the first bad file (default) or skip bad rows and write a report")
    ap.add_argument("--skip-report", type=Path, help="where skipped rows go (default STORE/skipped_rows.csv)")
    ap.add_argument("--json", type=Path, help="write counts and changes as JSON here")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    from kg.neo4j_store import add_connection_arguments
    n = add_connection_arguments(ap, "use the Neo4j server as the graph store")
    n.add_argument("--batch-size", type=int, default=5000, help="rows per UNWIND batch (default 5000)")
    args = ap.parse_args(argv)
    if not (args.products or args.interactions or args.relations):
        ap.error("give at least one of --products, --interactions, --relations")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    local = EmbeddedStore(args.store)
    store = local
    if args.neo4j:
        from kg import Neo4jStore
        from kg.neo4j_store import config_from_args
        store = Neo4jStore(config_from_args(args, batch_size=args.batch_size), show_progress=not args.quiet)
    try:
        graph = store.load()
        result = merge_files(graph, args.products, args.interactions, args.relations,
                             on_error=args.on_error, show_progress=not args.quiet)
    except InputError as e:
        print(f"error: {e}\nnothing was written; the store is unchanged.", file=sys.stderr)
        return 2
    except Neo4jConnectionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    info = {"products": str(args.products or ""), "interactions": str(args.interactions or ""),
            "relations": str(args.relations or "")}
    try:
        store.write(graph, result.delta, info=info)
    except Neo4jConnectionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    finally:
        if store is not local:
            store.close()
    if store is not local:
        local.write(graph, result.delta, info=info)
    if result.skipped:
        report = args.skip_report or args.store / "skipped_rows.csv"
        write_skip_report(result.skipped, report)
        print(f"skipped {len(result.skipped)} bad row(s); reasons in {report}", file=sys.stderr)
    seconds = time.perf_counter() - t0
    counts = graph.counts()
    ch = result.delta.changes
    print(graph.summary())
    print(f"changes: {ch.nodes_created:,} nodes created, {ch.nodes_updated:,} updated, "
          f"{ch.relationships_created:,} relationships created, {ch.relationships_deleted:,} deleted "
          f"({seconds:.1f}s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**counts, "changes": vars(ch), "skipped_rows": len(result.skipped),
                                         "seconds": round(seconds, 3)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
