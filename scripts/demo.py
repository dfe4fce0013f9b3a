"""The main job end to end on the embedded store: convert -> build the graph -> (train -> evaluate -> recommend).

  python scripts/demo.py [--data ../shared/data] [--work work]

Uses ../shared/data/amazon-scientific when present, else a small generated catalog. Each step runs
as far as the project has it; later issues extend this script.
"""
from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def run(*args: object) -> None:
    cmd = [sys.executable, *map(str, args)]
    print("$ " + " ".join(str(a) for a in args), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def toy_catalog(out: Path, seed: int = 0) -> None:
    """A small generated shop (200 products, 300 users) for machines without the real data."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    cats = ["Tools > Fasteners > Staples", "Tools > Fasteners > Nails", "Tools > Hand Tools > Hammers",
            "Lab > Glassware > Beakers", "Lab > Safety > Gloves", "Electrical > Passive Components > Capacitors"]
    brands = ["Stanley", "Bostitch", "Pyrex", "Ansell", "Supco", "Kimble"]
    with open(out / "products.csv", "w", encoding="utf-8") as f:
        f.write("product_id,title,description,brand,categories\n")
        for i in range(200):
            c = rng.randrange(len(cats))
            leaf = cats[c].rsplit(" > ", 1)[1]
            f.write(f"P{i:04d},{brands[c]} {leaf} model {i},A {leaf.lower()} for everyday work,{brands[c]},{cats[c]}\n")
    with open(out / "interactions.csv", "w", encoding="utf-8") as f:
        f.write("user_id,product_id\n")
        for u in range(300):
            taste = rng.randrange(len(cats))
            for _ in range(rng.randint(5, 12)):
                c = taste if rng.random() < 0.8 else rng.randrange(len(cats))
                p = rng.choice([i for i in range(200) if i % len(cats) == c] or [0])
                f.write(f"U{u:04d},P{p:04d}\n")


def show_recommendations(model: Path, users: int = 3, k: int = 5) -> None:
    """Top-k for the first few users through the query API (`fusion.Recommender`), beside what they
    bought last, with the best explanation of the first recommendation."""
    sys.path.insert(0, str(ROOT))
    from fusion import Recommender

    rec = Recommender.load(model)
    for user in rec.user_ids[:users]:
        last = rec.history(user).tail(2)
        print(f"\nuser {user}; last bought: " + " | ".join(str(t)[:60] for t in last["title"]))
        top = rec.recommend(user, k=k)
        for r in top.itertuples():
            print(f"  {r.rank}. {str(r.title)[:90]}")
        why = rec.explain(user, top["product_id"].iloc[0], max_paths=1)
        if why:
            print(f"     why #1: {why[0].text}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=ROOT / "work")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    src = args.data / "amazon-scientific"
    ds = args.work / ("scientific" if src.exists() else "toy")
    step("1. convert the catalog")
    if src.exists():
        run("scripts/convert_dataset.py", "amazon-json", "--items", src / "Scientific.item.json",
            "--interactions", src / "Scientific.inter.json", "--out", ds)
    else:
        print(f"{src} not found: using a generated toy catalog in {ds}")
        toy_catalog(ds)
    step("2. build the knowledge graph (embedded store)")
    store = ds / "store"
    run("scripts/build_graph.py", "--products", ds / "products.csv", "--interactions", ds / "interactions.csv",
        "--store", store, "--json", ds / "build.json")
    model = ds / "model"
    step("3. train the fusion model (graph + text + fusion; early stopping, then refit)")
    # the real catalog's tuned config (order-aware user tower, chosen on validation: docs/model.md); defaults otherwise
    tuned = ["--config", ROOT / "configs" / "scientific"] if src.exists() else []
    run("scripts/train.py", "--store", store, "--out", model, "--split", "loo", *tuned)
    step("4. evaluate against baselines on the same leave-one-out split")
    run("scripts/evaluate.py", "--store", store, "--split", "loo", "--model", model,
        "--baselines", "popularity,itemknn,ease", "--json", ds / "eval.json", "--plot", ds / "eval.png")
    step("5. recommendations for a few users")
    show_recommendations(model)
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f}s; store {store}, model {model}, "
          f"plots {model / 'curves.png'} and {ds / 'eval.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
