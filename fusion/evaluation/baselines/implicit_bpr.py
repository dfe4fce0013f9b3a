"""External peer: `implicit`'s BPR (Rendle et al., UAI 2009), Cython SGD with an item bias factor.

.. math::
    s_{ui} = \\mathbf{x}_u^\\top \\mathbf{y}_i + b_i
"""
from __future__ import annotations

import numpy as np

from ...data import TrainData
from ...ranking_model import RankingModel

__all__ = ["ImplicitBPR"]


class ImplicitBPR(RankingModel):
    """`implicit.cpu.bpr.BayesianPersonalizedRanking` behind our interface.

    Args:
        factors: latent size (default 128; implicit adds one bias column).
        learning_rate: SGD step (default 0.05).
        regularization: L2 weight (default 0.01).
        iterations: epochs (default 100).
    """

    name = "implicit_bpr"

    def __init__(self, factors: int = 128, learning_rate: float = 0.05, regularization: float = 0.01,
                 iterations: int = 100) -> None:
        self.factors, self.learning_rate = factors, learning_rate
        self.regularization, self.iterations = regularization, iterations

    def fit(self, train: TrainData) -> "ImplicitBPR":
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        m = BayesianPersonalizedRanking(factors=self.factors, learning_rate=self.learning_rate,
                                        regularization=self.regularization, iterations=self.iterations,
                                        random_state=train.seed)
        m.fit(train.user_items.astype(np.float32).tocsr(), show_progress=False)
        self._u, self._i = np.asarray(m.user_factors), np.asarray(m.item_factors)
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._u[user_idx] @ self._i.T
