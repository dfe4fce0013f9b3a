"""Item side information read from the training graph: the brand/category feature matrix of LightFM.

Only node tables and product->brand/category edges are read, never INTERACTED, so nothing here can leak.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kg.export import category_ancestors, column_index
from kg.graph import KnowledgeGraph
from kg.schema import BRAND, CATEGORY, HAS_BRAND, IN_CATEGORY, PRODUCT

__all__ = ["item_features"]


def item_features(graph: KnowledgeGraph, items: np.ndarray, identity: bool = True) -> sp.csr_matrix:
    """CSR [len(items), (len(items) if identity) + num_brands + num_categories]: an indicator per item (the
    LightFM convention), its brand(s), and its categories with every ancestor; each row sums to 1."""
    col = column_index(graph.num_nodes(PRODUCT), items)
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
