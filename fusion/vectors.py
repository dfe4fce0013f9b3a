"""Row vectors as the models and the query API use them: unit length, and a user as the mean of their items."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["unit_rows", "history_means"]


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row of x [n, d] scaled to unit L2 length (all-zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def history_means(user_items: sp.csr_matrix, item_vectors: np.ndarray) -> np.ndarray:
    """float32 [num_users, d]: each user's mean of the item vectors [num_items, d] of their items in the binary
    `user_items` [num_users, num_items] (zeros for a user without items)."""
    n = np.maximum(np.asarray(user_items.sum(axis=1)).ravel(), 1.0)
    return np.asarray((sp.diags(1.0 / n) @ user_items) @ item_vectors, dtype=np.float32)
