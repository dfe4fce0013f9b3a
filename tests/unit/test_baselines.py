"""One shared test mixin run over every baseline on a tiny checker-board with a known right answer.

Users of block A bought 9 of the 10 A items, users of block B 9 of the 10 B items; each user's missing
item of their own block must outrank every item of the other block once training items are masked.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from eval_fixtures import BLOCK, checker_board
from fusion.data import TrainData
from fusion.evaluation.baselines import (BASELINES, BPRMF, EASE, ImplicitALS, ImplicitBPR, ItemKNN, LightFMWarp,
                                         LightGCN, Popularity, SASRec, SASRecText, TextOnly, item_features,
                                         make_baseline)
from kg.export import products_frame
from fusion.metrics import top_k

HAS_IMPLICIT = importlib.util.find_spec("implicit") is not None
HAS_LIGHTFM = importlib.util.find_spec("lightfm") is not None


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    import torch

    torch.set_num_threads(1)  # tiny ops: extra threads only add overhead (and the CPU is shared)
    g, held = checker_board(tmp_path_factory.mktemp("board"))
    return TrainData.from_graph(g, seed=0), held


class RecommenderTestMixin:
    """Subclasses set `make()`; every test here then runs for that model."""

    personalised = True
    # why the held-out item cannot be asked of this model (None: it must be found)
    not_askable: str | None = None

    @classmethod
    def make(cls):
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, board):
        train, held = board
        return cls.make().fit(train), train, held

    def test_score_shape_and_dtype(self, fitted):
        model, train, _ = fitted
        s = model.score(np.arange(5))
        assert s.shape == (5, train.num_items)
        assert np.isfinite(s).all()

    def test_held_out_item_beats_the_other_block(self, fitted):
        if not self.personalised:
            pytest.skip("not a personalised model")
        if self.not_askable:
            pytest.skip(self.not_askable)
        model, train, held = fitted
        g = train.graph
        users = g.id_map("User").indices(list(held))
        cols = train.column_of[g.id_map("Product").indices(list(held.values()))]
        s = model.score(users)
        ids = g.nodes["Product"]["id"].to_numpy()[train.items]
        for r, (u, c) in enumerate(zip(held, cols)):
            other = np.flatnonzero(np.char.startswith(ids.astype(str), "B" if u.startswith("a") else "A"))
            assert s[r, c] > s[r, other].max(), f"{model!r}: user {u}'s held-out item does not beat the other block"
        # and with training items masked it is the top recommendation
        top = top_k(s, 1, train.user_items[users])
        assert (top[:, 0] == cols).all()

    def test_params_round_trip(self, fitted):
        model, _, _ = fitted
        assert type(model)(**model.params()).params() == model.params()
        assert type(model).__name__ in repr(model)


class TestPopularity(RecommenderTestMixin):
    personalised = False

    @classmethod
    def make(cls):
        return Popularity()

    def test_ranks_by_count(self, board):
        train, _ = board
        s = Popularity().fit(train).score(np.array([0]))[0]
        assert np.allclose(s, np.asarray(train.user_items.sum(axis=0)).ravel())


class TestItemKNN(RecommenderTestMixin):
    @classmethod
    def make(cls):
        return ItemKNN(num_neighbors=20, shrink=0.0)


class TestEASE(RecommenderTestMixin):
    @classmethod
    def make(cls):
        return EASE(reg=1.0)


class TestBPRMF(RecommenderTestMixin):
    @classmethod
    def make(cls):
        return BPRMF(dim=4, lr=0.05, epochs=100, batch_size=64)


class TestLightGCN(RecommenderTestMixin):
    @classmethod
    def make(cls):
        return LightGCN(num_layers=2, dim=16, lr=0.05, epochs=40, batch_size=64)


@pytest.mark.skipif(not HAS_IMPLICIT, reason="implicit is not installed")
class TestImplicitALS(RecommenderTestMixin):
    @classmethod
    def make(cls):
        return ImplicitALS(factors=2, regularization=0.1, alpha=10.0, iterations=15)


@pytest.mark.skipif(not HAS_IMPLICIT, reason="implicit is not installed")
class TestImplicitBPR(RecommenderTestMixin):
    @classmethod
    def make(cls):
        return ImplicitBPR(factors=16, learning_rate=0.05, regularization=0.001, iterations=300)


@pytest.mark.skipif(not HAS_LIGHTFM, reason="lightfm is not installed")
class TestLightFM(RecommenderTestMixin):
    @classmethod
    def make(cls):
        return LightFMWarp(no_components=16, learning_rate=0.05, epochs=50, num_threads=1)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed")
class TestTextOnly(RecommenderTestMixin):
    @classmethod
    def make(cls):
        return TextOnly()


class TestSASRec(RecommenderTestMixin):
    not_askable = ("the board's held-out item comes before the user's last item in time, and every history "
                   "ends with the same item, whose successor free item embeddings never see: a next-item model "
                   "is not asked this (tests/unit/test_sasrec.py tests what it must learn)")

    @classmethod
    def make(cls):
        return SASRec(dim=16, num_layers=1, max_len=10, dropout=0.1, lr=0.01, epochs=60, batch_size=8)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed")
class TestSASRecText(RecommenderTestMixin):
    @classmethod
    def make(cls):
        return SASRecText(dim=16, num_layers=1, max_len=10, dropout=0.1, lr=0.01, epochs=60, batch_size=8)


def test_every_baseline_has_a_test_and_a_name():
    tested = {TestPopularity, TestItemKNN, TestEASE, TestBPRMF, TestLightGCN, TestImplicitALS, TestImplicitBPR,
              TestLightFM, TestTextOnly, TestSASRec, TestSASRecText}
    # gds_fastrp runs in a Neo4j server with GDS: tests/unit/test_gds_projection.py (a fake GDS) and, on this
    # board against a live server, tests/integration/test_gds_fastrp.py
    assert {t.make().name for t in tested} | {"gds_fastrp"} == set(BASELINES)
    for name, cls in BASELINES.items():
        assert cls.name == name
        assert make_baseline(name).name == name


def test_side_info(board):
    train, _ = board
    f = item_features(train.graph, train.items)
    # identity + 2 brands + categories (Food, Food > Fruit, Tools, Tools > Hammers)
    assert f.shape == (2 * BLOCK, 2 * BLOCK + 2 + 4)
    assert np.allclose(np.asarray(f.sum(axis=1)).ravel(), 1.0)
    frame = products_frame(train.graph, train.items)
    row = frame.set_index("product_id").loc["B3"]
    assert row["brand"] == "Bolt" and row["categories"] == "Tools > Hammers"


def test_unknown_baseline_name():
    with pytest.raises(ValueError, match="unknown baseline 'svd'"):
        make_baseline("svd")


def test_evaluate_script_knows_every_baseline():
    """scripts/evaluate.py lists the names without importing torch at argument parsing: keep it in step."""
    from scripts_loader import script

    assert set(script("evaluate").BASELINE_NAMES) == set(BASELINES)
