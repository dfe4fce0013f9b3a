"""The fusion recommender in three rooms, imports pointing one way (kg -> gnn, text -> core -> the other two):

- the model core, here: config, fusion layer (`model`), losses, training data (`data`), training (`trainer`),
  the item-item term, the warm start, metrics, and `FusionRecommender` behind the `RankingModel` interface;
- `fusion.evaluation`: leak-free splits, the fit/evaluate runner, reports, and `fusion.evaluation.baselines`;
- `fusion.serving`: the query API (`Recommender`) with its top-k/ANN indexes, snapshot, catalog filters, search,
  explanations and cold start.

`import fusion` is light; torch and the model load on first use of a name.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FusionConfig", "LossConfig", "TrainConfig", "ItemItemConfig", "ColdMixConfig", "TowerConfig", "ABLATIONS", "FusionModel",
    "SequenceTower", "FusionRecommender",
    "ItemItemHead", "LastTextTerm", "ColdTextMix", "ColdGraphTerm", "RankingModel", "TrainData", "interaction_matrix",
    "info_nce_loss", "bpr_loss", "softmax_preference_loss", "kg_path_loss", "l2_regularization",
    "train_model", "TrainState", "transfer_weights", "WarmStartReport",
    "ExactIndex", "FaissIndex", "ANNConfig",
    "Recommender", "Explanation", "UnknownIdError", "UnknownUserWarning", "SearchBlend",
]

_WHERE = {
    "FusionConfig": "config", "LossConfig": "config", "TrainConfig": "config", "ABLATIONS": "config",
    "ItemItemConfig": "config", "ItemItemHead": "item_item", "ColdMixConfig": "config", "ColdTextMix": "cold_mix",
    "ColdGraphTerm": "cold_graph", "LastTextTerm": "last_text",
    "TowerConfig": "sequence_tower", "SequenceTower": "sequence_tower",
    "FusionModel": "model", "FusionRecommender": "recommender", "RankingModel": "ranking_model",
    "TrainData": "data", "interaction_matrix": "data",
    "info_nce_loss": "losses", "bpr_loss": "losses", "softmax_preference_loss": "losses",
    "kg_path_loss": "losses", "l2_regularization": "losses",
    "train_model": "trainer", "TrainState": "trainer",
    "transfer_weights": "warm_start", "WarmStartReport": "warm_start",
    # the query API (fusion.serving)
    "ExactIndex": "serving.topk", "FaissIndex": "serving.ann", "ANNConfig": "serving.ann",
    "Recommender": "serving.query", "UnknownUserWarning": "serving.query", "Explanation": "serving.results",
    "UnknownIdError": "serving.results", "SearchBlend": "serving.search",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'fusion' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
