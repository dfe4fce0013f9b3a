"""External peer: `implicit`'s alternating least squares for implicit feedback (Hu, Koren & Volinsky, ICDM 2008).

.. math::
    \\min_{P,Q} \\sum_{u,i} c_{ui} (p_{ui} - \\mathbf{x}_u^\\top \\mathbf{y}_i)^2 + \\lambda (\\|X\\|^2 + \\|Y\\|^2),
    \\quad c_{ui} = 1 + \\alpha r_{ui}, \\qquad s_{ui} = \\mathbf{x}_u^\\top \\mathbf{y}_i
"""
from __future__ import annotations

import numpy as np

from ...data import TrainData
from ...ranking_model import RankingModel

__all__ = ["ImplicitALS"]


class ImplicitALS(RankingModel):
    """`implicit.cpu.als.AlternatingLeastSquares` behind our interface.

    Args:
        factors: latent size (default 128).
        regularization: :math:`\\lambda` (default 0.05).
        alpha: confidence weight :math:`\\alpha` (default 10).
        iterations: ALS sweeps (default 15).
    """

    name = "implicit_als"

    def __init__(self, factors: int = 128, regularization: float = 0.05, alpha: float = 10.0,
                 iterations: int = 15) -> None:
        self.factors, self.regularization, self.alpha, self.iterations = factors, regularization, alpha, iterations

    def fit(self, train: TrainData) -> "ImplicitALS":
        from implicit.cpu.als import AlternatingLeastSquares

        m = AlternatingLeastSquares(factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                                    iterations=self.iterations, random_state=train.seed,
                                    calculate_training_loss=False)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):  # implicit's own threads; a BLAS pool on top slows ALS down
            m.fit(train.user_items.astype(np.float32).tocsr(), show_progress=False)
        self._u, self._i = np.asarray(m.user_factors), np.asarray(m.item_factors)
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._u[user_idx] @ self._i.T
