"""The cold products' graph term: a cold product (no interaction in the bound graph) is also scored by how its
product-product relations (also_bought, also_viewed, bought_together) reach the user's history,

    g_ui = sum_{h in H_u} (K + b K^2 + r C K)[h, i]               for cold i (0 for warm products)

K = D^-1/2 A D^-1/2, A the binary, symmetric union of the product relations among catalog products (with
`FusionConfig.external_links`, also the links through products outside the catalog). This is what FastRP's
propagation gives a cold product (it reaches warm ones two hops out), exact and sparse; the network only sees
those neighbours through pooled embeddings. C K (`ColdMixConfig.graph_cf`) adds the paths through the
interactions that FastRP also walks: the user's product is bought with a product related to the cold one
(C the products' cosine co-occurrence over users). Its weight v (relative to the spread of the network's cold scores,
as the item-item term's is) is chosen with the text mix's w on the validation cold products
(`fusion.cold_mix.choose_cold_mix`; v = 0, no term, always competes), and it is served as extra columns of
the item-item term (`combined_head`), which top-k retrieval already keeps exact.

Each user's cold products then give the term back (`ColdMixConfig.graph_offset`): by default ("max") the
user's largest term over the cold products, g_ui - max_j g_uj. The order among cold products is the term's
(what the cold slice measures), but no cold product scores above its own network + text mix score, so the
term cannot push warm products down: a v that would cost warm ranking as a plain lift (measured on beauty,
`docs/results.md`) costs nothing. ("mean" keeps each user's mean cold score, as the text mix does; on beauty's
sparse term that is hardly different from no offset.) Served as one more column of the rec index,
[u | p_u | o_u] . [F' | T' | -1 on cold], o_u the user's offset (`fusion.serving.snapshot.Snapshot.rec_users`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from kg.graph import KnowledgeGraph
from kg.schema import PRODUCT_RELATIONS

from .item_item import ItemItemHead, load_csr, save_csr

__all__ = ["COLD_GRAPH_FILE", "ColdGraphTerm", "product_adjacency", "cold_graph_weights", "cooccurrence_paths",
           "combine_cold_graph", "combined_head"]

COLD_GRAPH_FILE = "cold_graph.npz"


def product_adjacency(graph: KnowledgeGraph, column_of: np.ndarray, num_items: int, external_links: int = 0
                      ) -> sp.csr_matrix:
    """K [num_items, num_items] float32 CSR: D^-1/2 A D^-1/2 over the product-product relations between item
    columns (`column_of`: product index -> column, -1 outside), A binary and symmetric, no self loops; with
    `external_links` = k > 0, A also holds each relation's `fusion.features.shared_external_links`."""
    from .features import shared_external_links

    rows, cols = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for rel in PRODUCT_RELATIONS:
        e = graph.edges.get(rel)
        if e is None or not len(e):
            continue
        src, dst = e["src"].to_numpy(), e["dst"].to_numpy()
        pairs = [(src, dst)]
        if external_links > 0:
            links = shared_external_links(src, dst, graph.catalog_mask, external_links)
            pairs.append((links[0], links[1]))
        for s, t in pairs:
            a, b = column_of[s], column_of[t]
            ok = (a >= 0) & (b >= 0) & (a != b)
            rows += [a[ok], b[ok]]
            cols += [b[ok], a[ok]]
    r, c = np.concatenate(rows), np.concatenate(cols)
    adj = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(num_items, num_items))
    adj.data[:] = 1.0  # repeated pairs (two relations, both directions given) count once
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv = sp.diags((1.0 / np.sqrt(np.maximum(deg, 1.0))).astype(np.float32))
    return (inv @ adj @ inv).tocsr().astype(np.float32)


def cooccurrence_paths(user_items: sp.csr_matrix, k_cold: sp.spmatrix) -> sp.csc_matrix:
    """C K_cold [n, c] float32: C the cosine co-occurrence of products over users (D^-1/2 X^T X D^-1/2, zero
    diagonal; X = `user_items` [users, n] binary), K_cold [n, c] product-relation columns of cold products.
    Computed as X^T (X (D^-1/2 K_cold)) - K_cold on products with interactions, never forming C [n, n]."""
    x = user_items.astype(np.float32).tocsr()
    x.data[:] = 1.0
    deg = np.asarray(x.sum(axis=0)).ravel()
    inv = sp.diags((1.0 / np.sqrt(np.maximum(deg, 1.0))).astype(np.float32))
    k = sp.csc_matrix(k_cold, dtype=np.float32)
    full = inv @ (x.T @ (x @ (inv @ k)))
    return (full - sp.diags((deg > 0).astype(np.float32)) @ k).tocsc().astype(np.float32)


def _norm_off_diagonal(m: sp.spmatrix, cold: np.ndarray) -> float:
    """Frobenius norm of [n, c] `m` without its entries (cold[j], j): what the term keeps of it."""
    m = sp.coo_matrix(m)
    return float(np.sqrt(np.sum(m.data[m.row != cold[m.col]].astype(np.float64) ** 2)))


def cold_graph_weights(adj: sp.csr_matrix, cold: np.ndarray, hop2: float = 3.0, top_k: int = 500,
                       user_items: sp.csr_matrix | None = None, cf: float = 0.0) -> sp.csr_matrix:
    """G [n, n] float32 CSR, nonzero only in the columns `cold`: (K + hop2 * K^2)[:, cold], plus with `cf` > 0
    and `user_items` the paths through co-purchase, r C K[:, cold] (`cooccurrence_paths`: a related product
    that the user's products are bought with), r scaling that part's Frobenius norm to `cf` times the
    first's; each column pruned to its `top_k` largest entries (rows: the products a user has, columns: the
    cold products scored); the diagonal is zero (a product never speaks for itself)."""
    n = adj.shape[0]
    cold = np.asarray(cold, dtype=np.int64)
    if not len(cold) or adj.nnz == 0:
        return sp.csr_matrix((n, n), dtype=np.float32)
    k1 = adj[:, cold].tocsc()
    m = (k1 + np.float32(hop2) * (adj @ k1)).tocsc().astype(np.float32)
    if cf > 0 and user_items is not None and user_items.nnz and m.nnz:
        paths = cooccurrence_paths(user_items, k1)
        norm_m, norm_p = _norm_off_diagonal(m, cold), _norm_off_diagonal(paths, cold)
        if norm_p > 0:
            m = (m + np.float32(cf * norm_m / norm_p) * paths).tocsc().astype(np.float32)
    data, indices, indptr = [], [], [0]
    for j in range(m.shape[1]):
        lo, hi = m.indptr[j], m.indptr[j + 1]
        r, v = m.indices[lo:hi], m.data[lo:hi]
        keep = (r != cold[j]) & (v > 0)
        r, v = r[keep], v[keep]
        if len(v) > top_k:  # the top_k largest; ties by the smaller row, so the result is deterministic
            order = np.lexsort((r, -v))[:top_k]
            r, v = r[order], v[order]
        data.append(v)
        indices.append(r)
        indptr.append(indptr[-1] + len(r))
    sub = sp.csc_matrix((np.concatenate(data), np.concatenate(indices), np.asarray(indptr)),
                        shape=(n, len(cold))).tocoo()
    return sp.csr_matrix((sub.data, (sub.row, cold[sub.col])), shape=(n, n), dtype=np.float32)


def _fro(m: sp.spmatrix) -> float:
    return float(np.sqrt(np.sum(np.asarray(m.data, dtype=np.float64) ** 2)))


def combine_cold_graph(rel: sp.csr_matrix | None, kg: sp.csr_matrix | None, share: float
                       ) -> sp.csr_matrix | None:
    """G = (1 - rho) G_rel / |G_rel| + rho M / |M| (Frobenius norms) from the relation paths `rel` and the KG
    similarity `kg` (`fusion.kg_similarity`), rho = `share`; rho = 0 returns `rel` itself (the term's scale
    is set by its gamma, so only the ratio matters), a missing part leaves the other; None when neither."""
    rho = float(share)
    if kg is None or (rho == 0 and rel is not None):
        return rel
    if rel is None or rho == 1:
        return (kg * np.float32(1.0 / max(_fro(kg), 1e-30))).tocsr().astype(np.float32)
    a = np.float32((1 - rho) / max(_fro(rel), 1e-30))
    b = np.float32(rho / max(_fro(kg), 1e-30))
    return (rel * a + kg * b).tocsr().astype(np.float32)


@dataclass
class ColdGraphTerm:
    """The fitted term `gamma * (x_u @ weights)` (weights from `cold_graph_weights`; `weight` is the relative v
    chosen on validation, gamma = v times the network's cold-score spread over the term's), less each user's
    offset on every column of `cold` (the cold products at fit time): gamma times the user's largest ("max")
    or mean ("mean") term over them, or nothing ("none"); see `ColdMixConfig.graph_offset`."""

    weights: sp.csr_matrix
    gamma: float
    weight: float
    hop2: float
    offset: str = "none"
    cold: np.ndarray | None = None
    kg_share: float = 0.0  # rho: the KG similarity's share of `weights` (`combine_cold_graph`)

    @property
    def num_items(self) -> int:
        return self.weights.shape[0]

    @property
    def shifts(self) -> bool:
        """True when `offsets` can be nonzero (an offset mode and cold columns to apply it to)."""
        return self.offset != "none" and self.cold is not None and len(self.cold) > 0

    def scores(self, user_items: sp.csr_matrix) -> np.ndarray:
        """float32 [B, n_items] = gamma * X G for binary user rows X [B, n_items] (without the offsets)."""
        return (np.float32(self.gamma) * (user_items @ self.weights).toarray()).astype(np.float32)

    def offsets(self, user_items: sp.csr_matrix) -> np.ndarray:
        """float32 [B]: what is taken off each user's `cold` columns, gamma times the max or the mean of the
        row's term over them (G is zero outside them and >= 0, so both come from the row's stored entries)."""
        if not self.shifts:
            return np.zeros(user_items.shape[0], dtype=np.float32)
        t = (user_items @ self.weights).tocsr()
        if self.offset == "max":
            o = np.asarray(t.max(axis=1).toarray()).ravel()
        else:
            o = np.asarray(t.sum(axis=1)).ravel() / len(self.cold)
        return (np.float32(self.gamma) * o).astype(np.float32)

    def apply_offsets(self, scores: np.ndarray, user_items: sp.csr_matrix) -> np.ndarray:
        """`scores` [B, n_items] (with the term added) less each row's offset on the cold columns, in place."""
        if self.shifts:
            scores[:, self.cold] -= self.offsets(user_items)[:, None]
        return scores

    def save(self, directory: str | Path) -> Path:
        extra = {} if self.cold is None else {"cold": np.asarray(self.cold, dtype=np.int64)}
        return save_csr(Path(directory) / COLD_GRAPH_FILE, self.weights, gamma=self.gamma, weight=self.weight,
                        hop2=self.hop2, offset=self.offset, kg_share=self.kg_share, **extra)

    @classmethod
    def load(cls, directory: str | Path) -> "ColdGraphTerm | None":
        path = Path(directory) / COLD_GRAPH_FILE
        if not path.exists():
            return None
        w, z = load_csr(path)
        offset = str(z["offset"]) if "offset" in z else "none"  # terms saved before offsets: none
        cold = z["cold"].astype(np.int64) if "cold" in z else None
        share = float(z["kg_share"]) if "kg_share" in z else 0.0  # terms saved before the KG similarity: none
        return cls(w, float(z["gamma"]), float(z["weight"]), float(z["hop2"]), offset, cold, share)


def combined_head(item_item: ItemItemHead | None, cold: ColdGraphTerm | None) -> ItemItemHead | None:
    """One sparse term for scoring and serving: the item-item term's columns (products with interactions) plus
    the cold graph term's (products without), which never overlap; None when neither is there. The term's
    per-user offset is not in it (it is dense over the cold columns): see `ColdGraphTerm.apply_offsets`."""
    if cold is None or cold.gamma == 0 or cold.weights.nnz == 0:
        return item_item
    if item_item is None:
        return ItemItemHead(cold.weights.tocsr(), cold.gamma, 0.0, 0.0)
    if item_item.gamma == 0:  # only the next-item memory won: it stays, beside the cold term's columns
        return item_item.with_weights(cold.weights.tocsr().astype(np.float32), cold.gamma)
    w = (item_item.weights + cold.weights * np.float32(cold.gamma / item_item.gamma)).tocsr().astype(np.float32)
    return item_item.with_weights(w, item_item.gamma)
