"""Views of a KnowledgeGraph for the other packages: torch_geometric HeteroData, networkx, and the products
table with brand and category-path text (what the text encoder, the baselines and the query API read)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .graph import KnowledgeGraph
from .schema import (BRAND, CATEGORY, CATEGORY_LEVEL_SEP, HAS_BRAND, IN_CATEGORY, INTERACTED, NODE_LABELS, PRODUCT,
                     PRODUCT_RELATIONS, REL_SPECS, SUBCATEGORY_OF)

if TYPE_CHECKING:  # heavy imports stay lazy
    import networkx as nx
    from torch_geometric.data import HeteroData

__all__ = ["to_hetero_data", "to_networkx", "rev_type", "column_index", "category_parents", "category_path",
           "category_ancestors", "category_path_text", "product_brands", "product_leaves", "product_relation_pairs",
           "products_frame"]


def rev_type(rel_type: str) -> str:
    """Name of the reverse edge type added for message passing: INTERACTED -> rev_INTERACTED."""
    return f"rev_{rel_type}"


def to_hetero_data(graph: KnowledgeGraph, reverse: bool = True) -> "HeteroData":
    """HeteroData with node types = labels (num_nodes set), one edge type per relationship type
    (`edge_index` [2, E] int64, row 0 = source index, row 1 = destination index), and, if `reverse`,
    the reverse edge types `(dst, rev_TYPE, src)`.

    INTERACTED edges carry `edge_weight` [E] float32 and `time` [E] int64 (-1 where unknown);
    Product nodes carry `in_catalog` [N] bool. Pass the training graph of a split, never the full one.
    """
    import torch
    from torch_geometric.data import HeteroData

    data = HeteroData()
    for label in NODE_LABELS:
        data[label].num_nodes = graph.num_nodes(label)
    data[PRODUCT].in_catalog = torch.from_numpy(graph.catalog_mask.copy())
    for t, spec in REL_SPECS.items():
        e = graph.edges.get(t)
        if e is None or not len(e):
            continue
        ei = torch.from_numpy(np.stack([e["src"].to_numpy(np.int64), e["dst"].to_numpy(np.int64)]))
        data[spec.src, t, spec.dst].edge_index = ei
        if reverse:
            data[spec.dst, rev_type(t), spec.src].edge_index = ei.flip(0)
        if t == INTERACTED:
            # copies: pandas 3 hands out read-only views, which torch warns about
            w = torch.from_numpy(e["weight"].to_numpy(np.float32, copy=True))
            ts = torch.from_numpy(e["timestamp"].fillna(-1).to_numpy(np.int64, copy=True))
            data[spec.src, t, spec.dst].edge_weight = w
            data[spec.src, t, spec.dst].time = ts
            if reverse:
                data[spec.dst, rev_type(t), spec.src].edge_weight = w
                data[spec.dst, rev_type(t), spec.src].time = ts
    return data


def to_networkx(graph: KnowledgeGraph, rel_types: tuple[str, ...] | None = None) -> "nx.MultiDiGraph":
    """MultiDiGraph for path queries: nodes are `(label, external_id)` with their properties,
    edges carry `type` (the relationship type) and their properties; `key` is the type too.

    Example: `nx.shortest_path(G.to_undirected(as_view=True), ("User", "u1"), ("Product", "p9"))`.
    """
    import networkx as nx

    G = nx.MultiDiGraph()
    ids = {label: graph.nodes[label]["id"].to_numpy() for label in NODE_LABELS}
    for label in NODE_LABELS:
        table = graph.nodes[label]
        props = [c for c in table.columns if c != "id"]
        recs = table[props].to_dict("records") if props else [{}] * len(table)
        G.add_nodes_from(((label, i), {"label": label, **r}) for i, r in zip(ids[label], recs))
    for t, spec in REL_SPECS.items():
        if rel_types is not None and t not in rel_types:
            continue
        e = graph.edges.get(t)
        if e is None or not len(e):
            continue
        src = ids[spec.src][e["src"].to_numpy()]
        dst = ids[spec.dst][e["dst"].to_numpy()]
        props = [c for c in e.columns if c not in ("src", "dst")]
        recs = e[props].to_dict("records") if props else [{}] * len(e)
        G.add_edges_from(((spec.src, s), (spec.dst, d), t, {"type": t, **r}) for s, d, r in zip(src, dst, recs))
    return G


# --- products with their side information ------------------------------------------------------------------
def column_index(num_products: int, items: np.ndarray) -> np.ndarray:
    """int64 [num_products]: product index -> its position (column) in `items`, -1 for products not in it."""
    column_of = np.full(num_products, -1, dtype=np.int64)
    column_of[items] = np.arange(len(items))
    return column_of


def category_parents(graph: KnowledgeGraph) -> np.ndarray:
    """int64 [num_categories]: each category's parent index (SUBCATEGORY_OF), -1 for a root."""
    parent = np.full(graph.num_nodes(CATEGORY), -1, dtype=np.int64)
    sub = graph.edges_of(SUBCATEGORY_OF)
    parent[sub["src"].to_numpy(dtype=np.int64)] = sub["dst"].to_numpy(dtype=np.int64)
    return parent


def category_path(parent: np.ndarray, category: int) -> list[int]:
    """Category indices from the root down to `category` (a cycle in `parent` ends the walk)."""
    path, c = [], int(category)
    while c >= 0 and c not in path:
        path.append(c)
        c = int(parent[c])
    return path[::-1]


def category_ancestors(graph: KnowledgeGraph) -> list[list[int]]:
    """For each category index, the path of category indices from the root down to it."""
    parent = category_parents(graph)
    return [category_path(parent, c) for c in range(len(parent))]


def category_path_text(paths: list[list[int]], names: np.ndarray) -> str:
    """Root-to-leaf paths as text: levels joined by " > ", several paths by " | " ("" for none)."""
    return " | ".join(CATEGORY_LEVEL_SEP.join(str(names[a]) for a in path) for path in paths)


def product_brands(graph: KnowledgeGraph, column_of: np.ndarray) -> np.ndarray:
    """int64 [num_columns]: the brand index of each product column (-1 = none); the first HAS_BRAND edge wins."""
    brand = np.full(int(column_of.max(initial=-1)) + 1, -1, dtype=np.int64)
    hb = graph.edges_of(HAS_BRAND)
    c = column_of[hb["src"].to_numpy(np.int64)]
    ok = c >= 0
    brand[c[ok][::-1]] = hb["dst"].to_numpy(np.int64)[ok][::-1]  # reversed: the first edge is written last
    return brand


def product_leaves(graph: KnowledgeGraph, column_of: np.ndarray) -> list[list[int]]:
    """Per product column, its leaf categories (IN_CATEGORY targets) in edge order."""
    leaves: list[list[int]] = [[] for _ in range(int(column_of.max(initial=-1)) + 1)]
    ic = graph.edges_of(IN_CATEGORY)
    for p, cat in zip(column_of[ic["src"].to_numpy(np.int64)], ic["dst"].to_numpy(np.int64)):
        if p >= 0:
            leaves[p].append(int(cat))
    return leaves


def product_relation_pairs(graph: KnowledgeGraph, column_of: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per product-to-product relationship type with edges: (type, source columns int64, destination columns
    int64) of its edges whose two ends both have a column, in edge order."""
    out = []
    for rel in PRODUCT_RELATIONS:
        e = graph.edges.get(rel)
        if e is None or not len(e):
            continue
        a, b = column_of[e["src"].to_numpy(np.int64)], column_of[e["dst"].to_numpy(np.int64)]
        keep = (a >= 0) & (b >= 0)
        out.append((rel, a[keep], b[keep]))
    return out


def products_frame(graph: KnowledgeGraph, items: np.ndarray | None = None) -> pd.DataFrame:
    """Products as the text encoder wants them: product_id, title, description, brand, categories.

    `brand` is the Brand node's display name; `categories` joins each leaf category's root-to-leaf path with
    " > " and several paths with " | ". `items` selects product indices (default: the whole catalog).
    Only node tables and product -> brand/category edges are read, never INTERACTED.
    """
    if items is None:
        items = np.flatnonzero(graph.catalog_mask)
    column_of = column_index(graph.num_nodes(PRODUCT), items)
    brand_name = graph.nodes[BRAND]["name"].to_numpy(dtype=object)
    cat_name = graph.nodes[CATEGORY]["name"].to_numpy(dtype=object)
    brand = product_brands(graph, column_of)
    anc = category_ancestors(graph)
    rows = graph.nodes[PRODUCT].iloc[items]
    return pd.DataFrame({
        "product_id": rows["id"].astype(str).to_numpy(),
        "title": rows["title"].fillna("").astype(str).to_numpy(),
        "description": rows["description"].fillna("").astype(str).to_numpy(),
        "brand": [str(brand_name[b]) if b >= 0 else "" for b in brand],
        "categories": [category_path_text([anc[c] for c in leaves], cat_name)
                       for leaves in product_leaves(graph, column_of)],
    })
