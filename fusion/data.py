"""Training data: what a model may see at training time (`TrainData`: the training graph, its interaction
matrix and item columns), time-ordered user histories, and KG path sampling for the fusion model.

Everything here is derived from a training graph (its INTERACTED table holds training rows only).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from kg.export import column_index, product_relation_pairs
from kg.graph import KnowledgeGraph
from kg.schema import HAS_BRAND, IN_CATEGORY, INTERACTED, PRODUCT, USER

__all__ = ["TrainData", "interaction_matrix", "Histories", "build_histories", "time_ordered",
           "csr_indptr", "PathSampler", "build_path_sampler"]


def interaction_matrix(interactions: pd.DataFrame, num_users: int, column_of: np.ndarray) -> sp.csr_matrix:
    """Binary CSR [num_users, num_items] from INTERACTED rows (`src` user, `dst` product index).

    `column_of[p]` is product p's column (-1 for products outside the catalog, which are dropped).
    Repeated (user, item) pairs count once.
    """
    cols = column_of[interactions["dst"].to_numpy(dtype=np.int64)]
    keep = cols >= 0
    rows = interactions["src"].to_numpy(dtype=np.int64)[keep]
    m = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (rows, cols[keep])),
                      shape=(num_users, int(column_of.max(initial=-1)) + 1))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


@dataclass
class TrainData:
    """What a recommender may see at training time.

    Args:
        graph: the training graph: its INTERACTED table holds training interactions only (the leak guard).
        user_items: binary CSR [num_users, num_items] of the same training interactions.
        items: product index of each column (the recommendable catalog).
        valid: optional CSR [num_users, num_items] of validation items, set only while tuning, for models
            that stop early (BPR-MF, LightGCN). Never the test split.
        seed: random seed for every model's initialisation and sampling.
        cache_dir: where models may cache derived data (e.g. text embeddings); None = no cache.
        valid_cold: optional CSR [num_users, num_items] of the validation cold products' rows (products with
            no interaction in `graph`, see `fusion.evaluation.splits`), set only while tuning: where a model
            chooses how it ranks cold products.
    """

    graph: KnowledgeGraph
    user_items: sp.csr_matrix
    items: np.ndarray
    valid: sp.csr_matrix | None = None
    seed: int = 0
    cache_dir: str | None = None
    valid_cold: sp.csr_matrix | None = None
    _column_of: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_graph(cls, graph: KnowledgeGraph, valid: pd.DataFrame | None = None, seed: int = 0,
                   cache_dir: str | None = None, valid_cold: pd.DataFrame | None = None) -> "TrainData":
        """Build from a training graph (see `KnowledgeGraph.with_interactions`) and optional validation rows
        (and validation cold products' rows)."""
        items = np.flatnonzero(graph.catalog_mask).astype(np.int64)
        column_of = column_index(graph.num_nodes(PRODUCT), items)
        n_users = graph.num_nodes(USER)
        ui = interaction_matrix(graph.edges_of(INTERACTED), n_users, column_of)
        ui.resize((n_users, len(items)))
        v = None
        if valid is not None:
            v = interaction_matrix(valid, n_users, column_of)
            v.resize((n_users, len(items)))
        vc = None
        if valid_cold is not None and len(valid_cold):
            vc = interaction_matrix(valid_cold, n_users, column_of)
            vc.resize((n_users, len(items)))
        return cls(graph=graph, user_items=ui, items=items, valid=v, seed=seed, cache_dir=cache_dir,
                   valid_cold=vc, _column_of=column_of)

    @property
    def num_users(self) -> int:
        return self.user_items.shape[0]

    @property
    def num_items(self) -> int:
        return self.user_items.shape[1]

    @property
    def column_of(self) -> np.ndarray:
        """Product index -> column (-1 outside the catalog)."""
        if self._column_of is None:
            self._column_of = column_index(self.graph.num_nodes(PRODUCT), self.items)
        return self._column_of

@dataclass
class Histories:
    """Each user's catalog items in time order, flattened CSR-style.

    Attributes:
        indptr: int64 [num_users + 1]; user u's items are items[indptr[u]:indptr[u+1]].
        items: int64 [num_interactions] item columns.
    """

    indptr: np.ndarray
    items: np.ndarray

    @property
    def num_users(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def window(self, end: np.ndarray, user: np.ndarray, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The `length` items before flat position `end` within each user's history.

        Returns (items [B, length] int64, mask [B, length] bool), most recent item in the last column.
        """
        pos = end[:, None] - length + np.arange(length)[None, :]
        mask = pos >= self.indptr[user][:, None]
        items = self.items[np.where(mask, pos, 0)] if len(self.items) else np.zeros_like(pos)
        return torch.from_numpy(np.where(mask, items, 0)), torch.from_numpy(mask)

    def others(self, pos: np.ndarray, user: np.ndarray, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to `length` of the user's items other than the one at flat position `pos`: the ones after it,
        wrapping round to the start (all of them when the user has <= length others). Right-aligned like
        `window`: (items [B, length] int64, mask [B, length] bool)."""
        start = self.indptr[user]
        n = self.indptr[user + 1] - start
        n_other = np.minimum(n - 1, length)
        j = np.arange(length)[None, :]
        valid = j >= (length - n_other)[:, None]
        step = j - (length - n_other)[:, None] + 1  # 1..n_other on valid columns
        flat = start[:, None] + (pos - start)[:, None] + step
        flat = start[:, None] + (flat - start[:, None]) % np.maximum(n, 1)[:, None]
        items = self.items[np.where(valid, flat, 0)] if len(self.items) else np.zeros_like(flat)
        return torch.from_numpy(np.where(valid, items, 0)), torch.from_numpy(valid)

    def last(self, users: np.ndarray, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The `length` most recent items of each user (for scoring)."""
        return self.window(self.indptr[users + 1], users, length)


def time_ordered(graph: KnowledgeGraph, column_of: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """INTERACTED sorted by (user, timestamp, seq) — missing timestamps keep arrival order — catalog items
    only: (users int64, item columns int64, rows: the edge-table row of each, for other columns)."""
    e = graph.edges_of(INTERACTED)
    cols = column_of[e["dst"].to_numpy(np.int64)]
    ts = e["timestamp"].astype("float64").fillna(-np.inf).to_numpy()
    order = np.lexsort((e["seq"].to_numpy(), ts, e["src"].to_numpy()))
    order = order[cols[order] >= 0]
    return e["src"].to_numpy(np.int64)[order], cols[order].astype(np.int64), order


def csr_indptr(rows: np.ndarray, n: int) -> np.ndarray:
    """indptr [n + 1] of sorted row indices `rows` (CSR layout)."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    return np.cumsum(indptr)


def build_histories(graph: KnowledgeGraph, column_of: np.ndarray) -> Histories:
    """Each user's catalog items in time order (see `time_ordered`)."""
    users, cols, _ = time_ordered(graph, column_of)
    return Histories(csr_indptr(users, graph.num_nodes(USER)), cols)


@dataclass
class PathSampler:
    """Samples real KG paths product -> (brand | category | related product) -> product', as item columns.

    Each group is a CSR from an item column to the item columns reachable through it.
    """

    groups: list[tuple[str, np.ndarray, np.ndarray]]

    def sample(self, start: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """For each start item, one path end (or -1 where it has none). Returns (ends, valid mask)."""
        ends = np.full(len(start), -1, dtype=np.int64)
        if not self.groups:
            return ends, ends >= 0
        g = rng.integers(0, len(self.groups), len(start))
        for k, (_, indptr, idx) in enumerate(self.groups):
            sel = np.flatnonzero(g == k)
            deg = indptr[start[sel] + 1] - indptr[start[sel]]
            ok = deg > 0
            pick = indptr[start[sel][ok]] + (rng.random(ok.sum()) * deg[ok]).astype(np.int64)
            ends[sel[ok]] = idx[pick]
        return ends, ends >= 0


def _two_hop(src_items: np.ndarray, mid: np.ndarray, num_items: int, cap: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Item -> items sharing a `mid` node (brand, category), excluding itself; at most `cap` per item."""
    order = np.lexsort((src_items, mid))
    mid, src_items = mid[order], src_items[order]
    rows, cols = [], []
    bounds = np.flatnonzero(np.diff(mid)) + 1
    for grp in np.split(src_items, bounds):
        if len(grp) < 2:
            continue
        for i in grp:
            others = grp[grp != i]
            if len(others) > cap:
                others = others[np.linspace(0, len(others) - 1, cap).astype(np.int64)]
            rows.append(np.full(len(others), i))
            cols.append(others)
    return _csr(np.concatenate(rows) if rows else np.zeros(0, np.int64),
                np.concatenate(cols) if cols else np.zeros(0, np.int64), num_items)


def _csr(rows: np.ndarray, cols: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    return np.cumsum(indptr), cols[order].astype(np.int64)


def build_path_sampler(graph: KnowledgeGraph, column_of: np.ndarray,
                       only: list[str] | None = None) -> PathSampler:
    """Groups: same brand, same leaf category, and product relations (both directions, catalog items only);
    `only` keeps the named groups (None = all)."""
    n = int(column_of.max(initial=-1)) + 1
    groups = []
    for name, rel in (("brand", HAS_BRAND), ("category", IN_CATEGORY)):
        e = graph.edges_of(rel)
        c = column_of[e["src"].to_numpy(np.int64)]
        keep = c >= 0
        if keep.any():
            indptr, idx = _two_hop(c[keep], e["dst"].to_numpy(np.int64)[keep], n)
            if len(idx):
                groups.append((name, indptr, idx))
    rows, cols = [], []
    for _, a, b in product_relation_pairs(graph, column_of):
        rows += [a, b]
        cols += [b, a]
    if rows and sum(len(r) for r in rows):
        indptr, idx = _csr(np.concatenate(rows), np.concatenate(cols), n)
        groups.append(("related", indptr, idx))
    if only is not None:
        groups = [g for g in groups if g[0] in only]
    return PathSampler(groups)
