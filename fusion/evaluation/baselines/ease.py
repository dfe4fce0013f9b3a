"""EASE: embarrassingly shallow autoencoder (Steck, WWW 2019).

Closed form of :math:`\\min_B \\|X - XB\\|_F^2 + \\lambda\\|B\\|_F^2` s.t. :math:`\\mathrm{diag}(B) = 0`:

.. math::
    P = (X^\\top X + \\lambda I)^{-1}, \\qquad B_{ij} = -P_{ij} / P_{jj}\\ (i \\ne j), \\qquad s_u = x_u B

Only items with at least one training interaction enter the inverse (the others score 0).
"""
from __future__ import annotations

import numpy as np

from ...data import TrainData
from ...item_item import ease_weights
from ...ranking_model import RankingModel

__all__ = ["EASE"]


class EASE(RankingModel):
    """EASE with L2 weight `reg`.

    Args:
        reg: :math:`\\lambda` (default 250, tuned on validation over {50, 100, 250, 500, 1000}).
    """

    name = "ease"

    def __init__(self, reg: float = 250.0) -> None:
        if reg <= 0:
            raise ValueError(f"reg must be > 0, got {reg}")
        self.reg = reg

    def fit(self, train: TrainData) -> "EASE":
        self.active_, self.b_ = ease_weights(train.user_items, self.reg)
        self.user_items_ = train.user_items[:, self.active_].tocsr()
        self.num_items_ = train.num_items
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        if len(self.active_) == self.num_items_:
            return np.asarray(self.user_items_[user_idx] @ self.b_, dtype=np.float32)
        out = np.zeros((len(user_idx), self.num_items_), dtype=np.float32)
        out[:, self.active_] = self.user_items_[user_idx] @ self.b_
        return out
