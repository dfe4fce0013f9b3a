"""Measure the search blend of `fusion.Recommender.search` on a trained model (the figures in fusion/search.py).

  python scripts/eval_search.py --model work/scientific/model --store work/scientific/store

Retrieval (model bound to the whole store), for each alpha (weight of the model's query head; 1 - alpha on the
raw encoder cosine):
  * own title: 400 sampled products queried by their full title: MRR@10 and R@10 of that product;
  * 3 words: the same products queried by the first three words of their title: R@10;
  * hand: hand-written queries, P@10 = share of the top 10 whose title matches the query's pattern;
  * category: 150 category names (level >= 2, 5..300 products): P@10 = share of the top 10 in that category.
Personalisation (model bound to the loo training graph, i.e. without each user's last item): 1,500 users
query the leaf-category name of their held-out item; for each beta: MRR@10 / HR@10 of the held-out item and
P@10 of the results in the query's category (relevance must not drop), with and without exclude_seen.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HAND = {
    "stainless steel staples": r"stapl", "digital caliper": r"calip", "nitrile gloves": r"nitrile",
    "safety glasses": r"safety.*(glass|goggle|eyewear)|glasses|goggle", "hard start kit": r"hard start|start kit",
    "gaffer tape": r"gaff", "lab beaker": r"beaker", "soldering iron": r"solder", "3d printer filament": r"filament",
    "duct tape": r"duct tape", "pipette tips": r"pipet", "digital multimeter": r"multimeter",
    "respirator mask": r"respirator|mask", "wood screws": r"screw", "thermometer": r"thermometer",
    "cutting mat": r"cutting mat", "magnifying glass": r"magnif", "petri dish": r"petri",
    "hygrometer humidity": r"humidity|hygrometer", "drywall screws": r"drywall",
}


def _rank(frame, pid: str) -> int:
    hit = np.flatnonzero(frame["product_id"].to_numpy() == pid)
    return int(hit[0]) + 1 if len(hit) else 0  # 0 = not in the top k


def retrieval(rec, alphas, seed: int = 1) -> list[dict]:
    from fusion.serving.search import SearchBlend

    cat = rec.catalog
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(cat), 400, replace=False)
    titles = [str(cat.titles[i]) for i in sample]
    pids = [str(cat.ids[i]) for i in sample]
    sizes = cat.category_size()
    cands = [c for c in range(len(cat.cat_keys)) if cat.cat_levels[c] >= 2 and 5 <= sizes[c] <= 300]
    cats = rng.choice(cands, min(150, len(cands)), replace=False)
    rows = []
    for a in alphas:
        rec.search_blend = SearchBlend(alpha=a, beta=0.0)
        full = [_rank(rec.search(t, k=10), p) for t, p in zip(titles, pids)]
        short = [_rank(rec.search(" ".join(t.split()[:3]), k=10), p) for t, p in zip(titles, pids)]
        hand = [np.mean([bool(re.search(pat, t, re.I)) for t in rec.search(q, k=10)["title"]])
                for q, pat in HAND.items()]
        in_cat = []
        for c in cats:
            top = cat.columns(rec.search(str(cat.cat_names[c]), k=10)["product_id"].tolist())
            in_cat.append(cat.cat_matrix[top][:, [c]].toarray().mean())
        full, short = np.array(full), np.array(short)
        rows.append({"alpha": a, "own title MRR@10": np.mean(np.where(full > 0, 1 / np.maximum(full, 1), 0)),
                     "own title R@10": np.mean(full > 0), "3 words R@10": np.mean(short > 0),
                     "hand P@10": np.mean(hand), "category P@10": np.mean(in_cat)})
    return rows


def personalisation(model_dir, graph, alpha, betas, n_users: int = 1500, seed: int = 1) -> list[dict]:
    from fusion import Recommender
    from fusion.evaluation.splits import make_split
    from fusion.serving.search import SearchBlend

    split = make_split(graph, "loo", seed=0)
    rec = Recommender.load(model_dir, store=split.fit_graph(graph, final=True))
    cat = rec.catalog
    users = graph.nodes["User"]["id"].to_numpy()[split.test["src"].to_numpy()]
    items = graph.nodes["Product"]["id"].to_numpy()[split.test["dst"].to_numpy()]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(users), min(n_users, len(users)), replace=False)
    cases = []
    for u, p in zip(users[pick], items[pick]):
        col = cat.column(str(p))
        if cat.leaves[col]:
            leaf = cat.leaves[col][0]
            cases.append((str(u), str(p), leaf, str(cat.cat_names[leaf])))
    rows = []
    for excl in (False, True):
        for b in betas:
            rec.search_blend = SearchBlend(alpha=alpha, beta=b)
            ranks, rel = [], []
            for u, p, leaf, q in cases:
                f = rec.search(q, k=10, user_id=u, exclude_seen=excl)
                ranks.append(_rank(f, p))
                rel.append(cat.cat_matrix[cat.columns(f["product_id"].tolist())][:, [leaf]].toarray().mean())
            r = np.array(ranks)
            mrr = np.mean(np.where(r > 0, 1 / np.maximum(r, 1), 0))
            rows.append({"exclude_seen": excl, "beta": b, "held-out MRR@10": mrr,
                         "held-out HR@10": np.mean(r > 0), "query-category P@10": np.mean(rel)})
    return rows


def _table(rows: list[dict]) -> str:
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---:|" * len(keys)]
    for r in rows:
        out.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("work/scientific/model"))
    ap.add_argument("--store", type=Path, default=Path("work/scientific/store"))
    ap.add_argument("--alphas", default="0,0.1,0.2,0.5,1")
    ap.add_argument("--betas", default="0,0.1,0.25,0.5,1")
    ap.add_argument("--alpha", type=float, default=0.1, help="alpha for the personalisation runs")
    ap.add_argument("--users", type=int, default=1500)
    args = ap.parse_args(argv)

    from fusion import Recommender
    from kg import EmbeddedStore

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    graph = EmbeddedStore(args.store).load()
    rec = Recommender.load(args.model, store=graph)
    print(_table(retrieval(rec, [float(a) for a in args.alphas.split(",")])))
    print()
    print(_table(personalisation(args.model, graph, args.alpha, [float(b) for b in args.betas.split(",")], args.users)))
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
