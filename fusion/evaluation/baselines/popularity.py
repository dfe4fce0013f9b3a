"""Most-popular: every user gets the items with the most training interactions.

Score: :math:`s_{ui} = |\\{v : (v, i) \\in \\mathcal{D}_{train}\\}|`, the same for every user.
The bar any personalised model must clear; it has no hyper-parameters.
"""
from __future__ import annotations

import numpy as np

from ...data import TrainData
from ...ranking_model import RankingModel

__all__ = ["Popularity"]


class Popularity(RankingModel):
    """Rank items by their number of training users."""

    name = "popularity"

    def fit(self, train: TrainData) -> "Popularity":
        self.counts_ = np.asarray(train.user_items.sum(axis=0), dtype=np.float32).ravel()
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts_, (len(user_idx), len(self.counts_))).copy()
