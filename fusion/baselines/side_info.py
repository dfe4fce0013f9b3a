"""Item side information read from the training graph: brand/category feature matrix and a products table.

Only node tables and product->brand/category edges are read, never INTERACTED, so nothing here can leak.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kg.graph import KnowledgeGraph
from kg.schema import BRAND, CATEGORY, CATEGORY_LEVEL_SEP, HAS_BRAND, IN_CATEGORY, PRODUCT, SUBCATEGORY_OF

__all__ = ["category_ancestors", "item_features", "products_frame"]


def category_ancestors(graph: KnowledgeGraph) -> list[list[int]]:
    """For each category index, the path of category indices from the root down to it."""
    n = graph.num_nodes(CATEGORY)
    parent = np.full(n, -1, dtype=np.int64)
    sub = graph.edges_of(SUBCATEGORY_OF)
    parent[sub["src"].to_numpy(dtype=np.int64)] = sub["dst"].to_numpy(dtype=np.int64)
    paths: list[list[int]] = []
    for c in range(n):
        path, x, seen = [], c, set()
        while x >= 0 and x not in seen:
            seen.add(x)
            path.append(x)
            x = parent[x]
        paths.append(path[::-1])
    return paths


def item_features(graph: KnowledgeGraph, items: np.ndarray, identity: bool = True) -> sp.csr_matrix:
    """CSR [len(items), (len(items) if identity) + num_brands + num_categories]: an indicator per item (the
    LightFM convention), its brand(s), and its categories with every ancestor; each row sums to 1."""
    col = np.full(graph.num_nodes(PRODUCT), -1, dtype=np.int64)
    col[items] = np.arange(len(items))
    n, nb, nc = len(items), graph.num_nodes(BRAND), graph.num_nodes(CATEGORY)
    off_b = n if identity else 0
    off_c = off_b + nb
    rows, cols = [], []
    if identity:
        rows.append(np.arange(n))
        cols.append(np.arange(n))
    hb = graph.edges_of(HAS_BRAND)
    r = col[hb["src"].to_numpy(dtype=np.int64)]
    rows.append(r[r >= 0])
    cols.append(hb["dst"].to_numpy(dtype=np.int64)[r >= 0] + off_b)
    anc = category_ancestors(graph)
    ic = graph.edges_of(IN_CATEGORY)
    for p, c in zip(col[ic["src"].to_numpy(dtype=np.int64)], ic["dst"].to_numpy(dtype=np.int64)):
        if p >= 0:
            rows.append(np.full(len(anc[c]), p))
            cols.append(np.asarray(anc[c]) + off_c)
    m = sp.csr_matrix((np.ones(sum(len(x) for x in rows), dtype=np.float32),
                       (np.concatenate(rows), np.concatenate(cols))), shape=(n, off_c + nc))
    m.sum_duplicates()
    m.data[:] = 1.0
    norm = np.asarray(m.sum(axis=1)).ravel()
    return sp.diags(1.0 / np.maximum(norm, 1.0)).astype(np.float32) @ m


def products_frame(graph: KnowledgeGraph, items: np.ndarray | None = None) -> pd.DataFrame:
    """Products as the text encoder wants them: product_id, title, description, brand, categories.

    `brand` is the Brand node's display name; `categories` joins each leaf category's root-to-leaf path with
    " > " and several paths with " | ". `items` selects product indices (default: the whole catalog).
    """
    if items is None:
        items = np.flatnonzero(graph.catalog_mask)
    prod = graph.nodes[PRODUCT]
    brand_name = graph.nodes[BRAND]["name"].to_numpy(dtype=object)
    cat_name = graph.nodes[CATEGORY]["name"].to_numpy(dtype=object)
    brands: dict[int, str] = {}
    hb = graph.edges_of(HAS_BRAND)
    for p, b in zip(hb["src"].to_numpy(), hb["dst"].to_numpy()):
        brands.setdefault(int(p), str(brand_name[b]))
    anc = category_ancestors(graph)
    cats: dict[int, list[str]] = {}
    ic = graph.edges_of(IN_CATEGORY)
    for p, c in zip(ic["src"].to_numpy(), ic["dst"].to_numpy()):
        cats.setdefault(int(p), []).append(CATEGORY_LEVEL_SEP.join(str(cat_name[x]) for x in anc[c]))
    rows = prod.iloc[items]
    return pd.DataFrame({
        "product_id": rows["id"].astype(str).to_numpy(),
        "title": rows["title"].fillna("").astype(str).to_numpy(),
        "description": rows["description"].fillna("").astype(str).to_numpy(),
        "brand": [brands.get(int(i), "") for i in items],
        "categories": [" | ".join(cats.get(int(i), [])) for i in items],
    })
