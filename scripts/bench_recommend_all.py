r"""Batch scoring throughput (`scripts/recommend_all.py`): users/s and memory on the Scientific model and on a
synthetic model of 1,000,000 products and 1,000,000 users.

  .venv/bin/python scripts/bench_recommend_all.py --json out/bench_recommend_all.json

1. scientific: `recommend_all.score_all` over every user of `work/scientific/model` (top 20, seen products
   excluded, the item-item term included), exact index and faiss index.
2. synthetic: the catalog generator of `scripts/bench_query.py` (real Scientific product vectors, then real
   ones plus neighbourhood-scaled noise) for `--products` products; `--users` user vectors made the same
   way from the real user vectors; each user has a history of 10 products (its source user's last real
   products mapped onto synthetic variants, topped up at random) that is excluded. Scored through the same
   export loop and Parquet writer, `FaissIndex` (IVF-Flat, the query API's approximate index); an exact
   1M x 1M product is ~1.3e14 flops, out of reach of two cores. `--score-users` scores the first N only.
Resident memory is sampled after every chunk: flat means the output is streamed, not held.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]


class ArraySource:
    """A recommender made of arrays: user vectors U [m, d], product vectors F [n, d], seen products per user,
    ranked by a top-k index (what `recommend_batch` does without the item-item term)."""

    def __init__(self, users, products, seen, index, model_version="synthetic"):
        import numpy as np
        self.user_vectors, self.product_vectors = users, products
        self.product_ids = np.char.add("p", np.arange(len(products)).astype(str)).astype(object)
        self.seen, self.index, self.model_version = seen, index, model_version

    def recommend_batch(self, user_ids, k=10, exclude_seen=True):
        import numpy as np
        import pandas as pd
        rows = np.array([int(u[1:]) for u in user_ids], dtype=np.int64)
        exclude = [self.seen[r] for r in rows] if exclude_seen else None
        scores, cols = self.index.search(self.user_vectors[rows], k, exclude, None)
        return pd.DataFrame({"user_id": np.repeat(np.asarray(user_ids, dtype=object), k),
                             "rank": np.tile(np.arange(1, k + 1), len(rows)),
                             "product_id": self.product_ids[np.maximum(cols, 0)].reshape(-1),
                             "score": np.where(cols >= 0, scores, -np.inf).reshape(-1)})


def synthetic_users(real_users, m: int, rng):
    """[m, d]: the real user vectors, then real ones plus noise scaled to each vector's norm (10%)."""
    import numpy as np
    u = np.asarray(real_users, np.float32)
    src = np.concatenate([np.arange(len(u)), rng.integers(0, len(u), m - len(u))])
    x = u[src].copy()
    noise = rng.standard_normal((m - len(u), u.shape[1])).astype(np.float32)
    x[len(u):] += noise * (0.1 * np.linalg.norm(u[src[len(u):]], axis=1, keepdims=True) / np.sqrt(u.shape[1]))
    return x, src


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=ROOT / "work" / "scientific" / "model")
    ap.add_argument("--products", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--score-users", type=int, default=None, help="score only the first N synthetic users")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--faiss-threads", type=int, default=2)
    ap.add_argument("--skip-scientific", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    import numpy as np
    import torch
    torch.set_num_threads(1)
    from bench_query import synthetic_catalog
    from fusion import Recommender
    from fusion.serving.ann import FaissIndex
    from recommend_all import rss_gib, score_all

    out: dict = {"machine": f"{os.cpu_count()} cores", "load1_start": round(os.getloadavg()[0], 2)}
    tmp = Path(tempfile.mkdtemp(prefix="bench-recs-"))
    rec = Recommender.load(args.model, event_log=None)
    if not args.skip_scientific:
        for index in ("exact", "faiss"):
            r = rec if index == "exact" else Recommender.load(args.model, index="faiss", event_log=None)
            users = r.user_ids
            t = time.perf_counter()
            summary, probe = score_all(r, tmp / f"sci-{index}.parquet", users, args.k, args.chunk, quiet=True)
            sec = time.perf_counter() - t
            out[f"scientific_{index}"] = {"users": len(users), "seconds": round(sec, 2),
                                          "users_per_s": round(len(users) / sec), "rows": summary.rows,
                                          "rss_gib_first": round(probe.rss[1], 3), "rss_gib_last": round(probe.rss[-1], 3)}
            print(f"scientific {index}: {out[f'scientific_{index}']}", file=sys.stderr, flush=True)
    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    products, src, _ = synthetic_catalog(rec.product_vectors, args.products, 0.5, rng)
    users, usrc = synthetic_users(rec.user_vectors(rec.user_ids), args.users, rng)
    # histories: the source user's last 10 real products, each moved to a random synthetic variant of it
    variants = {}
    order = np.argsort(src, kind="stable")
    starts = np.searchsorted(src[order], np.arange(len(rec.product_vectors)))
    ends = np.searchsorted(src[order], np.arange(len(rec.product_vectors)), side="right")
    real_hist = [rec._history.items_of(u)[-10:] for u in range(rec.num_users)]
    seen = []
    for i in range(args.users):
        h = real_hist[usrc[i]]
        pick = [int(order[rng.integers(starts[c], ends[c])]) for c in h]
        pick += rng.integers(0, args.products, 10 - len(pick)).tolist()
        seen.append(np.unique(np.asarray(pick, dtype=np.int64)))
    gen_s = time.perf_counter() - t
    import faiss
    faiss.omp_set_num_threads(args.faiss_threads)
    t = time.perf_counter()
    index = FaissIndex(products)
    build_s = time.perf_counter() - t
    source = ArraySource(users, products, seen, index)
    n = args.users if args.score_users is None else min(args.score_users, args.users)
    ids = [f"u{i}" for i in range(n)]
    rss0 = rss_gib()
    t = time.perf_counter()
    summary, probe = score_all(source, tmp / "synthetic.parquet", ids, args.k, args.chunk)
    sec = time.perf_counter() - t
    out["synthetic"] = {"products": args.products, "users": args.users, "scored_users": n, "k": args.k,
                        "index": "faiss ivf_flat", "faiss_threads": args.faiss_threads, "generate_s": round(gen_s, 1),
                        "index_build_s": round(build_s, 1), "seconds": round(sec, 1), "users_per_s": round(n / sec),
                        "rows": summary.rows, "rss_gib_before_scoring": round(rss0, 3),
                        "rss_gib_first_chunk": round(probe.rss[1], 3), "rss_gib_last_chunk": round(probe.rss[-1], 3),
                        "rss_gib_max_over_chunks": round(max(probe.rss), 3),
                        "parquet_mib": round((tmp / "synthetic.parquet").stat().st_size / 2**20, 1)}
    out["load1_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
