"""The cold products' text mix: a cold product (no interaction in the bound graph, or added after training)
ranks by a mix of the network's score and its text-only score, so that the cold path never loses what the
product's text alone knows.

    s'_ui = (1 - w) s_ui + w m_u + w a p_u . (t_i - t_bar)          for cold i (warm products keep s_ui)

s_ui = <u, F_i> the network's score, m_u = <u, F_bar> the user's mean score over the cold products (F_bar their
mean fused vector), p_u the mean unit text vector of the user's history and t_i the product's (the
`text_only` baseline's profile and item: p_u . t_i is its score), t_bar the cold products' mean unit text
vector, and a = std of the network's cold-score deviations / std of the text ones, so that both sides vary
alike. w comes from `ColdMixConfig.weights` by NDCG@10 on the validation cold products (products the tuning
graph never saw, `fusion.evaluation.splits`): w = 0 is the network alone and w = 1 the text-only order among
cold products, so the choice is never below either on validation. Each user's mean score over the cold
products stays m_u, so how cold products compete with warm ones hardly moves. The cold products' graph term
(`fusion.cold_graph`) is chosen here too: each candidate v adds v c g_ui to every mix.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from .metrics import ndcg_at_k, top_k
from .vectors import history_means

__all__ = ["ColdTextMix", "MIX_FILE", "cold_columns", "score_spread", "choose_cold_mix", "pick_cold_row",
           "mixed_rows"]

MIX_FILE = "cold_mix.npz"


@dataclass(frozen=True)
class ColdTextMix:
    """A fitted mix (w, a, F_bar, t_bar); `valid_ndcg` is what it reached on the validation cold products."""

    weight: float
    scale: float
    fused_mean: np.ndarray  # float32 [d]
    text_mean: np.ndarray  # float32 [text_dim]
    valid_ndcg: float | None = None

    def mix(self, scores: np.ndarray, user_mean: np.ndarray, profiles: np.ndarray, text: np.ndarray) -> np.ndarray:
        """Mixed scores [B, c] of c cold products from the network's scores [B, c], each user's mean cold score
        m_u [B], history text profiles p_u [B, text_dim] and the products' unit text vectors [c, text_dim]."""
        w = np.float32(self.weight)
        tau = profiles.astype(np.float32) @ (text - self.text_mean).T.astype(np.float32)
        return (1 - w) * scores + w * user_mean[:, None] + (w * np.float32(self.scale)) * tau

    def cold_vectors(self, fused: np.ndarray, text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mix as vectors, for indexes that rank by one dot product: cold products' [c, d] fused vectors
        and [c, text_dim] text block, so that <[u; p_u], [F'_i; T'_i]> = s'_ui with m_u = <u, F_bar>."""
        w = np.float32(self.weight)
        return ((1 - w) * fused + w * self.fused_mean).astype(np.float32), \
            ((w * np.float32(self.scale)) * (text - self.text_mean)).astype(np.float32)

    def save(self, directory: str | Path) -> None:
        np.savez(Path(directory) / MIX_FILE, weight=self.weight, scale=self.scale, fused_mean=self.fused_mean,
                 text_mean=self.text_mean, valid_ndcg=np.nan if self.valid_ndcg is None else self.valid_ndcg)

    @classmethod
    def load(cls, directory: str | Path) -> "ColdTextMix | None":
        path = Path(directory) / MIX_FILE
        if not path.exists():
            return None
        z = np.load(path)
        v = float(z["valid_ndcg"])
        return cls(float(z["weight"]), float(z["scale"]), z["fused_mean"].astype(np.float32),
                   z["text_mean"].astype(np.float32), None if np.isnan(v) else v)


def mixed_rows(mix: ColdTextMix, fused: np.ndarray, unit_text: np.ndarray, cold: np.ndarray) -> np.ndarray:
    """float32 [n, d + text_dim] rows that rank by one dot product with [u | p_u]: [F_i | 0] for warm products,
    `ColdTextMix.cold_vectors` for the cold ones (bool mask `cold` [n])."""
    n, d = fused.shape
    out = np.zeros((n, d + unit_text.shape[1]), dtype=np.float32)
    out[:, :d] = fused
    if cold.any():
        f2, t2 = mix.cold_vectors(fused[cold], unit_text[cold])
        out[cold, :d], out[cold, d:] = f2, t2
    return out


def cold_columns(user_items: sp.csr_matrix) -> np.ndarray:
    """int64 columns of the products nobody interacted with in `user_items` [num_users, num_items]."""
    return np.flatnonzero(np.asarray(user_items.getnnz(axis=0)).ravel() == 0).astype(np.int64)


def score_spread(scores: np.ndarray, tau: np.ndarray) -> float:
    """a: std of each user's network-score deviations from their mean over the cold products [B, c] over the
    std of the text-score deviations [B, c] (1.0 when the text side does not vary)."""
    ds = scores - scores.mean(axis=1, keepdims=True)
    dt = tau - tau.mean(axis=1, keepdims=True)
    st = float(dt.std())
    return float(ds.std()) / st if st > 1e-12 else 1.0


def choose_cold_mix(scores: np.ndarray, user_items: sp.csr_matrix, users: np.ndarray, valid_cold: sp.csr_matrix,
                    cols: np.ndarray, text: np.ndarray, text_mean: np.ndarray, weights: Sequence[float],
                    log: Callable[[str], None] | None = None, graph: np.ndarray | None = None,
                    graph_weights: Sequence[float] = (0.0,)) -> tuple[float, float, list[dict]]:
    """(w, a, rows) by validation NDCG@10 over the validation cold products `cols` (ranked among themselves,
    as the test's cold slice is); each row also holds its `graph_weight` v (the best row's is the choice).

    Args:
        scores: float32 [len(users), len(cols)] the network's scores of `users` for `cols`.
        user_items: the tuning interactions [num_users, num_items] (the users' histories).
        valid_cold: the validation cold rows [num_users, num_items].
        text: unit text vectors [num_items, text_dim]; text_mean: t_bar over the tuning graph's cold products.
        weights: candidates; ties go to the first (list 0 first: the network alone unless text helps).
        graph: optional float32 [len(users), len(cols)] cold graph term (`fusion.cold_graph`) of these users and
            products; each v of `graph_weights` adds v * c * graph to every mix, c = `score_spread(scores,
            graph)` (list 0 first: without the term unless it helps).
    """
    profiles = history_means(user_items[users], text)
    tau = profiles @ (text[cols] - text_mean).T
    a = score_spread(scores, tau)
    rel = valid_cold[users]
    k = min(10, len(cols))
    rows = []
    vs = [0.0] if graph is None else [float(v) for v in graph_weights]
    c = 0.0 if graph is None else score_spread(scores, graph)
    for v in vs:
        for w in weights:
            mix = ColdTextMix(float(w), a, np.zeros(0, np.float32), text_mean.astype(np.float32))
            s = mix.mix(scores, scores.mean(axis=1), profiles, text[cols])
            if v:
                s = s + np.float32(v * c) * graph
            top = cols[top_k(s, k)]
            rows.append({"weight": float(w), "graph_weight": v, "valid_cold_ndcg@10": ndcg_at_k(top, rel, k)})
            if log is not None:
                log(f"  cold mix w={w:g}" + (f" graph v={v:g}" if graph is not None else "")
                    + f": validation cold NDCG@10 {rows[-1]['valid_cold_ndcg@10']:.4f}")
    best = max(range(len(rows)), key=lambda i: (rows[i]["valid_cold_ndcg@10"], -i))
    return rows[best]["weight"], a, rows


def pick_cold_row(rows: list[dict], warm: dict[float, float] | None = None, tolerance: float = 0.005) -> int:
    """Index of the chosen row of `choose_cold_mix`: the best validation cold NDCG@10 (ties to the first) among
    the rows whose graph weight v keeps the warm validation NDCG@10 `warm[v]` (whole catalog, see
    `FusionRecommender._warm_cost`) within `tolerance` of v = 0's. Each row gets `valid_ndcg@10` and
    `warm_ok`; without `warm` every row is allowed. v = 0 always passes, so a row is chosen wherever `rows`
    hold one; -1 when none passes (rows of v > 0 only)."""
    base = None if not warm else warm.get(0.0)
    for r in rows:
        r["valid_ndcg@10"] = None if not warm else warm.get(r["graph_weight"])
        r["warm_ok"] = (base is None or r["valid_ndcg@10"] is None or not r["graph_weight"]
                        or r["valid_ndcg@10"] >= (1 - tolerance) * base)
    ok = [i for i, r in enumerate(rows) if r["warm_ok"]]
    return max(ok, key=lambda i: (rows[i]["valid_cold_ndcg@10"], -i)) if ok else -1
