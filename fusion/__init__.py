"""Fusion layer, losses, training, the fusion recommender, evaluation harness and baselines.

`import fusion` is light; torch and the model load on first use of a name.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FusionConfig", "LossConfig", "TrainConfig", "ItemItemConfig", "ABLATIONS", "FusionModel", "FusionRecommender",
    "ItemItemHead",
    "info_nce_loss", "bpr_loss", "softmax_preference_loss", "kg_path_loss", "l2_regularization",
    "train_model", "TrainState",
    "ExactIndex", "FaissIndex", "ANNConfig",
    "Recommender", "Explanation", "UnknownIdError", "UnknownUserWarning", "SearchBlend",
]

_WHERE = {
    "FusionConfig": "config", "LossConfig": "config", "TrainConfig": "config", "ABLATIONS": "config",
    "ItemItemConfig": "config", "ItemItemHead": "item_item",
    "FusionModel": "model", "FusionRecommender": "recommender",
    "info_nce_loss": "losses", "bpr_loss": "losses", "softmax_preference_loss": "losses",
    "kg_path_loss": "losses", "l2_regularization": "losses",
    "train_model": "trainer", "TrainState": "trainer",
    "ExactIndex": "topk", "FaissIndex": "ann", "ANNConfig": "ann",
    # the query API (fusion.baselines.base.Recommender is the evaluation interface, a different class)
    "Recommender": "query", "UnknownUserWarning": "query", "Explanation": "results", "UnknownIdError": "results",
    "SearchBlend": "search",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'fusion' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
