"""Uniform negative sampling, validation-based early stopping and the epoch loop that keeps the best epoch,
shared by the BPR-trained baselines."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from ...data import TrainData
from ...metrics import ndcg_at_k, rank_top_k

__all__ = ["sample_triples", "EarlyStopping", "early_stopping", "run_epochs", "valid_ndcg"]


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
    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    top = rank_top_k(score_fn, users, 10, train)
    return ndcg_at_k(top, valid[users], 10)


def early_stopping(score_fn: Callable[[np.ndarray], np.ndarray], train: TrainData, eval_every: int = 5,
                   patience: int = 3) -> EarlyStopping | None:
    """Early stopping on `train.valid` (validation NDCG@10 of `score_fn` every `eval_every` epochs, `patience`
    checks without a gain), or None when it is not set."""
    if train.valid is None:
        return None
    return EarlyStopping(lambda: valid_ndcg(score_fn, train.user_items, train.valid, seed=train.seed),
                         eval_every=eval_every, patience=patience)


def run_epochs(epochs: int, run_epoch: Callable[[int], None], stop: EarlyStopping | None,
               snapshot: Callable[[], Any]) -> Any:
    """Call `run_epoch(epoch)` for epochs 1..`epochs`; with `stop`, check it after each epoch, keep
    `snapshot()` of the best epoch's weights and end early. Returns that snapshot (None without `stop`)."""
    best = None
    for epoch in range(1, epochs + 1):
        run_epoch(epoch)
        if stop is None:
            continue
        done = stop.step(epoch)
        if stop.best_epoch == epoch:
            best = snapshot()
        if done:
            break
    return best
