"""Converters from public Amazon dataset layouts to our input format (products/interactions/relations CSV)."""
from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .schema import CATEGORY_LEVEL_SEP, CATEGORY_PATH_SEP

__all__ = ["ConvertResult", "amazon_json_products", "convert_amazon_json", "convert_amazon_kg", "AMAZON_KG_RELATIONS"]

# amazon-kg file stem -> relation name in relations.csv
AMAZON_KG_RELATIONS = {"also_bought_p_p": "also_bought", "also_viewed_p_p": "also_viewed",
                       "bought_together_p_p": "bought_together"}


@dataclass
class ConvertResult:
    """Paths written and their row counts."""

    files: dict[str, Path]
    rows: dict[str, int]


def _write(df: pd.DataFrame, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, encoding="utf-8")
    return len(df)


def amazon_json_products(items: str | Path) -> pd.DataFrame:
    """`X.item.json` ({idx: {title, description, brand, categories: "A,B,C"}}) -> products in our format
    (product_id, title, description, brand, categories with levels joined by " > ")."""
    item_map = json.loads(Path(items).read_text(encoding="utf-8"))
    return pd.DataFrame({
        "product_id": list(item_map),
        "title": [v.get("title") or "" for v in item_map.values()],
        "description": [v.get("description") or "" for v in item_map.values()],
        "brand": [v.get("brand") or "" for v in item_map.values()],
        # the source joins levels with commas; several paths are not used there
        "categories": [CATEGORY_LEVEL_SEP.join(x.strip() for x in (v.get("categories") or "").split(",") if x.strip())
                       for v in item_map.values()],
    })


def convert_amazon_json(items: str | Path, interactions: str | Path, out: str | Path) -> ConvertResult:
    """`X.item.json` and `X.inter.json` ({user: [item idx, ...] in time order})
    -> products.csv, interactions.csv (no timestamps: file order)."""
    out = Path(out)
    prods = amazon_json_products(items)
    inter_map = json.loads(Path(interactions).read_text(encoding="utf-8"))
    users = [u for u, seq in inter_map.items() for _ in seq]
    items_ = [str(i) for seq in inter_map.values() for i in seq]
    inter = pd.DataFrame({"user_id": users, "product_id": items_})
    files = {"products": out / "products.csv", "interactions": out / "interactions.csv"}
    rows = {"products": _write(prods, files["products"]), "interactions": _write(inter, files["interactions"])}
    return ConvertResult(files, rows)


def _lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def convert_amazon_kg(directory: str | Path, out: str | Path) -> ConvertResult:
    """PGPR/TPRec layout (product/users/brand/category/related_product .txt.gz, *_p_*.txt.gz, time_train/test.csv)
    -> products.csv, interactions.csv (time_train), test_interactions.csv (time_test), relations.csv.

    Category lists there are unordered sets; each product's path is rebuilt by ordering its categories
    from most to least frequent in the catalog (a parent covers at least the products of its children),
    ties by name: ["Beauty", "Curling Irons", "Hair Care", ...] -> "Beauty > Hair Care > ... > Curling Irons".
    """
    d, out = Path(directory), Path(out)
    products = _lines(d / "product.txt.gz")
    users = _lines(d / "users.txt.gz")
    brands = _lines(d / "brand.txt.gz")
    cats = _lines(d / "category.txt.gz")
    related = _lines(d / "related_product.txt.gz")
    p_brand = _lines(d / "brand_p_b.txt.gz")
    p_cat = _lines(d / "category_p_c.txt.gz")
    if not (len(products) == len(p_brand) == len(p_cat)):
        raise ValueError(f"{d}: product.txt.gz, brand_p_b.txt.gz and category_p_c.txt.gz differ in length "
                         f"({len(products)}, {len(p_brand)}, {len(p_cat)})")
    cat_lists = [[int(x) for x in line.split()] for line in p_cat]
    freq = Counter(c for cl in cat_lists for c in set(cl))
    paths = [CATEGORY_LEVEL_SEP.join(cats[c] for c in sorted(set(cl), key=lambda c: (-freq[c], cats[c])))
             for cl in cat_lists]
    prods = pd.DataFrame({
        "product_id": products, "title": "", "description": "",
        # a product lists at most one brand in this release; keep the first if there were several
        "brand": [brands[int(b.split()[0])] if b.strip() else "" for b in p_brand],
        "categories": paths,
    })
    files = {"products": out / "products.csv"}
    rows = {"products": _write(prods, files["products"])}
    for src, name in (("time_train.csv", "interactions"), ("time_test.csv", "test_interactions")):
        df = pd.read_csv(d / src, dtype=str)
        inter = pd.DataFrame({"user_id": [users[int(u)] for u in df["UID"]],
                              "product_id": [products[int(p)] for p in df["PID"]],
                              "timestamp": df["PURCHASE_Time"].str.strip(), "event": "purchase"})
        files[name] = out / f"{name}.csv"
        rows[name] = _write(inter, files[name])
    rel_rows = []
    for stem, rel in AMAZON_KG_RELATIONS.items():
        lines = _lines(d / f"{stem}.txt.gz")
        for i, line in enumerate(lines):
            for j in line.split():
                other = related[int(j)]
                if other != products[i]:
                    rel_rows.append((products[i], rel, other))
    relations = pd.DataFrame(rel_rows, columns=["product_id", "relation", "other_id"]).drop_duplicates()
    files["relations"] = out / "relations.csv"
    rows["relations"] = _write(relations, files["relations"])
    return ConvertResult(files, rows)
