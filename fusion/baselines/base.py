"""The one interface every recommender evaluated here implements: `fit` on a training graph, `score` users.

Item space: column j of every score matrix is the recommendable product `TrainData.items[j]`
(products with `in_catalog` True, in product-index order). Products outside the catalog never get a
column, so they can never be recommended; training items are masked by the evaluation, not the model.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kg.graph import KnowledgeGraph
from kg.schema import INTERACTED, PRODUCT, USER

__all__ = ["TrainData", "Recommender", "interaction_matrix", "dense_rows"]


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
    """

    graph: KnowledgeGraph
    user_items: sp.csr_matrix
    items: np.ndarray
    valid: sp.csr_matrix | None = None
    seed: int = 0
    cache_dir: str | None = None
    _column_of: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_graph(cls, graph: KnowledgeGraph, valid: pd.DataFrame | None = None, seed: int = 0,
                   cache_dir: str | None = None) -> "TrainData":
        """Build from a training graph (see `KnowledgeGraph.with_interactions`) and optional validation rows."""
        items = np.flatnonzero(graph.catalog_mask).astype(np.int64)
        column_of = np.full(graph.num_nodes(PRODUCT), -1, dtype=np.int64)
        column_of[items] = np.arange(len(items))
        n_users = graph.num_nodes(USER)
        ui = interaction_matrix(graph.edges_of(INTERACTED), n_users, column_of)
        ui.resize((n_users, len(items)))
        v = None
        if valid is not None:
            v = interaction_matrix(valid, n_users, column_of)
            v.resize((n_users, len(items)))
        return cls(graph=graph, user_items=ui, items=items, valid=v, seed=seed, cache_dir=cache_dir,
                   _column_of=column_of)

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
            c = np.full(self.graph.num_nodes(PRODUCT), -1, dtype=np.int64)
            c[self.items] = np.arange(len(self.items))
            self._column_of = c
        return self._column_of


class Recommender(ABC):
    """Base class: `fit(train)` then `score(user_idx)` -> float32 [len(user_idx), num_items].

    Subclasses keep their hyper-parameters as typed constructor arguments (documented defaults are the
    values tuned on the validation split) and expose them through `params()`.
    """

    name: str = "recommender"

    @abstractmethod
    def fit(self, train: TrainData) -> "Recommender":
        """Learn from the training data only; returns self."""

    @abstractmethod
    def score(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores of every item column for the given users (higher = better), training items not masked."""

    def params(self) -> dict[str, Any]:
        """Hyper-parameters (constructor arguments) as a dict."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and not k.endswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def dense_rows(m: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Dense float32 copy of some rows of a CSR matrix."""
    return np.asarray(m[rows].toarray(), dtype=np.float32)
