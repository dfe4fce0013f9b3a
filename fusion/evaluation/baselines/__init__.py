"""Baselines behind one interface (`fusion.RankingModel`: `fit(TrainData)` / `score(users)`), one file per
algorithm.

`BASELINES` maps each evaluation name to its class; `DEFAULTS` holds the documented, validation-tuned
hyper-parameters per dataset family ("default" when no dataset-specific values exist); `GRIDS` the small
grids `scripts/evaluate.py --tune` searches on the validation split.
"""
from __future__ import annotations

import importlib
from typing import Any

from ...ranking_model import RankingModel
from .bpr_mf import BPRMF
from .ease import EASE
from .gds_fastrp import GDSFastRP, server_unavailable
from .implicit_als import ImplicitALS
from .implicit_bpr import ImplicitBPR
from .itemknn import ItemKNN
from .lightfm_warp import LightFMWarp
from .lightgcn import LightGCN
from .popularity import Popularity
from .sasrec import SASRec, SASRecText
from .side_info import item_features
from .text_only import TextOnly

__all__ = [
    "BASELINES", "GRIDS", "DEFAULTS", "REQUIRES",
    "Popularity", "ItemKNN", "EASE", "BPRMF", "LightGCN", "TextOnly", "ImplicitALS", "ImplicitBPR", "GDSFastRP",
    "LightFMWarp", "SASRec", "SASRecText", "item_features", "available", "make_baseline",
]

BASELINES: dict[str, type[RankingModel]] = {
    "popularity": Popularity, "itemknn": ItemKNN, "ease": EASE, "bpr_mf": BPRMF, "lightgcn": LightGCN,
    "text_only": TextOnly, "implicit_als": ImplicitALS, "implicit_bpr": ImplicitBPR, "lightfm": LightFMWarp,
    "sasrec": SASRec, "sasrec_text": SASRecText,
    "gds_fastrp": GDSFastRP,  # runs in a Neo4j server with Graph Data Science (see `available`)
}

# Optional packages each baseline needs (skipped with a message when missing).
REQUIRES: dict[str, str] = {"implicit_als": "implicit", "implicit_bpr": "implicit", "lightfm": "lightfm",
                            "text_only": "transformers", "sasrec_text": "transformers"}

# Small validation grids (`--tune`); every point is scored by validation NDCG@10 of a model fitted on the
# training part only. Iterative models (bpr_mf, lightgcn) also stop early inside each point.
GRIDS: dict[str, list[dict[str, Any]]] = {
    "popularity": [{}],
    "itemknn": [{"num_neighbors": k, "shrink": s} for k in (50, 200, 500, 1000) for s in (10.0, 50.0, 200.0)],
    "ease": [{"reg": r} for r in (10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)],
    "bpr_mf": [{"dim": 64, "lr": lr, "reg": r, "epochs": 100} for lr in (0.001, 0.005) for r in (1e-5, 1e-4)],
    "lightgcn": [{"num_layers": l, "dim": 64, "lr": 0.01, "epochs": 150} for l in (2, 3)],
    "text_only": [{}],
    "implicit_als": [{"factors": f, "regularization": r, "alpha": a, "iterations": 15}
                     for f in (64, 128) for r in (0.01, 0.1) for a in (1.0, 10.0)],
    "implicit_bpr": [{"factors": f, "learning_rate": lr, "regularization": 0.01, "iterations": 100}
                     for f in (64, 128) for lr in (0.01, 0.05)],
    "lightfm": [{"no_components": c, "learning_rate": 0.05, "epochs": e} for c in (32, 64) for e in (10, 30)],
    # sequential models stop early inside each point (validation NDCG@10 every 2 epochs)
    "sasrec": [{"dropout": d, "epochs": 100} for d in (0.2, 0.5)],
    "sasrec_text": [{"dropout": d, "epochs": 100} for d in (0.2, 0.5)],
    # embedding_dimension 1024 fixed (scientific validation: 256 0.0747, 512 0.0781, 1024 0.0806, 2048 0.0806)
    # iteration weights [1, 1] and [1, 1, 1] too: the shorter hops rank cold products best in our KG similarity
    "gds_fastrp": [{"embedding_dimension": 1024, "iteration_weights": w, "user_vector": u}
                   for w in ([0.0, 1.0, 1.0], [0.0, 0.5, 1.0], [1.0, 1.0], [1.0, 1.0, 1.0])
                   for u in ("history_mean", "node")],
}

# Tuned values (see docs/results.md for how they were found); keyed by dataset name, then "default".
DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    # tuned on amazon-scientific (loo) validation; used for any dataset without its own entry
    "default": {
        "itemknn": {"num_neighbors": 500, "shrink": 50.0},
        "ease": {"reg": 25.0},
        "bpr_mf": {"dim": 64, "lr": 0.005, "reg": 1e-4, "epochs": 45},
        "lightgcn": {"num_layers": 2, "dim": 64, "lr": 0.01, "epochs": 55},
        "implicit_als": {"factors": 128, "regularization": 0.01, "alpha": 10.0, "iterations": 15},
        "implicit_bpr": {"factors": 128, "learning_rate": 0.05, "regularization": 0.01, "iterations": 100},
        "lightfm": {"no_components": 64, "learning_rate": 0.05, "epochs": 30},
        # scientific validation (dim 64, 2 blocks, dropout 0.2, lr 1e-3): best epoch 28 of 30, NDCG@10 0.0865
        "sasrec": {"epochs": 28},
        # scientific validation, same settings: best epoch 38 of 40, NDCG@10 0.0969
        "sasrec_text": {"epochs": 38},
    },
    "beauty": {
        "lightgcn": {"num_layers": 2, "dim": 64, "lr": 0.005, "epochs": 60},  # not tuned on beauty (time)
        # tuned on beauty's random-holdout validation (cold products out): NDCG@10 0.0509 / 0.0542
        "itemknn": {"num_neighbors": 1000, "shrink": 200.0},
        "ease": {"reg": 100.0},  # lambda 10..1000: 0.0491..0.0542
        "bpr_mf": {"dim": 64, "lr": 0.005, "reg": 1e-5, "epochs": 35},  # tuned on beauty validation
        # implicit_als / implicit_bpr / lightfm: beauty validation chose the same values as scientific
        # beauty validation (--tune gds_fastrp, 8 points): [1, 1, 1] node 0.0482, [0, 0.5, 1] node 0.0468;
        # scientific keeps the class defaults ([0, 0.5, 1], history_mean: 0.0792 vs 0.0753 for [1, 1, 1])
        "gds_fastrp": {"user_vector": "node", "iteration_weights": [1.0, 1.0, 1.0]},
        # beauty validation (random holdout, file split): best epoch 14 of 22 (stopped), NDCG@10 0.0240; 31 s/epoch
        "sasrec": {"epochs": 14},
        # beauty validation (scripts/validation_curve.py --model sasrec_text --set epochs 40): best epoch 20 of 28
        # (stopped), NDCG@10 0.0290; 161 s/epoch with two other jobs on the two cores, peak RSS 1.59 GiB
        "sasrec_text": {"epochs": 20},
    },
}


def available(name: str) -> str | None:
    """None when baseline `name` can run here, else why not."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    if name == "gds_fastrp":  # needs a reachable Neo4j server with GDS, not a package
        return server_unavailable()
    mod = REQUIRES.get(name)
    if mod is None:
        return None
    try:
        importlib.import_module(mod)
    except ImportError as e:
        return f"{mod} is not importable ({e})"
    return None


def make_baseline(name: str, dataset: str | None = None, **overrides: Any) -> RankingModel:
    """The baseline `name` with the tuned hyper-parameters for `dataset` (else its class defaults)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    params = {**DEFAULTS.get("default", {}).get(name, {}), **DEFAULTS.get(dataset or "", {}).get(name, {}),
              **overrides}
    return BASELINES[name](**params)
