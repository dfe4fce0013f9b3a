"""Benchmark the description encoder on the Amazon Scientific catalog (4,344 products).

Runs, in one process and with the same model, batch size and max length:

1. ours (:class:`text.TextEncoder`, fp32) and ``sentence_transformers.SentenceTransformer.encode``,
   alternating slice by slice (``--chunks`` slices per pass, who goes first swaps each
   slice), ``--repeats`` passes each; items/s is the median over passes;
2. the int8 encoder: median speed and the minimum cosine to our fp32 vectors over every product;
3. query latency: ``encode_query`` on short queries made from product titles (p50/p99);
4. the cache: fill it with the catalog, change 1% of the products, time ``encode_products``.

Usage::

    .venv/bin/python scripts/bench_text.py --json /tmp/bench_text.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "amazon-scientific"


def load_products(data_dir: Path):
    """``Scientific.item.json`` -> products DataFrame (product_id = the item key)."""
    from kg.convert import amazon_json_products

    path = data_dir / "Scientific.item.json"
    if not path.is_file():
        raise SystemExit(f"expected the catalog at {path}; pass --data DIR")
    return amazon_json_products(path)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="where to write the results")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=2, help="passes over the catalog per encoder (median reported)")
    parser.add_argument("--chunks", type=int, default=8, help="slices per pass; the encoders alternate slice by slice")
    parser.add_argument("--bf16", action="store_true", help="also time the bfloat16 encoder (logged, not in the JSON)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--limit", type=int, default=None, help="first N products only (smoke test)")
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from text import EmbeddingCache, EncoderConfig, TextEncoder, encode_products, product_text, text_key

    products = load_products(args.data)
    if args.limit:
        products = products.head(args.limit)
    texts = product_text(products).tolist()
    n = len(texts)
    config = EncoderConfig(batch_size=args.batch_size, max_length=args.max_length)
    ours = TextEncoder(config)
    st = SentenceTransformer(config.resolved_model_path, device="cpu", local_files_only=True)
    st.max_seq_length = args.max_length
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    log(f"{n} products, batch {args.batch_size}, max_length {args.max_length}, threads {torch.get_num_threads()}")

    ours.encode_texts(texts[:64]), st.encode(texts[:64], batch_size=args.batch_size)  # warm-up
    # Alternate finely: the catalog is cut into --chunks slices and, slice by slice, both
    # encoders run it (who goes first swaps every time), so drifting machine load hits
    # both alike. Each encoder's time for the catalog is the sum over slices.
    bounds = np.linspace(0, n, args.chunks + 1).astype(int)
    times: dict[str, list[float]] = {"ours": [], "st": []}
    turn = 0
    for r in range(args.repeats):
        total = {"ours": 0.0, "st": 0.0}
        parts: dict[str, list] = {"ours": [], "st": []}
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            chunk = texts[lo:hi]
            runs = [
                ("ours", lambda: ours.encode_texts(chunk, batch_size=args.batch_size)),
                ("st", lambda: st.encode(chunk, batch_size=args.batch_size, convert_to_tensor=True, show_progress_bar=False)),
            ]
            for name, fn in runs if turn % 2 == 0 else runs[::-1]:
                seconds, out = timed(fn)
                total[name] += seconds
                parts[name].append(out)
            turn += 1
        for name in total:
            times[name].append(total[name])
            log(f"repeat {r}: {name:4s} {total[name]:6.1f} s  {n / total[name]:6.1f} items/s")
    fp32, st_vectors = torch.cat(parts["ours"]), torch.cat(parts["st"]).float()
    agreement = float((fp32 * st_vectors.float()).sum(1).min())
    log(f"min cosine ours vs sentence-transformers: {agreement:.6f}")

    int8_encoder = TextEncoder(EncoderConfig(batch_size=args.batch_size, max_length=args.max_length, quantize=True))
    int8_encoder.encode_texts(texts[:64])
    int8_times = []
    for r in range(max(1, args.repeats - 1)):  # one int8 pass per two fp32 passes: it is not compared head to head
        seconds, int8 = timed(lambda: int8_encoder.encode_texts(texts, batch_size=args.batch_size))
        int8_times.append(seconds)
        log(f"repeat {r}: int8 {seconds:6.1f} s  {n / seconds:6.1f} items/s")
    cosines = (fp32 * int8).sum(1)
    del int8_encoder
    log(f"int8 cosine to fp32: min {float(cosines.min()):.5f} mean {float(cosines.mean()):.5f}")

    if args.bf16:
        bf16_encoder = TextEncoder(EncoderConfig(batch_size=args.batch_size, max_length=args.max_length, dtype="bfloat16"))
        bf16_encoder.encode_texts(texts[:64])
        seconds, bf16 = timed(lambda: bf16_encoder.encode_texts(texts, batch_size=args.batch_size))
        log(f"bf16 (extra, not in the JSON): {n / seconds:6.1f} items/s, min cosine to fp32 {float((fp32 * bf16).sum(1).min()):.5f}")
        del bf16_encoder

    queries = [" ".join(t.split()[:4]).strip(".,") for t in products.title.tolist()[:: max(1, n // args.queries)]]
    for q in queries[:10]:
        ours.encode_query(q)
    latencies = []
    for q in queries:
        seconds, _ = timed(lambda: ours.encode_query(q))
        latencies.append(seconds * 1000)

    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(Path(tmp) / "text_cache")
        unique = dict.fromkeys(text_key(t) for t in texts)  # fill with the fp32 vectors just computed
        first = {}
        for i, t in enumerate(texts):
            first.setdefault(text_key(t), i)
        cache.put(ours.model_id, list(unique), fp32[[first[k] for k in unique]].numpy())
        changed = products.copy()
        step = 100  # 1% of the products
        rows = changed.index[::step]
        changed.loc[rows, "description"] = changed.loc[rows, "description"].fillna("") + " Updated listing."
        cache_rerun_s, (_, rerun) = timed(lambda: encode_products(ours, changed, cache, show_progress=False))
        log(f"cache re-run after changing {len(rows)} products: {cache_rerun_s:.2f} s (hits {cache.hits}, misses {cache.misses})")
        untouched = np.setdiff1d(np.arange(n), rows.to_numpy())
        assert torch.equal(rerun[untouched], fp32[untouched]), "cache returned different vectors for unchanged products"

    ours_s, st_s = statistics.median(times["ours"]), statistics.median(times["st"])
    result = {
        "items": n,
        "ours_items_per_s": round(n / ours_s, 2),
        "st_items_per_s": round(n / st_s, 2),
        "ratio": round(st_s / ours_s, 3),
        "quantized_items_per_s": round(n / statistics.median(int8_times), 2),
        "quantized_min_cosine": round(float(cosines.min()), 5),
        "query_p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "query_p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "cache_rerun_s": round(cache_rerun_s, 3),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
