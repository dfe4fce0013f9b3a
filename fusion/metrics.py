"""Top-k ranking metrics as plain functions, over full ranking with each user's training items excluded.

Conventions (per user u with relevant test items :math:`R_u` and ranked list :math:`L_u` of length k,
training items removed before ranking):

.. math::
    \\mathrm{Recall@k} = \\frac{|L_u \\cap R_u|}{|R_u|}, \\quad
    \\mathrm{NDCG@k} = \\frac{\\sum_{r=1}^{k} [L_{u,r} \\in R_u] / \\log_2(r+1)}
                             {\\sum_{r=1}^{\\min(k, |R_u|)} 1 / \\log_2(r+1)}, \\quad
    \\mathrm{HR@k} = [L_u \\cap R_u \\ne \\emptyset], \\quad
    \\mathrm{MRR@k} = 1 / \\mathrm{rank\\ of\\ the\\ first\\ hit}\\ (0\\ if\\ none)

each averaged over users with at least one test item. Coverage@k is the share of recommendable items
that appear in at least one user's top-k.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

__all__ = [
    "top_k", "rank_top_k", "hits_matrix", "recall_at_k", "ndcg_at_k", "hit_rate_at_k", "mrr_at_k",
    "catalog_coverage", "evaluate_scores", "evaluate_model", "METRIC_NAMES",
]

METRIC_NAMES = ("recall", "ndcg", "hr", "mrr")


def top_k(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Indices of the k best columns of each row of `scores` (best first); `exclude` entries get -inf.

    `exclude` must have one row per row of `scores` (e.g. the users' training items). Ties break by
    column index, so results are deterministic.
    """
    s = np.array(scores, dtype=np.float32, copy=True)
    if exclude is not None:
        if exclude.shape != s.shape:
            raise ValueError(f"exclude has shape {exclude.shape}, expected the scores' shape {s.shape}")
        ex = exclude.tocoo()
        s[ex.row, ex.col] = -np.inf
    s[np.isnan(s)] = -np.inf
    k = min(k, s.shape[1])
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    ps = np.take_along_axis(s, part, axis=1)
    # stable order: score descending, then column ascending
    order = np.lexsort((part, -ps), axis=1)
    return np.take_along_axis(part, order, axis=1)


def rank_top_k(score_fn: Callable[[np.ndarray], np.ndarray], users: np.ndarray, k: int,
               exclude: sp.csr_matrix | None = None, batch_size: int = 1024) -> np.ndarray:
    """Top-k item columns [len(users), k] of `score_fn(user_batch)`, scored in batches to bound memory.

    `exclude` is indexed by user (row u = items user u may not be recommended).
    """
    out = []
    for a in range(0, len(users), batch_size):
        b = users[a:a + batch_size]
        out.append(top_k(score_fn(b), k, None if exclude is None else exclude[b]))
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def hits_matrix(top: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """bool [n, k]: whether item top[r, j] is in row r of `relevant` (CSR aligned with `top`'s rows)."""
    rel = relevant.tocsr()
    hits = np.zeros(top.shape, dtype=bool)
    for r in range(top.shape[0]):
        row = rel.indices[rel.indptr[r]:rel.indptr[r + 1]]
        if len(row):
            hits[r] = np.isin(top[r], row)
    return hits


def _num_relevant(relevant: sp.csr_matrix) -> np.ndarray:
    return np.diff(relevant.tocsr().indptr)


def _check(top: np.ndarray, relevant: sp.csr_matrix, k: int) -> np.ndarray:
    if top.shape[0] != relevant.shape[0]:
        raise ValueError(f"top has {top.shape[0]} rows but relevant has {relevant.shape[0]}")
    if top.shape[1] < k:
        raise ValueError(f"top holds {top.shape[1]} items per user, fewer than k={k}")
    n = _num_relevant(relevant)
    return n > 0


def recall_at_k(top: np.ndarray, relevant: sp.csr_matrix, k: int = 10) -> float:
    """Mean over users with test items of |top-k ∩ relevant| / |relevant|."""
    ok = _check(top, relevant, k)
    if not ok.any():
        return 0.0
    h = hits_matrix(top[:, :k], relevant).sum(axis=1)
    return float(np.mean(h[ok] / _num_relevant(relevant)[ok]))


def ndcg_at_k(top: np.ndarray, relevant: sp.csr_matrix, k: int = 10) -> float:
    """Mean binary NDCG@k (ideal DCG over min(k, |relevant|) hits)."""
    ok = _check(top, relevant, k)
    if not ok.any():
        return 0.0
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits_matrix(top[:, :k], relevant) * disc).sum(axis=1)
    ideal = np.cumsum(disc)[np.minimum(_num_relevant(relevant), k) - 1]
    return float(np.mean(dcg[ok] / ideal[ok]))


def hit_rate_at_k(top: np.ndarray, relevant: sp.csr_matrix, k: int = 10) -> float:
    """Share of users with at least one relevant item in their top-k."""
    ok = _check(top, relevant, k)
    if not ok.any():
        return 0.0
    return float(np.mean(hits_matrix(top[:, :k], relevant).any(axis=1)[ok]))


def mrr_at_k(top: np.ndarray, relevant: sp.csr_matrix, k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant item within the top-k (0 when none)."""
    ok = _check(top, relevant, k)
    if not ok.any():
        return 0.0
    h = hits_matrix(top[:, :k], relevant)
    first = np.where(h.any(axis=1), h.argmax(axis=1) + 1, np.inf)
    return float(np.mean((1.0 / first)[ok]))


def catalog_coverage(top: np.ndarray, num_items: int, k: int = 10) -> float:
    """Share of the `num_items` recommendable items that appear in some user's top-k."""
    if num_items <= 0:
        raise ValueError(f"num_items must be positive, got {num_items}")
    return float(len(np.unique(top[:, :k])) / num_items)


def _all_metrics(top: np.ndarray, relevant: sp.csr_matrix, ks: Sequence[int], num_items: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(top, relevant, k)
        out[f"ndcg@{k}"] = ndcg_at_k(top, relevant, k)
        out[f"hr@{k}"] = hit_rate_at_k(top, relevant, k)
        out[f"mrr@{k}"] = mrr_at_k(top, relevant, k)
        out[f"coverage@{k}"] = catalog_coverage(top, num_items, k)
    return out


def evaluate_scores(scores: np.ndarray, test: sp.csr_matrix, train: sp.csr_matrix | None = None,
                    ks: Sequence[int] = (10, 20)) -> dict[str, float]:
    """All metrics from a full score matrix [num_users, num_items]: `train` items masked, rows of `test`
    with no items ignored."""
    users = np.flatnonzero(_num_relevant(test) > 0)
    top = top_k(scores[users], max(ks), None if train is None else train.tocsr()[users])
    return _all_metrics(top, test.tocsr()[users], ks, scores.shape[1])


def evaluate_model(model, test: sp.csr_matrix, train: sp.csr_matrix | None = None,
                   ks: Sequence[int] = (10, 20), cold_items: np.ndarray | None = None,
                   batch_size: int = 1024) -> tuple[dict[str, float], dict[str, float | None]]:
    """Metrics of `model.score` on the users with test items (spotlight style: `train` items excluded).

    Returns (metrics, cold_start) where cold_start holds recall@k over the test items in `cold_items`
    (bool per item column: no training interaction), averaged over users that have such items, plus
    `users`, the number of those users (recall is None when there are none).
    """
    test = test.tocsr()
    users = np.flatnonzero(_num_relevant(test) > 0)
    top = rank_top_k(model.score, users, max(ks), None if train is None else train.tocsr(), batch_size)
    rel = test[users]
    metrics = _all_metrics(top, rel, ks, test.shape[1])
    cold: dict[str, float] = {}
    if cold_items is not None:
        cold_rel = rel.multiply(cold_items[None, :].astype(np.float32)).tocsr()
        cold_rel.eliminate_zeros()
        has = _num_relevant(cold_rel) > 0
        cold["users"] = int(has.sum())
        for k in ks:
            cold[f"recall@{k}"] = recall_at_k(top[has], cold_rel[has], k) if has.any() else None
    return metrics, cold


def evaluate_cold(model, cold: sp.csr_matrix, cold_cols: np.ndarray, ks: Sequence[int] = (10, 20),
                  batch_size: int = 1024) -> dict[str, float | int | None]:
    """The cold-start slice: for each user with interactions in `cold` ([users, items], products no model was
    fitted on), rank the cold products `cold_cols` (item columns) alone and score recall@k and NDCG@k, plus
    `recall@{max k}_all`: recall of the same items when they compete with the whole catalog (seen items
    excluded is moot: a cold product is never among a user's fitted items, but warm products can outrank it).

    Returns users, items and the metrics (None when no user has a cold interaction).
    """
    cold = cold.tocsr()
    cold_cols = np.asarray(cold_cols, dtype=np.int64)
    users = np.flatnonzero(_num_relevant(cold) > 0)
    out: dict[str, float | int | None] = {"users": int(len(users)), "items": int(len(cold_cols))}
    if not len(users) or not len(cold_cols):
        for k in ks:
            out[f"recall@{k}"] = out[f"ndcg@{k}"] = None
        return out
    kmax = max(ks)
    tops, tops_all = [], []
    for s in range(0, len(users), batch_size):
        sc = np.asarray(model.score(users[s:s + batch_size]), dtype=np.float32)
        tops.append(top_k(sc[:, cold_cols], min(kmax, len(cold_cols))))
        tops_all.append(top_k(sc, kmax))
    top = cold_cols[np.concatenate(tops)]
    rel = cold[users]
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(top, rel, k)
        out[f"ndcg@{k}"] = ndcg_at_k(top, rel, k)
    out[f"recall@{kmax}_all"] = recall_at_k(np.concatenate(tops_all), rel, kmax)
    return out

