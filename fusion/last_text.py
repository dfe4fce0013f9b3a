"""The latest product's text: a dense "reads like what you just chose" term added to the fused score.

    s(u, i) += gamma * <t_last(u), t_i>        t: unit-length text vectors [n_items, text_dim] (`text/`)

for every product i with interactions (cold products, which nobody has bought yet, rank by the cold text mix
of `fusion.cold_mix`, itself made of their text; on amazon-scientific the term on them too lowered the cold
slice, N@10 0.212 -> 0.198).

The network fuses text into every product vector and its tower reads the order of the history, but through
d-dimensional vectors trained on the interactions; the raw text similarity to the user's most recent product
is a sharper next-item signal on a leave-last-out catalog (amazon-scientific validation NDCG@10 0.1063 ->
0.1098 on top of the item-item term and the next-item memory). It is a post-training term like the item-item
head: its weight (0 competes) is chosen on validation after them, and gamma = weight * std(network scores) /
std(term), so that the weight compares across models. The query API serves it exactly as one more block of the
ranking dot product: the user row gets gamma * t_last, every product row with interactions its t_i (cold rows
zeros; `fusion.serving.snapshot.Snapshot.rec_users`).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .item_item import choose_term_weight

__all__ = ["LastTextTerm", "last_text_scores", "last_text_block", "choose_last_text"]


def last_text_block(unit_text: np.ndarray, last: np.ndarray) -> np.ndarray:
    """float32 [B, text_dim]: the unit text vector of each user's most recent product column `last` [B]
    (zeros for -1, or for columns beyond `unit_text`, products the term does not know)."""
    last = np.asarray(last, dtype=np.int64)
    ok = (last >= 0) & (last < len(unit_text))
    out = np.zeros((len(last), unit_text.shape[1]), dtype=np.float32)
    out[ok] = unit_text[last[ok]]
    return out


def last_text_scores(unit_text: np.ndarray, last: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
    """float32 [B, n_items] (or [B, len(cols)]): <t_last(u), t_i> for every product i (or the columns `cols`)."""
    t = unit_text if cols is None else unit_text[cols]
    return last_text_block(unit_text, last) @ t.T


@dataclass
class LastTextTerm:
    """The fitted term `gamma * <t_last, t_i>`.

    Attributes:
        weight: the relative weight chosen on validation (0: the term is off).
        gamma: its scale in the score (weight * network score spread / term spread on the fitted rows).
        valid_ndcg: validation NDCG@10 with the term (None when it was not chosen on validation).
    """

    weight: float
    gamma: float
    valid_ndcg: float | None = None

    def scores(self, unit_text: np.ndarray, last: np.ndarray) -> np.ndarray:
        """float32 [B, n_items] = gamma * <t_last, t_i>."""
        return np.float32(self.gamma) * last_text_scores(unit_text, last)

    def user_block(self, unit_text: np.ndarray, last: np.ndarray) -> np.ndarray:
        """float32 [B, text_dim] = gamma * t_last: the user rows' block that a product row's t_i meets."""
        return np.float32(self.gamma) * last_text_block(unit_text, last)

    def to_dict(self) -> dict:
        return {"weight": self.weight, "gamma": self.gamma, "valid_ndcg@10": self.valid_ndcg}

    @classmethod
    def from_dict(cls, d: dict | None) -> "LastTextTerm | None":
        """The term saved in meta.json's "last_text", or None (none saved, or weight 0)."""
        if not d or not float(d.get("weight") or 0.0) or not float(d.get("gamma") or 0.0):
            return None
        return cls(float(d["weight"]), float(d["gamma"]), d.get("valid_ndcg@10"))


def choose_last_text(scores: np.ndarray, term: np.ndarray, scale_of: np.ndarray, seen: sp.csr_matrix,
                     rel: sp.csr_matrix, weights: Sequence[float], log: Callable[[str], None] | None = None
                     ) -> tuple[float, float, list[dict]]:
    """The term's weight by validation NDCG@10 of scores + weight * scale * term (0 always competes).

    Args:
        scores: float32 [B, n_items] validation scores with the item-item term and the next-item memory.
        term: float32 [B, n_items] <t_last, t_i> of each validation user (`last_text_scores`).
        scale_of: the network's own scores [B, n_items]: scale = std(them) / std(term).
        seen, rel: the users' training rows (masked) and validation items.
    Returns (weight, scale, rows of {"text_weight", "valid_ndcg@10"}).
    """
    return choose_term_weight(scores, term, scale_of, seen, rel, weights, "text_weight", "latest-product text", log)
