"""A tiny trained model for the query API tests: two shops in one catalog (fruit and tools), a fake text encoder.

Products A0..A9 (brand Acme, Food > Fruit / Food > Juice) and B0..B9 (brand Bolt, Tools > Hammers / Tools > Nails);
users a0..a9 buy A products, b0..b9 B products, each missing one of their block (user a3 lacks A3); user `x`
bought A0 and B0; C0 (Acme, Food > Fruit) has no interaction at all. A0 -ALSO_BOUGHT-> A1, B0 -BOUGHT_TOGETHER-> B1.
"""
from __future__ import annotations

import atexit
import functools
import re
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch

A_WORDS = ["apple", "pear", "plum", "cherry", "grape", "lemon", "mango", "peach", "melon", "kiwi"]
B_WORDS = ["claw hammer", "sledge hammer", "steel nails", "brad nails", "rubber mallet", "tack hammer",
           "roofing nails", "finish nails", "framing hammer", "ball peen hammer"]


class HashEncoder:
    """Bag of hashed words -> unit vector: a deterministic stand-in for the sentence encoder (no model load)."""

    dim = 32

    def __init__(self) -> None:
        self.calls = 0

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for w in re.findall(r"[a-z0-9]+", text.lower()):
            v[zlib.crc32(w.encode()) % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode_texts(self, texts) -> torch.Tensor:
        self.calls += 1
        return torch.from_numpy(np.stack([self._vec(t) for t in texts])) if len(texts) else torch.zeros(0, self.dim)

    def encode_query(self, query: str) -> torch.Tensor:
        self.calls += 1
        return torch.from_numpy(self._vec(query))


def products() -> pd.DataFrame:
    rows = []
    for k, w in enumerate(A_WORDS):
        rows.append({"product_id": f"A{k}", "title": f"Fresh {w}", "description": f"sweet {w} fruit",
                     "brand": "Acme", "categories": "Food > Fruit" if k < 5 else "Food > Juice"})
    for k, w in enumerate(B_WORDS):
        rows.append({"product_id": f"B{k}", "title": f"Steel {w}", "description": f"workshop {w} tool",
                     "brand": "Bolt", "categories": "Tools > Nails" if "nails" in w else "Tools > Hammers"})
    rows.append({"product_id": "C0", "title": "Fresh papaya", "description": "sweet papaya fruit", "brand": "Acme",
                 "categories": "Food > Fruit"})
    return pd.DataFrame(rows)


def interactions() -> pd.DataFrame:
    rows = []
    for blk in "AB":
        for u in range(10):
            for k in range(10):
                if k != u:
                    rows.append({"user_id": f"{blk.lower()}{u}", "product_id": f"{blk}{k}", "timestamp": 1000 + k})
    rows += [{"user_id": "x", "product_id": "A0", "timestamp": 1}, {"user_id": "x", "product_id": "B0", "timestamp": 2}]
    return pd.DataFrame(rows)


RELATIONS = pd.DataFrame({"product_id": ["A0", "B0"], "relation": ["also_bought", "bought_together"],
                          "other_id": ["A1", "B1"]})


def build_model(root: Path, epochs: int = 12, dim: int = 16, use_text: bool = True,
                user_tower: str = "pool") -> tuple[Path, Path]:
    """Write the store and train + save the tiny model; returns (model_dir, store_dir)."""
    import pytest

    import fusion.recommender as rec_mod
    from fusion import FusionConfig, FusionRecommender
    from fusion.data import TrainData
    from kg.export import products_frame
    from kg import EmbeddedStore, KnowledgeGraph, merge_files

    root.mkdir(parents=True, exist_ok=True)
    p, i, r = root / "products.csv", root / "interactions.csv", root / "relations.csv"
    products().to_csv(p, index=False)
    interactions().to_csv(i, index=False)
    RELATIONS.to_csv(r, index=False)
    graph = KnowledgeGraph()
    merge_files(graph, p, i, r, show_progress=False)
    store = root / "store"
    EmbeddedStore(store).write(graph)
    enc = HashEncoder()
    cfg = FusionConfig() if use_text else FusionConfig().ablation("fusion_no_text")
    cfg.gnn.dim, cfg.train.epochs, cfg.train.batch_size, cfg.history_len = dim, epochs, 64, 5
    cfg.user_tower = user_tower
    threads = torch.get_num_threads()
    torch.manual_seed(0)  # the model's initial weights are drawn before training seeds itself
    torch.set_num_threads(1)  # a tiny model: threads only add wake-up costs (7 s instead of 0.8 s on 2 busy cores)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(rec_mod, "text_embeddings", lambda g, items, *a, **k: enc.encode_texts(
                products_frame(g, items).pipe(_texts)))
            rec = FusionRecommender(cfg).fit(TrainData.from_graph(graph, seed=0))
    finally:
        torch.set_num_threads(threads)
    model = root / "model"
    rec.save(model, extra={"store": str(store)})
    return model, store


def _texts(frame: pd.DataFrame) -> list[str]:
    from text import product_text

    return product_text(frame).tolist()


@functools.lru_cache(maxsize=None)
def trained_model(use_text: bool = True, user_tower: str = "pool") -> tuple[Path, Path]:
    """The tiny model, trained once per test session (in a temporary directory removed at exit)."""
    root = Path(tempfile.mkdtemp(prefix="kgrec-query-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return build_model(root, use_text=use_text, user_tower=user_tower)
