"""How close `Recommender.add_products` puts a new product to where training would: re-add sampled catalog
products under new ids (same title, description, brand, categories) and compare (the figures in
fusion/cold_start.py).

  python scripts/eval_cold_start.py --model work/scientific/model --n 400

Reports, for the full cold-start vector and for its text side alone (graph side zero): mean cosine between
the new product's fused vector and the trained one of the original, and how often `similar(new id)` ranks
the original first / in its top 10.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("work/scientific/model"))
    ap.add_argument("--store", type=Path, default=None, help="default: the store in the model's meta.json")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import pandas as pd
    import torch

    from fusion import Recommender
    from fusion.serving.cold_start import fuse

    t0 = time.perf_counter()
    rec = Recommender.load(args.model, store=args.store)
    cat = rec.catalog
    rng = np.random.default_rng(args.seed)
    cols = np.sort(rng.choice(len(cat), min(args.n, len(cat)), replace=False))
    rows = pd.DataFrame({"product_id": [f"{cat.ids[c]}#new" for c in cols], "title": cat.titles[cols],
                         "description": cat.descriptions[cols], "brand": cat.brand_text[cols],
                         "categories": cat.category_text[cols]})
    t1 = time.perf_counter()
    new_ids = rec.add_products(rows)
    add_s = time.perf_counter() - t1
    new_cols = rec.catalog.columns(new_ids)
    F = rec.product_vectors

    def unit(a):
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    others = unit(F[: len(cat)])  # the catalog before the additions

    def rank_of_original(vectors: np.ndarray) -> np.ndarray:
        """Rank of the original among the catalog by cosine to each new vector: what similar(new id) gives
        when that product alone is added (here the other re-added copies are left out of the ranking)."""
        scores = others @ unit(vectors).T  # [catalog, new]; ties (duplicate listings) count in favour
        return (scores > scores[cols, np.arange(len(cols))]).sum(axis=0) + 1

    cos = (unit(F[new_cols]) * unit(F[cols])).sum(1)
    ranks = rank_of_original(F[new_cols])
    with torch.no_grad():  # the text side alone: the same products with a zero graph vector
        text_only = fuse(rec.model, torch.zeros(len(cols), F.shape[1]), torch.from_numpy(np.array(rec.product_text_vectors[new_cols])))
    text_only = text_only.numpy()
    t_cos = (unit(text_only) * unit(F[cols])).sum(1)
    t_rank = rank_of_original(text_only)
    print(f"{len(cols)} products re-added under new ids in {add_s:.1f} s (text encoding included)")
    print("| vector | mean cosine to trained | original first in similar | original in top 10 |")
    print("|---|---:|---:|---:|")
    print(f"| cold start (graph + text) | {cos.mean():.3f} | {np.mean(ranks == 1):.2f} | {np.mean(ranks <= 10):.2f} |")
    print(f"| text side only | {t_cos.mean():.3f} | {np.mean(t_rank == 1):.2f} | {np.mean(t_rank <= 10):.2f} |")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
