"""Text search over the catalog: a blend of the model's query head and the raw encoder cosine, optionally
personalised, as one inner product so that any top-k index answers it.

    score_j = alpha     * (q . F^_j) / s_q          q   = FusionModel.query_vectors(x)  (unit length)
            + (1-alpha) * (x . T_j)  / s_t          x   = encoder(query), T = product text embeddings (unit)
            + beta      * (u . F_j)  / s_u          u   = the user's vector (search(..., user_id=...))

F^ are the unit-length fused product vectors, F the fused vectors. The scales s make the three terms
comparable: the mean over 256 catalog products, used as pseudo-queries (their text embedding), of the
standard deviation over the catalog of q.F^ and x.T, and the mean over 256 users of the standard deviation
of u.F. The index holds [F^ | T | F] and the query is [alpha q/s_q | (1-alpha) x/s_t | beta u/s_u].

Defaults measured on Scientific with `scripts/eval_search.py` (all-MiniLM-L6-v2, work/scientific/model):

| alpha | own title MRR@10 | own title R@10 | 3 words R@10 | hand P@10 | category P@10 |
|---:|---:|---:|---:|---:|---:|
| 0 (raw cosine only) | 0.951 | 0.993 | 0.890 | 0.620 | 0.588 |
| **0.1** | 0.949 | 0.993 | **0.895** | 0.620 | 0.594 |
| 0.2 | 0.939 | 0.990 | 0.895 | 0.625 | 0.597 |
| 0.5 | 0.892 | 0.988 | 0.843 | 0.585 | 0.565 |
| 1 (query head only) | 0.475 | 0.777 | 0.330 | 0.335 | 0.323 |

400 sampled products queried by their full title and by its first three words (is that product in the top
10, and at which rank); 20 hand-written queries such as "stainless steel staples" (share of the top 10 whose
title matches the query's pattern); 150 category names (share of the top 10 in that category). The raw
cosine carries retrieval; the query head alone is weak (it was trained to map a product's whole text, or a
history's, onto fused vectors, not short queries), and a little of it (alpha 0.1) helps short queries and
category names at almost no cost on exact titles. Scoring the head against F instead of F^ was worse at
every alpha (title MRR 0.935 at 0.1).

Personalisation (alpha 0.1), with the model bound to the graph without each user's held-out last item: 1,500
users query the leaf-category name of that item; MRR@10 / HR@10 of the item, and P@10 = share of the results
in the queried category, which personalisation must not lower:

| beta | MRR@10 | HR@10 | P@10 | MRR@10, exclude_seen | HR@10, exclude_seen | P@10, exclude_seen |
|---:|---:|---:|---:|---:|---:|---:|
| 0 | 0.179 | 0.413 | 0.664 | 0.184 | 0.414 | 0.659 |
| 0.1 | 0.186 | 0.436 | 0.668 | 0.199 | 0.441 | 0.663 |
| **0.25** | 0.202 | 0.476 | 0.667 | 0.222 | 0.481 | 0.664 |
| 0.5 | 0.212 | 0.491 | 0.638 | 0.243 | 0.503 | 0.642 |
| 1 | 0.178 | 0.448 | 0.520 | 0.234 | 0.480 | 0.548 |

beta 0.25 is the largest weight that keeps the results as relevant as the plain search (beta 0.5 ranks the
held-out item higher but lets the user's taste push off-topic products into the top 10).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["SearchBlend", "SearchScales", "calibrate", "search_matrix", "search_query"]


@dataclass(frozen=True)
class SearchBlend:
    """Weights of the search score (module docstring): query head `alpha`, raw cosine `1 - alpha`, user `beta`."""

    alpha: float = 0.1
    beta: float = 0.25

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"SearchBlend.alpha must be in [0, 1], got {self.alpha!r}")
        if self.beta < 0:
            raise ValueError(f"SearchBlend.beta must be >= 0, got {self.beta!r}")


@dataclass(frozen=True)
class SearchScales:
    """Typical spread (std over the catalog) of each term: query head, raw cosine, user score."""

    query: float
    text: float
    user: float


@torch.no_grad()
def calibrate(model, text: np.ndarray, normed: np.ndarray, vectors: np.ndarray, users: np.ndarray,
              sample: int = 256, seed: int = 0) -> SearchScales:
    """Scales from `sample` catalog products as pseudo-queries and `sample` users (fixed seed)."""
    rng = np.random.default_rng(seed)
    n = len(text)
    p = rng.choice(n, min(sample, n), replace=False)
    q = model.query_vectors(torch.from_numpy(text[p])).numpy()
    s_q = float((q @ normed.T).std(axis=1).mean())
    s_t = float((text[p] @ text.T).std(axis=1).mean())
    s_u = 1.0
    if len(users):
        u = users[rng.choice(len(users), min(sample, len(users)), replace=False)]
        s_u = float((u @ vectors.T).std(axis=1).mean())
    fix = lambda s: s if np.isfinite(s) and s > 1e-8 else 1.0  # noqa: E731  (a one-product catalog)
    return SearchScales(fix(s_q), fix(s_t), fix(s_u))


def search_matrix(normed: np.ndarray, text: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """float32 [n, d + text_dim + d]: what the search index holds, [F^ | T | F]."""
    return np.ascontiguousarray(np.concatenate([normed, text, vectors], axis=1), dtype=np.float32)


def search_query(q: np.ndarray, x: np.ndarray, user: np.ndarray | None, blend: SearchBlend,
                 scales: SearchScales) -> np.ndarray:
    """float32 [d + text_dim + d]: the query row for `search_matrix` (no user: the last block is zero)."""
    u = np.zeros_like(q) if user is None else blend.beta * user / scales.user
    return np.concatenate([blend.alpha * q / scales.query, (1.0 - blend.alpha) * x / scales.text, u]).astype(np.float32)
