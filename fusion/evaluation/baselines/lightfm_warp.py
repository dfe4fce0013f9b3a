"""External peer: LightFM (Kula, 2015) with the WARP loss and brand + category item features.

.. math::
    \\mathbf{q}_i = \\sum_{f \\in F_i} \\mathbf{e}_f, \\quad b_i = \\sum_{f \\in F_i} b_f, \\qquad
    s_{ui} = \\mathbf{p}_u^\\top \\mathbf{q}_i + b_i

where :math:`F_i` is the item's own indicator, its brand and its categories (with ancestors), so items
without training interactions still get a representation (the cold-start slice).
"""
from __future__ import annotations

import numpy as np

from ...data import TrainData
from ...ranking_model import RankingModel
from .side_info import item_features

__all__ = ["LightFMWarp"]


class LightFMWarp(RankingModel):
    """`lightfm.LightFM(loss="warp")` with item features.

    Args:
        no_components: latent size (default 64).
        learning_rate: adagrad step (default 0.05).
        item_alpha: L2 on item feature embeddings (default 1e-6).
        epochs: passes over the interactions (default 30).
        num_threads: Hogwild threads (default 2; results then vary slightly between runs).
    """

    name = "lightfm"

    def __init__(self, no_components: int = 64, learning_rate: float = 0.05, item_alpha: float = 1e-6,
                 epochs: int = 30, num_threads: int = 2) -> None:
        self.no_components, self.learning_rate, self.item_alpha = no_components, learning_rate, item_alpha
        self.epochs, self.num_threads = epochs, num_threads

    def fit(self, train: TrainData) -> "LightFMWarp":
        from lightfm import LightFM

        feats = item_features(train.graph, train.items)
        m = LightFM(no_components=self.no_components, loss="warp", learning_rate=self.learning_rate,
                    item_alpha=self.item_alpha, random_state=train.seed)
        m.fit(train.user_items.tocoo(), item_features=feats, epochs=self.epochs, num_threads=self.num_threads)
        ib, ie = m.get_item_representations(feats)
        ub, ue = m.get_user_representations()
        self._u, self._i, self._b = ue.astype(np.float32), ie.astype(np.float32), ib.astype(np.float32)
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._u[user_idx] @ self._i.T + self._b[None, :]
