"""Uniform negative sampling and validation-based early stopping, shared by the BPR-trained baselines."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

__all__ = ["sample_triples", "EarlyStopping"]


def sample_triples(user_items: sp.csr_matrix, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch of (user, positive, negative) triples: every training pair once, in random order, with a
    uniformly drawn item the user has not interacted with (resampled up to 5 times, then kept)."""
    coo = user_items.tocoo()
    order = rng.permutation(len(coo.row))
    u, p = coo.row[order].astype(np.int64), coo.col[order].astype(np.int64)
    n_items = user_items.shape[1]
    n = rng.integers(0, n_items, size=len(u))
    known = np.sort(coo.row.astype(np.int64) * n_items + coo.col)  # (user, item) pairs as sorted keys
    for _ in range(5):
        key = u * n_items + n
        pos = np.minimum(np.searchsorted(known, key), len(known) - 1)
        bad = known[pos] == key
        if not bad.any():
            break
        n[bad] = rng.integers(0, user_items.shape[1], size=int(bad.sum()))
    return u, p, n


class EarlyStopping:
    """Track validation NDCG@10 every `eval_every` epochs; stop after `patience` checks without gain.

    `evaluate()` returns the current validation NDCG@10; `best_epoch` and `best` hold the best seen.
    """

    def __init__(self, evaluate: Callable[[], float], eval_every: int = 5, patience: int = 3) -> None:
        self.evaluate, self.eval_every, self.patience = evaluate, eval_every, patience
        self.best, self.best_epoch, self._bad = -1.0, 0, 0
        self.history: list[tuple[int, float]] = []

    def step(self, epoch: int) -> bool:
        """Call after epoch `epoch` (1-based); returns True when training should stop."""
        if epoch % self.eval_every:
            return False
        v = self.evaluate()
        self.history.append((epoch, v))
        if v > self.best:
            self.best, self.best_epoch, self._bad = v, epoch, 0
            return False
        self._bad += 1
        return self._bad >= self.patience


def valid_ndcg(score_fn: Callable[[np.ndarray], np.ndarray], train: sp.csr_matrix, valid: sp.csr_matrix,
               max_users: int = 3000, seed: int = 0) -> float:
    """NDCG@10 on (a fixed sample of at most `max_users` of) the validation users, training items excluded."""
    from fusion.evaluation.metrics import ndcg_at_k, rank_top_k

    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    top = rank_top_k(score_fn, users, 10, train)
    return ndcg_at_k(top, valid[users], 10)
