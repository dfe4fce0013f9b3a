"""Item-based k-nearest neighbours with shrunk cosine similarity (Sarwar et al., WWW 2001).

.. math::
    \\mathrm{sim}(i, j) = \\frac{|U_i \\cap U_j|}{\\sqrt{|U_i|}\\sqrt{|U_j|} + h}, \\qquad
    s_{ui} = \\sum_{j \\in I_u} \\mathrm{sim}(j, i)\\,[j \\in \\mathrm{top}_k(i)]

where :math:`U_i` are the training users of item :math:`i`, :math:`h` the shrink term and only each
item's :math:`k` most similar neighbours are kept.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...data import TrainData
from ...ranking_model import RankingModel

__all__ = ["ItemKNN"]


class ItemKNN(RankingModel):
    """Cosine ItemKNN.

    Args:
        num_neighbors: neighbours kept per item (default 100, tuned on validation).
        shrink: shrink term :math:`h` in the cosine denominator (default 10).
    """

    name = "itemknn"

    def __init__(self, num_neighbors: int = 100, shrink: float = 10.0) -> None:
        if num_neighbors < 1:
            raise ValueError(f"num_neighbors must be >= 1, got {num_neighbors}")
        self.num_neighbors = num_neighbors
        self.shrink = shrink

    def fit(self, train: TrainData) -> "ItemKNN":
        x = train.user_items.astype(np.float32).tocsc()
        co = (x.T @ x).tocsr()  # [items, items] co-occurrence counts
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        co.setdiag(0)
        co.eliminate_zeros()
        co = co.tocoo()
        vals = co.data / (norms[co.row] * norms[co.col] + self.shrink)
        sim = sp.csr_matrix((vals.astype(np.float32), (co.row, co.col)), shape=co.shape)
        self.sim_ = _top_k_per_row(sim, self.num_neighbors)
        self.user_items_ = train.user_items
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        # sim_ rows are neighbours j of item i: s_u = x_u @ sim_^T keeps top-k(i) per target column
        return np.asarray((self.user_items_[user_idx] @ self.sim_.T).toarray(), dtype=np.float32)


def _top_k_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row."""
    indptr, indices, data = m.indptr, m.indices, m.data
    rows, cols, vals = [], [], []
    for r in range(m.shape[0]):
        a, b = indptr[r], indptr[r + 1]
        if b - a > k:
            sel = a + np.argpartition(-data[a:b], k - 1)[:k]
        else:
            sel = np.arange(a, b)
        rows.append(np.full(len(sel), r))
        cols.append(indices[sel])
        vals.append(data[sel])
    if not rows:
        return sp.csr_matrix(m.shape, dtype=np.float32)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=m.shape)
