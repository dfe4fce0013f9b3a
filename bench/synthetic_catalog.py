"""Synthetic e-commerce catalogs shaped like a real one, at any multiple of its size, written as CSV in chunks.

The real products / interactions files give the shapes; everything is then drawn from them:
- products: title and description lengths drawn from the real ones, text cut from the real texts at
  random offsets; brands drawn Zipf-like from `1,539 x scale` names (about 0.3% empty, as in the data);
  one category path each, a leaf of a tree with the real depth and per-depth branching whose top
  level grows with sqrt(scale) (939 category nodes at 1x, about 30k at 1000x); a price on 80% of them;
- interactions: `users x scale` users, each with a history length drawn from the real (5-core) ones,
  products drawn with the real popularity skew (each synthetic product gets the interaction count
  of a random real product as its weight), no repeated (user, product) pair, grouped by user like the
  real file; optional ISO timestamps, increasing within a user.
Memory stays at one chunk (100k products or 200k users) plus the weights; ids are decimal strings
like the converted real files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["RealShape", "generate_catalog", "data_dir", "parse_scale", "parse_scales"]

_PRODUCT_CHUNK = 100_000
_USER_CHUNK = 200_000


@dataclass
class RealShape:
    """What the generator keeps of the real catalog: empirical distributions and text to cut from."""

    titles: str
    descriptions: str
    title_lens: np.ndarray
    desc_lens: np.ndarray
    brands: list[str]
    brand_empty: float
    category_empty: float
    root: str
    level1_names: list[str]
    names_by_depth: dict[int, list[str]]
    children_by_depth: dict[int, np.ndarray]
    history_lens: np.ndarray
    popularity: np.ndarray
    num_products: int
    num_users: int

    @classmethod
    def from_files(cls, products: Path, interactions: Path) -> "RealShape":
        p = pd.read_csv(products, dtype=str, keep_default_na=False)
        i = pd.read_csv(interactions, dtype=str, keep_default_na=False)
        flat = lambda s: " ".join(s.str.replace(r"\s+", " ", regex=True))  # noqa: E731
        cats = p["categories"][p["categories"] != ""].str.split(" | ", regex=False).explode()
        levels = [x.split(" > ") for x in cats]
        kids: dict[tuple, set] = {}
        for path in levels:
            for d in range(1, len(path) + 1):
                kids.setdefault(tuple(path[:d]), set())
                if d > 1:
                    kids[tuple(path[:d - 1])].add(tuple(path[:d]))
        children_by_depth: dict[int, list[int]] = {}
        names_by_depth: dict[int, set[str]] = {}
        for node, ch in kids.items():
            children_by_depth.setdefault(len(node) - 1, []).append(len(ch))
            names_by_depth.setdefault(len(node) - 1, set()).add(node[-1])
        roots = [n for n in kids if len(n) == 1]
        brands = p["brand"][p["brand"] != ""]
        return cls(
            titles=flat(p["title"]), descriptions=flat(p["description"][p["description"] != ""]),
            title_lens=p["title"].str.len().to_numpy(), desc_lens=p["description"].str.len().to_numpy(),
            brands=list(brands.value_counts().index), brand_empty=float((p["brand"] == "").mean()),
            category_empty=float((p["categories"] == "").mean()), root=roots[0][0],
            level1_names=sorted(names_by_depth.get(1, {"Misc"})),
            names_by_depth={d: sorted(v) for d, v in names_by_depth.items()},
            children_by_depth={d: np.asarray(v) for d, v in children_by_depth.items()},
            history_lens=i["user_id"].value_counts().to_numpy(),
            popularity=i["product_id"].value_counts().reindex(p["product_id"], fill_value=0).to_numpy(),
            num_products=len(p), num_users=i["user_id"].nunique())


def _category_leaves(shape: RealShape, scale: float, rng: np.random.Generator) -> list[str]:
    """Paths ("Root > A > B") of the leaves of a tree with the real per-depth branching; top level x sqrt(scale)."""
    n1 = max(1, round(len(shape.level1_names) * np.sqrt(scale)))
    frontier = [f"{shape.root} > {shape.level1_names[k % len(shape.level1_names)]}"
                + (f" {k // len(shape.level1_names) + 1}" if k >= len(shape.level1_names) else "")
                for k in range(n1)]
    leaves, depth = [], 1
    while frontier:
        dist = shape.children_by_depth.get(depth, np.zeros(1, dtype=int))
        names = shape.names_by_depth.get(depth + 1, ["Other"])
        counts = rng.choice(dist, size=len(frontier))
        nxt = []
        for path, c in zip(frontier, counts):
            if c == 0:
                leaves.append(path)
            for name in rng.choice(names, size=c, replace=c > len(names)):
                nxt.append(f"{path} > {name}")
        frontier, depth = nxt, depth + 1
    return leaves


def _cut(text: str, lens: np.ndarray, rng: np.random.Generator) -> list[str]:
    lens = np.minimum(lens, len(text))
    offs = (rng.random(len(lens)) * (len(text) - lens + 1)).astype(np.int64)
    return [text[o:o + n].strip() for o, n in zip(offs.tolist(), lens.tolist())]


def _zipf_weights(n: int, a: float = 1.05, shift: float = 2.0) -> np.ndarray:
    w = 1.0 / (np.arange(n) + shift) ** a
    return w / w.sum()


def parse_scale(text: str) -> float | int:
    """A scale as the benchmarks name it: "100" -> 100, "0.5" -> 0.5."""
    return float(text) if "." in text else int(text)


def parse_scales(text: str) -> list[float | int]:
    """Comma-separated scales ("1,10,100") -> [1, 10, 100]."""
    return [parse_scale(s) for s in text.split(",") if s.strip()]


def data_dir(workdir: Path, scale: float, timestamps: bool = False) -> Path:
    """Where the benchmarks keep the catalog at `scale` under `workdir`: generated once, reused by each of them."""
    return workdir / "data" / f"x{scale}{'-ts' if timestamps else ''}"


def generate_catalog(shape: RealShape, scale: float, out: Path, seed: int = 0,
                     timestamps: bool = False) -> dict:
    """Write `out/products.csv` and `out/interactions.csv` at `scale` x the real catalog; returns the counts.

    Reuses the files when `out/done.json` says they were made with the same arguments.
    """
    params = {"scale": scale, "seed": seed, "timestamps": timestamps, "version": 1}
    done = out / "done.json"
    if done.exists():
        info = json.loads(done.read_text())
        if info.get("params") == params:
            return info
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_prod = int(round(shape.num_products * scale))
    n_users = int(round(shape.num_users * scale))

    # --- products ---------------------------------------------------------------------------------
    leaves = np.asarray(_category_leaves(shape, scale, rng), dtype=object)
    leaf_w = _zipf_weights(len(leaves), a=0.8, shift=10)[rng.permutation(len(leaves))]
    n_brands = max(1, round(len(shape.brands) * scale))
    brand_names = np.asarray([shape.brands[k % len(shape.brands)]
                              + (f" {k // len(shape.brands) + 1}" if k >= len(shape.brands) else "")
                              for k in range(n_brands)], dtype=object)
    brand_w = _zipf_weights(n_brands, a=0.9, shift=3.0)
    path = out / "products.csv"
    for start in range(0, n_prod, _PRODUCT_CHUNK):
        n = min(_PRODUCT_CHUNK, n_prod - start)
        brand = brand_names[rng.choice(n_brands, size=n, p=brand_w)]
        brand[rng.random(n) < shape.brand_empty] = ""
        cats = leaves[rng.choice(len(leaves), size=n, p=leaf_w)]
        cats[rng.random(n) < shape.category_empty] = ""
        price = np.round(np.exp(rng.normal(3.0, 1.1, size=n)), 2).astype(str).astype(object)
        price[rng.random(n) < 0.2] = ""
        desc_lens = rng.choice(shape.desc_lens, size=n)
        desc = _cut(shape.descriptions, desc_lens, rng)
        pd.DataFrame({
            "product_id": np.arange(start, start + n).astype(str),
            "title": _cut(shape.titles, np.maximum(rng.choice(shape.title_lens, size=n), 3), rng),
            "description": [d if k else "" for d, k in zip(desc, desc_lens.tolist())],
            "brand": brand, "categories": cats, "price": price,
        }).to_csv(path, mode="w" if start == 0 else "a", header=start == 0, index=False)

    # --- interactions -----------------------------------------------------------------------------
    pop = rng.choice(shape.popularity, size=n_prod).astype(np.float64) + 0.5
    cdf = np.cumsum(pop / pop.sum())
    cdf[-1] = 1.0
    path = out / "interactions.csv"
    n_inter = 0
    day0 = np.datetime64("2010-01-01T00:00:00", "s")
    for start in range(0, n_users, _USER_CHUNK):
        n = min(_USER_CHUNK, n_users - start)
        lens = rng.choice(shape.history_lens, size=n)
        users = np.repeat(np.arange(start, start + n, dtype=np.int64), lens)
        items = np.searchsorted(cdf, rng.random(len(users)), side="right").clip(0, n_prod - 1)
        keep = ~pd.Series(users * n_prod + items).duplicated().to_numpy()
        df = pd.DataFrame({"user_id": users[keep], "product_id": items[keep]})
        if timestamps:
            first = rng.integers(0, 8 * 365 * 86400, size=n)
            step = rng.integers(3600, 60 * 86400, size=len(users)).cumsum()
            first_step = np.repeat(step[np.cumsum(lens) - lens], lens)
            secs = np.repeat(first, lens) + step - first_step
            df["timestamp"] = np.datetime_as_string(day0 + secs[keep], unit="s")
        df.to_csv(path, mode="w" if start == 0 else "a", header=start == 0, index=False)
        n_inter += len(df)
    info = {"params": params, "products": n_prod, "users": n_users, "interactions": n_inter,
            "brands": n_brands, "category_leaves": len(leaves),
            "bytes": {f.name: f.stat().st_size for f in (out / "products.csv", out / "interactions.csv")}}
    done.write_text(json.dumps(info, indent=2))
    return info

