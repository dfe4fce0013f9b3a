"""The one interface every model evaluated here implements (the fusion model and every baseline):
`fit` on a training graph, `score` users.

Item space: column j of every score matrix is the recommendable product `TrainData.items[j]`
(products with `in_catalog` True, in product-index order). Products outside the catalog never get a
column, so they can never be recommended; training items are masked by the evaluation, not the model.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from .data import TrainData

__all__ = ["RankingModel"]


class RankingModel(ABC):
    """Base class: `fit(train)` then `score(user_idx)` -> float32 [len(user_idx), num_items].

    Subclasses keep their hyper-parameters as typed constructor arguments (documented defaults are the
    values tuned on the validation split) and expose them through `params()`.
    """

    name: str = "recommender"

    @abstractmethod
    def fit(self, train: TrainData) -> "RankingModel":
        """Learn from the training data only; returns self."""

    @abstractmethod
    def score(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores of every item column for the given users (higher = better), training items not masked."""

    def params(self) -> dict[str, Any]:
        """Hyper-parameters (constructor arguments) as a dict."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and not k.endswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"
