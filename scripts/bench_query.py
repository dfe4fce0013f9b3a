"""Query latency: the Scientific model's query API, and top-k over a synthetic catalog of 1,000,000 products.

1. scientific: single calls of `rec.recommend(user_id, k=10)`, `rec.search(query, k=10)` and
   `rec.similar(product_id, k=10)` on the Scientific model (`fusion.Recommender.load(model_dir)`, exact
   index): seeded samples of distinct users and products, and distinct search queries (a fixed list of
   realistic queries plus fragments of product titles, 2-6 words); warm-up calls, then `--calls` timed calls
   per method (time.perf_counter), p50/p99 in milliseconds. If the model directory is missing, the
   README's commands (convert -> build -> train --split loo) make it first.
2. synthetic_1m: the ranking step of `recommend` (one query vector, k=10, excluding the user's history)
   over `--n` products of the model's dimension, through `ExactIndex` and through `FaissIndex`, on the
   same queries; recall@10 of the approximate index against the exact one over every timed query.

   The catalog is not isotropic noise (an unrealistic worst case for ANN). Generator: the first rows are
   the real Scientific product vectors P (4,344 x 128); every other row is a real product p_i (uniformly
   drawn) plus Gaussian noise scaled to its neighbourhood, p_i + eps, eps ~ N(0, (alpha r_i)^2 / d I), with
   r_i the distance from p_i to its 10th nearest real product and alpha = 0.5 (`--alpha`): a catalog 230x
   denser around the real products, whose synthetic products lie about half a neighbour distance from the
   product they vary. Queries are real user vectors (`rec.user_vectors`) of seeded distinct users; each
   query excludes a history of 10 columns: the user's last real interactions (at most 10), topped up with
   synthetic variants of those products (the kind of near-duplicate a shop holds of what a user bought).
   Without the model (`--skip-scientific`) a seeded clustered mixture stands in, and the JSON says so.

3. realtime (last, as it changes users' states): on the same Scientific model, `rec.record(user, product)` for
   seeded known users and products (the event log in a temporary directory, `durability="flush"`; then
   `"fsync"`), `record` followed by `recommend(user, k=10)`, the first event of a new user, each p50/p99 over
   `--calls` calls; and the throughput of `rec.record_batch` (events/s) on frames of 1,000 and 10,000 events.

The 1-minute load average is recorded at the start and end of each part: the machine is shared, and
numbers taken under load are slower than the code is.

    .venv/bin/python scripts/bench_query.py --json out/bench_query.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kg.build import rss_gib  # noqa: E402  (resident memory now)

DATA = ROOT.parent / "shared" / "data" / "amazon-scientific"
TARGETS_MS = {"recommend": 5.0, "search": 30.0, "exact": 50.0, "approx": 5.0, "record+recommend": 5.0}
QUERIES = [
    "nitrile gloves", "digital caliper", "stainless steel screws", "pla 3d printer filament", "safety glasses",
    "soldering iron kit", "glass beaker set", "pipette tips", "hex key set", "digital multimeter",
    "n95 respirator mask", "nylon cable ties", "k type thermocouple", "resealable plastic bags",
    "magnifying glass with light", "ph test strips", "lab coat", "heat shrink tubing", "ball bearings",
    "o-ring assortment", "silicone sealant", "epoxy adhesive", "torque wrench", "infrared thermometer",
    "hose clamp", "wire stripper", "petri dishes", "measuring tape", "ear plugs", "dust collection bags",
]


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def percentiles(ms) -> dict:
    import numpy as np
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def timed_calls(fn, inputs, warmup: int, label: str):
    """Warm-up calls on the first inputs, then one timed call per input: (milliseconds, results)."""
    from tqdm import tqdm
    for x in inputs[:warmup]:
        fn(x)
    ms, out = [], []
    for x in tqdm(inputs, desc=label, file=sys.stderr, mininterval=1.0):
        t = time.perf_counter()
        r = fn(x)
        ms.append((time.perf_counter() - t) * 1000)
        out.append(r)
    return ms, out


# --- the model ---------------------------------------------------------------------------------------
def ensure_model(model_dir: Path, data: Path) -> None:
    """Run the README's convert -> build -> train commands for whatever is missing."""
    if (model_dir / "config.json").exists():
        return
    work = model_dir.parent
    py = sys.executable
    steps = []
    if not (work / "products.csv").exists():
        steps.append([py, "scripts/convert_dataset.py", "amazon-json", "--items", str(data / "Scientific.item.json"),
                      "--interactions", str(data / "Scientific.inter.json"), "--out", str(work)])
    if not (work / "store").exists():
        steps.append([py, "scripts/build_graph.py", "--products", str(work / "products.csv"), "--interactions",
                      str(work / "interactions.csv"), "--store", str(work / "store"), "--json", str(work / "build.json")])
    steps.append([py, "scripts/train.py", "--store", str(work / "store"), "--out", str(model_dir), "--split", "loo"])
    for i, cmd in enumerate(steps, 1):
        log(f"[{i}/{len(steps)}] {' '.join(cmd)}")
        subprocess.run(cmd, cwd=ROOT, check=True)


def histories(store: Path, product_ids: list[str]) -> dict[str, list[int]]:
    """user id -> columns of the products the user interacted with, in interaction order."""
    import kg
    g = kg.EmbeddedStore(store).load()
    e = g.edges_of("INTERACTED").sort_values(["src", "seq"])
    col = {p: i for i, p in enumerate(product_ids)}
    pid = g.nodes["Product"]["id"].to_numpy()[e["dst"].to_numpy()]
    uid = g.nodes["User"]["id"].to_numpy()[e["src"].to_numpy()]
    out: dict[str, list[int]] = {}
    for u, p in zip(uid, pid):
        if p in col:
            out.setdefault(str(u), []).append(col[p])
    return out


def scientific(rec, args, rng, product_ids: list[str], titles: list[str], user_ids: list[str]) -> dict:
    n = args.calls
    users = [user_ids[i] for i in rng.choice(len(user_ids), min(n, len(user_ids)), replace=False)]
    prods = [product_ids[i] for i in rng.choice(len(product_ids), min(n, len(product_ids)), replace=False)]
    users, prods = (users * (n // len(users) + 1))[:n], (prods * (n // len(prods) + 1))[:n]
    frags = []
    for i in rng.permutation(len(titles)):
        words = titles[i].split()
        if len(words) >= 2:
            frags.append(" ".join(words[: int(rng.integers(2, 7))]).strip(".,;:"))
    queries = list(dict.fromkeys(QUERIES + frags))[:n]
    queries = (queries * (n // len(queries) + 1))[:n]
    out = {"load1_start": load1()}
    warm = args.warmup
    for name, fn, inputs in [("recommend", lambda u: rec.recommend(u, k=10), users),
                             ("search", lambda q: rec.search(q, k=10), queries),
                             ("similar", lambda p: rec.similar(p, k=10), prods)]:
        ms, _ = timed_calls(fn, inputs, warm, f"scientific {name}")
        out[name] = {**percentiles(ms), "calls": len(ms), "distinct_inputs": len(set(inputs))}
        log(f"scientific {name}: {out[name]}")
    out["load1_end"] = load1()
    return out


def realtime(model_dir: Path, args, rng, product_ids: list[str], user_ids: list[str]) -> dict:
    """Latency of record, record + recommend, a new user's first event; throughput of record_batch."""
    import tempfile

    import pandas as pd
    from fusion import Recommender

    n, warm = args.calls, args.warmup
    out = {"load1_start": load1()}
    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp:
        for durability in ("flush", "fsync"):
            rec = Recommender.load(model_dir, event_log=Path(tmp) / f"events-{durability}.csv", durability=durability)
            users = [user_ids[i] for i in rng.choice(len(user_ids), n + warm)]
            prods = [product_ids[i] for i in rng.integers(0, len(product_ids), n + warm)]
            pairs = list(zip(users, prods))
            key = "record" if durability == "flush" else "record_fsync"
            ms, _ = timed_calls(lambda up: rec.record(*up, event="purchase"), pairs, warm, f"realtime {key}")
            out[key] = {**percentiles(ms), "calls": len(ms)}
            log(f"realtime {key}: {out[key]}")
            if durability == "fsync":
                break

            def both(up):
                rec.record(*up, event="purchase")
                return rec.recommend(up[0], k=10)
            pairs = list(zip([user_ids[i] for i in rng.choice(len(user_ids), n + warm)],
                             [product_ids[i] for i in rng.integers(0, len(product_ids), n + warm)]))
            ms, _ = timed_calls(both, pairs, warm, "realtime record+recommend")
            out["record+recommend"] = {**percentiles(ms), "calls": len(ms)}
            log(f"realtime record+recommend: {out['record+recommend']}")
            fresh = [(f"bench-new-{i}", product_ids[j]) for i, j in
                     enumerate(rng.integers(0, len(product_ids), n + warm))]
            ms, _ = timed_calls(lambda up: rec.record(*up), fresh, warm, "realtime new user")
            out["record_new_user"] = {**percentiles(ms), "calls": len(ms)}
            for size in (1000, 10000):
                frame = pd.DataFrame({"user_id": [user_ids[i] for i in rng.choice(len(user_ids), size)],
                                      "product_id": [product_ids[i] for i in rng.integers(0, len(product_ids), size)],
                                      "event": "view"})
                t = time.perf_counter()
                rec.record_batch(frame)
                sec = time.perf_counter() - t
                out[f"record_batch_{size}"] = {"events": size, "seconds": round(sec, 3),
                                               "events_per_s": round(size / sec)}
                log(f"realtime record_batch {size}: {out[f'record_batch_{size}']}")
    out["load1_end"] = load1()
    return out


# --- the synthetic catalog ---------------------------------------------------------------------------
def synthetic_catalog(real, n: int, alpha: float, rng):
    """[n, d] float32: the real vectors, then real vectors plus neighbourhood-scaled noise; and the source
    row of every row (itself for the real rows)."""
    import numpy as np
    from tqdm import tqdm
    p = np.asarray(real, np.float32)
    m, d = p.shape
    sq = (p.astype(np.float64) ** 2).sum(1)
    r10 = np.empty(m)
    for s in range(0, m, 2048):  # distance to the 10th nearest real product
        dist = np.sqrt(np.maximum(sq[s:s + 2048, None] + sq[None] - 2 * p[s:s + 2048] @ p.T, 0))
        dist[np.arange(len(dist)), np.arange(s, s + len(dist))] = np.inf
        r10[s:s + 2048] = np.partition(dist, 9, axis=1)[:, 9]
    src = np.concatenate([np.arange(m), rng.integers(0, m, n - m)])
    x = np.empty((n, d), np.float32)
    x[:m] = p
    step = 100_000
    for s in tqdm(range(m, n, step), desc="synthetic catalog", file=sys.stderr):
        rows = src[s:s + step]
        noise = rng.standard_normal((len(rows), d), dtype=np.float32)
        x[s:s + len(rows)] = p[rows] + noise * (alpha * r10[rows] / np.sqrt(d)).astype(np.float32)[:, None]
    return x, src, float(np.median(r10))


def clustered_mixture(n: int, d: int, num_queries: int, rng):
    """Fallback without the model: 4,000 centres of norm ~1.8, products around them, users as sums of five
    products (shaped like the Scientific model's vectors: product norm ~1.8, user norm ~5.5)."""
    import numpy as np
    centres = rng.standard_normal((4000, d)).astype(np.float32) * (1.8 / np.sqrt(d))
    src = rng.integers(0, 4000, n)
    x = centres[src] + rng.standard_normal((n, d), dtype=np.float32) * np.float32(0.8 / np.sqrt(d))
    users = x[rng.integers(0, n, (num_queries, 5))].sum(1) * np.float32(0.6)
    hist = [rng.integers(0, n, 10) for _ in range(num_queries)]
    return x, np.ascontiguousarray(users, np.float32), hist


def synthetic(args, rng, rec=None, user_ids=None, hist=None) -> dict:
    import numpy as np

    from fusion.serving.ann import ANNConfig, FaissIndex
    from fusion.serving.topk import ExactIndex
    out: dict = {"load1_start": load1(), "n": args.n}
    if rec is not None:
        real = np.asarray(rec.product_vectors, np.float32)
        x, src, r10 = synthetic_catalog(real, args.n, args.alpha, rng)
        users = [user_ids[i] for i in rng.choice(len(user_ids), args.queries, replace=False)]
        q = np.ascontiguousarray(rec.user_vectors(users), np.float32)
        order = np.argsort(src[len(real):], kind="stable") + len(real)
        starts = np.searchsorted(src[order], np.arange(len(real) + 1))
        exclude = []
        for u in users:
            seen = list(dict.fromkeys(hist.get(u, [])[-10:]))
            cols = list(seen)
            for c in seen:  # top up with synthetic variants of what the user has, spread over those products
                per = -(-(10 - len(seen)) // len(seen))
                cols.extend(order[starts[c]:starts[c + 1]][:per].tolist())
            exclude.append(np.asarray(cols[:10], np.int64))
        out["generator"] = (f"real Scientific product vectors ({len(real)}) plus, for the other rows, a real "
                            f"vector + N(0, (alpha r10)^2/d) noise, alpha={args.alpha}, median r10={r10:.3f}; "
                            "queries: real user vectors; exclude: the user's last <=10 products topped up "
                            "with their synthetic variants to 10")
    else:
        x, q, exclude = clustered_mixture(args.n, args.dim, args.queries, rng)
        out["generator"] = ("seeded clustered mixture (no Scientific model): 4,000 centres, products around "
                            "them, users as sums of five products; exclude: 10 random columns")
    d = x.shape[1]
    out.update({"d": d, "queries": len(q), "exclude_per_query": float(np.mean([len(e) for e in exclude]))})

    log(f"exact index over {args.n:,} x {d}")
    exact = ExactIndex(x)
    out["exact"] = {"memory_gib": round(exact.vectors.nbytes / 2**30, 3)}
    inputs = list(range(len(q)))
    ms, res = timed_calls(lambda i: exact.search(q[i:i + 1], 10, exclude=[exclude[i]])[1][0], inputs,
                          args.warmup, "exact 1M")
    truth = res
    out["exact"].update({**percentiles(ms), "calls": len(ms)})
    log(f"exact: {out['exact']}")
    del exact

    cfg = ANNConfig(kind=args.kind, nlist=args.nlist, nprobe=args.nprobe, m=args.hnsw_m, ef_search=args.ef_search,
                    threads=args.build_threads)
    log(f"building FaissIndex {cfg} ...")
    rss0, t = rss_gib(), time.perf_counter()
    approx = FaissIndex(x, cfg)
    build_s = time.perf_counter() - t
    rss1 = rss_gib()
    import faiss
    faiss.omp_set_num_threads(args.faiss_threads)
    log(f"built {approx!r} in {build_s:.1f} s, RSS +{rss1 - rss0:.2f} GiB")
    ms, res = timed_calls(lambda i: approx.search(q[i:i + 1], 10, exclude=[exclude[i]])[1][0], inputs,
                          args.warmup, "approx 1M")
    recall = float(np.mean([len(set(a[a >= 0]) & set(e[e >= 0])) / max(1, (e >= 0).sum())
                            for a, e in zip(res, truth)]))
    out["approx"] = {**percentiles(ms), "recall@10": round(recall, 4), "calls": len(ms),
                     "build_s": round(build_s, 1), "memory_gib": round(rss1 - rss0, 3), "index": repr(approx),
                     "config": cfg.to_dict(), "query_threads": args.faiss_threads}
    log(f"approx: {out['approx']}")
    out["load1_end"] = load1()
    return out


# --- report ------------------------------------------------------------------------------------------
def table(result: dict) -> str:
    rows = ["| part | method | p50 ms | p99 ms | target p99 ms | recall@10 |", "|---|---|---:|---:|---:|---:|"]
    for part in ("scientific", "synthetic_1m", "realtime"):
        for name, v in result.get(part, {}).items():
            if isinstance(v, dict) and "p50_ms" in v:
                target = TARGETS_MS.get(name)
                rows.append(f"| {part} | {name} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | "
                            f"{'-' if target is None else target:} | {v.get('recall@10', '-')} |")
    for name, v in result.get("realtime", {}).items():
        if isinstance(v, dict) and "events_per_s" in v:
            rows.append(f"| realtime | {name} | {v['events_per_s']:,} events/s | | | |")
    return "\n".join(rows)


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    parts = [p for p in ("scientific", "synthetic_1m", "realtime") if p in result]
    fig, axes = plt.subplots(1, len(parts), figsize=(5.5 * len(parts), 4), squeeze=False)
    for ax, part in zip(axes[0], parts):
        names = [k for k, v in result[part].items() if isinstance(v, dict) and "p50_ms" in v]
        xs = range(len(names))
        ax.bar([i - 0.2 for i in xs], [result[part][k]["p50_ms"] for k in names], 0.4, label="p50")
        ax.bar([i + 0.2 for i in xs], [result[part][k]["p99_ms"] for k in names], 0.4, label="p99")
        for i, k in enumerate(names):
            if k in TARGETS_MS:
                ax.hlines(TARGETS_MS[k], i - 0.45, i + 0.45, colors="red", linestyles="--",
                          label="p99 target" if i == 0 or "p99 target" not in ax.get_legend_handles_labels()[1] else None)
            if "recall@10" in result[part][k]:
                ax.annotate(f"recall@10 {result[part][k]['recall@10']:.3f}", (i, result[part][k]["p50_ms"]),
                            textcoords="offset points", xytext=(0, 4), ha="center", fontsize=8)
        ax.set_xticks(list(xs), names)
        ax.set_yscale("log")
        ax.set_ylabel("ms per call")
        title = {"scientific": "Scientific query API", "realtime": "Scientific events (record)"}.get(
            part) or f"top-10 over {result[part]['n']:,} products"
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, required=True, help="results (a PNG of the latencies goes beside it)")
    ap.add_argument("--model", type=Path, default=ROOT / "work" / "scientific" / "model")
    ap.add_argument("--data", type=Path, default=DATA, help="the amazon-scientific data, if the model must be made")
    ap.add_argument("--calls", type=int, default=1000, help="timed calls per Scientific method")
    ap.add_argument("--queries", type=int, default=1000, help="timed queries per 1M index")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--n", type=int, default=1_000_000, help="synthetic catalog size")
    ap.add_argument("--alpha", type=float, default=0.5, help="noise scale (times the 10th-neighbour distance)")
    ap.add_argument("--dim", type=int, default=128, help="dimension of the fallback mixture (no model)")
    ap.add_argument("--kind", default="ivf_flat", choices=("ivf_flat", "hnsw", "flat"))
    ap.add_argument("--nlist", type=int, default=None)
    ap.add_argument("--nprobe", type=int, default=32)
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--ef-search", type=int, default=128)
    ap.add_argument("--blas-threads", type=int, default=1, help="numpy BLAS threads (exact scoring)")
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--faiss-threads", type=int, default=1, help="faiss OpenMP threads while querying")
    ap.add_argument("--build-threads", type=int, default=os.cpu_count() or 1, help="faiss threads while building")
    ap.add_argument("--skip-scientific", action="store_true", help="no model: a clustered mixture stands in")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--skip-realtime", action="store_true", help="no record / record_batch timings")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):  # before numpy loads BLAS
        os.environ[var] = str(args.blas_threads)

    import numpy as np
    import torch
    torch.set_num_threads(args.torch_threads)
    rng = np.random.default_rng(args.seed)
    result: dict = {}
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
            "load1_start": load1(),
            "load_note": "1-minute load average; this benchmark's own single thread counts about 1",
            "settings": {"blas_threads": args.blas_threads, "torch_threads": args.torch_threads,
                         "faiss_query_threads": args.faiss_threads, "faiss_build_threads": args.build_threads,
                         "seed": args.seed}}
    rec = user_ids = hist = None
    if not args.skip_scientific:
        ensure_model(args.model, args.data)
        from fusion import Recommender
        t = time.perf_counter()
        rec = Recommender.load(args.model, event_log=None)
        meta["load_s"] = round(time.perf_counter() - t, 2)
        meta["model"] = str(args.model)
        meta["model_version"] = rec.model_version
        product_ids = rec.product_ids  # vector order
        store = Path(json.loads((args.model / "meta.json").read_text())["store"])
        hist = histories(store, product_ids)
        user_ids = sorted(hist)
        import pandas as pd
        products = pd.read_csv(store.parent / "products.csv", dtype={"product_id": str}) \
            if (store.parent / "products.csv").exists() else None
        titles = [] if products is None else products.title.fillna("").astype(str).tolist()
        result["scientific"] = scientific(rec, args, rng, product_ids, titles, user_ids)
    if not args.skip_synthetic:
        result["synthetic_1m"] = synthetic(args, rng, rec, user_ids, hist)
    if not args.skip_scientific and not args.skip_realtime:
        result["realtime"] = realtime(args.model, args, rng, product_ids, user_ids)
    meta["load1_end"] = load1()
    result["meta"] = meta
    print(table(result))
    print(json.dumps(result, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.json.with_suffix(".png"))
    log(f"wrote {args.json} and {args.json.with_suffix('.png')}")
    return result


if __name__ == "__main__":
    main()
