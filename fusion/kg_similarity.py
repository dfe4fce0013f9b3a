"""The cold products' KG similarity: how alike two products are over the whole training knowledge graph
(users, every product, brands, categories and the product relations), by FastRP-style random projection.

    E^(0) = R,   E^(k) = rownorm(A E^(k-1)),   e = sum_k w_k E^(k),   M[h, i] = max(0, <e_h/|e_h|, e_i/|e_i|>)

A the undirected adjacency of the training graph (every relationship type; INTERACTED holds the training
rows only), R a seeded sparse random sign matrix [N, dim] (Achlioptas: +-1 with probability 1/6 each). Two
products are close when they share brands, categories, related products (those outside the catalog too)
and, for products with interactions, buyers; a cold product has no buyers but keeps the rest. The cold
graph term (`fusion.cold_graph`) mixes M's cold columns with its relation paths: on beauty's validation cold
products the mix ranks them above either alone (`docs/results.md`). FastRP in GDS is the `gds_fastrp`
baseline; this is the same propagation done in numpy on the model's own graph, restricted to what a cold
product needs: its column of M over the products a user may have.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from kg.graph import KnowledgeGraph
from kg.layout import CATALOG, OTHER_PRODUCTS, layout_edges, node_layout
from kg.schema import PRODUCT

from .vectors import unit_rows

__all__ = ["kg_adjacency", "random_projection", "kg_similarity_columns", "projection_dim"]

MIN_DIM = 64  # below this the random projection's cosines are too noisy to rank cold products by


def projection_dim(num_nodes: int, dim: int, max_gib: float) -> int:
    """The dimension `random_projection` may use on `num_nodes` nodes within `max_gib` (it holds two
    float32 [num_nodes, dim] arrays at once): `dim`, or less on a large graph, or 0 (skip the similarity)
    where even `MIN_DIM` would not fit."""
    fit = int(max_gib * 2**30 // max(1, 2 * 4 * int(num_nodes)))
    d = min(int(dim), fit)
    return d if d >= MIN_DIM else 0


def kg_adjacency(graph: KnowledgeGraph, items: np.ndarray) -> sp.csr_matrix:
    """A [N, N] float32 CSR, undirected (each relationship in both directions, repeats counted), over every
    node of `graph`: the catalog products `items` (product indices) first, in column order, so that rows
    0 .. len(items)-1 are the item columns; then the other products, then every other label (sorted)."""
    ids, at = node_layout(graph, items, [CATALOG, OTHER_PRODUCTS, *sorted(set(graph.nodes) - {PRODUCT})])
    rows, cols = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for _, s, t in layout_edges(graph, ids):
        rows += [s, t]
        cols += [t, s]
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(at, at))


def random_projection(adj: sp.csr_matrix, dim: int, weights: Sequence[float], seed: int = 0,
                      rows: int | None = None, block_rows: int = 16384) -> np.ndarray:
    """e [rows or N, dim] float32: sum_k w_k E^(k), E^(k) the unit rows of A E^(k-1), E^(0) = R (seeded);
    `rows` keeps only the first rows of the result (the catalog products), the propagation uses every node."""
    if dim < 1 or not len(weights):
        raise ValueError(f"random projection needs dim >= 1 and one weight per hop, got dim={dim}, "
                         f"weights={list(weights)}")
    n = adj.shape[0]
    rng = np.random.default_rng(seed)
    signs = np.array([-1.0, 0.0, 0.0, 0.0, 0.0, 1.0], dtype=np.float32)
    e = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, block_rows):  # row blocks: the same draws as one call, without an [n, dim] int64 array
        e[s:s + block_rows] = signs[rng.integers(0, 6, size=(min(block_rows, n - s), dim))]
    keep = n if rows is None else int(rows)
    out = np.zeros((keep, dim), dtype=np.float32)
    for w in weights:
        e = unit_rows(adj @ e)
        if w:
            out += np.float32(w) * e[:keep]
    return out


def kg_similarity_columns(emb: np.ndarray, cold: np.ndarray, top_k: int = 2000, block: int = 256
                          ) -> sp.csr_matrix:
    """M [n, n] float32 CSR, nonzero only in the columns `cold`: the positive cosines of `emb` [n, dim] rows
    with each cold product's, the `top_k` largest of each column kept, no diagonal."""
    n = emb.shape[0]
    cold = np.asarray(cold, dtype=np.int64)
    if not len(cold):
        return sp.csr_matrix((n, n), dtype=np.float32)
    u = unit_rows(np.asarray(emb, dtype=np.float32))
    data, rws, cls = [], [], []
    k = min(int(top_k), n) if top_k else n
    for s in range(0, len(cold), block):  # [n, block] at a time: a large catalog never forms [n, c]
        cb = cold[s:s + block]
        sim = u @ u[cb].T
        sim[cb, np.arange(len(cb))] = 0.0
        np.maximum(sim, 0.0, out=sim)
        if k < n:
            top = np.argpartition(-sim, k - 1, axis=0)[:k]  # [k, block]
            vals = np.take_along_axis(sim, top, axis=0)
        else:
            top, vals = np.broadcast_to(np.arange(n)[:, None], sim.shape), sim
        ok = vals > 0
        data.append(vals[ok])
        rws.append(top[ok])
        cls.append(np.broadcast_to(cb[None, :], vals.shape)[ok])
    return sp.csr_matrix((np.concatenate(data), (np.concatenate(rws), np.concatenate(cls))), shape=(n, n),
                         dtype=np.float32)
