r"""Batch scoring: every user's top k from a trained model, in chunks, at a constant memory.

  python scripts/recommend_all.py --model work/scientific/model --out out/recs.parquet [--index faiss] [--k 20]
  python scripts/recommend_all.py --model work/scientific/model --out out/recs.parquet --neo4j   # and into Neo4j

Writes `--out` (Parquet: user_id, rank, product_id, score, model; one row group per chunk, moved into place
when complete) with what each user already interacted with left out, as `Recommender.recommend_batch` ranks
(the item-item term included). With --neo4j the same top k also goes to the server as RECOMMENDED
relationships (with the product embeddings) through the results export (`scripts/export_to_neo4j.py`'s
writer: batched, idempotent, a new model version replacing the old one's). The events of the store's event
log are replayed first, so recorded users are scored as they are now. Prints users/s and the resident memory
after the first and the last chunk.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kg.build import rss_gib  # noqa: E402  (resident memory now)


class MemoryProbe:
    """A writer that records the resident memory after each chunk (to show that it stays flat)."""

    name = "memory"

    def __init__(self) -> None:
        self.report: dict = {}
        self.rss: list[float] = []

    def begin(self, model, dimensions):
        self.rss = [rss_gib()]

    def embeddings(self, *a):
        pass

    def output(self, rel_type, table, model, sources):
        self.rss.append(rss_gib())

    def finish(self, model, rel_types):
        pass

    def abort(self):
        pass


def score_all(source, out: Path, user_ids: list[str], k: int, chunk: int, extra_writers=(), quiet: bool = False):
    """Top k of every user in `user_ids` from `source` (a `fusion.Recommender`, or anything with `product_ids`,
    `product_vectors`, `model_version`, `recommend_batch`) into `out`; returns (summary, memory probe)."""
    from kg.result_writers import ParquetTopKWriter
    from kg.results import export_results

    probe = MemoryProbe()
    summary = export_results(source, [ParquetTopKWriter(out), *extra_writers, probe], user_ids, k=k,
                             similar_k=0, chunk_size=chunk, show_progress=not quiet)
    return summary, probe


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="trained model directory")
    ap.add_argument("--store", type=Path, help="embedded store (default: the one recorded with the model)")
    ap.add_argument("--out", type=Path, required=True, help="Parquet file to write")
    ap.add_argument("--index", choices=("exact", "faiss"), default="exact")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=4096, help="users per model call and row group (default 4096)")
    ap.add_argument("--users", type=int, help="only the first N users (default all)")
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    ap.add_argument("--quiet", action="store_true")
    from kg.neo4j_store import add_connection_arguments
    add_connection_arguments(ap, "also write the top k into Neo4j as RECOMMENDED relationships")
    args = ap.parse_args(argv)
    if args.k < 1 or args.chunk < 1:
        ap.error("--k and --chunk must be at least 1")

    from fusion import Recommender
    t0 = time.perf_counter()
    rec = Recommender.load(args.model, store=args.store, index=args.index)
    load_s = time.perf_counter() - t0
    users = rec.user_ids if args.users is None else rec.user_ids[:args.users]
    writers, store = [], None
    if args.neo4j:
        from kg import Neo4jStore
        from kg.neo4j_store import config_from_args
        from kg.result_writers import Neo4jResultWriter
        store = Neo4jStore(config_from_args(args), show_progress=not args.quiet)
        writers.append(Neo4jResultWriter(store))
    t1 = time.perf_counter()
    try:
        summary, probe = score_all(rec, args.out, users, args.k, args.chunk, writers, args.quiet)
    finally:
        if store is not None:
            store.close()
    sec = time.perf_counter() - t1
    figures = {"users": len(users), "k": args.k, "index": args.index, "chunk": args.chunk, "seconds": round(sec, 2),
               "users_per_s": round(len(users) / sec, 1), "load_s": round(load_s, 2),
               "rss_gib_first_chunk": round(probe.rss[1] if len(probe.rss) > 1 else probe.rss[0], 3),
               "rss_gib_last_chunk": round(probe.rss[-1], 3),
               "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
               "rows": summary.rows, "out": str(args.out), "model_version": rec.model_version,
               "neo4j": bool(args.neo4j)}
    print(f"{len(users):,} users' top {args.k} in {sec:.1f} s ({figures['users_per_s']:,.0f} users/s, {args.index} "
          f"index) -> {args.out}; RSS {figures['rss_gib_first_chunk']:.2f} GiB after the first chunk, "
          f"{figures['rss_gib_last_chunk']:.2f} GiB after the last")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
