"""The order-aware user tower (`fusion.sequence_tower`, `user_tower="attention"`): what it computes, and that
every consumer of a user vector (evaluation, the query API at load, after `record`, `recommend_new_user`)
gets the same one."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fusion import FusionConfig
from fusion.sequence_tower import SequenceTower, TowerConfig


def _tower(dim: int = 8, length: int = 5, seed: int = 0) -> SequenceTower:
    torch.manual_seed(seed)
    t = SequenceTower(dim, length, TowerConfig(layers=1, heads=2, dropout=0.0))
    t.reset_parameters()
    return t.eval()


def test_the_tower_starts_at_zero_so_training_begins_at_the_pooled_model():
    t = _tower()
    seq, mask = torch.randn(3, 5, 8), torch.ones(3, 5, dtype=torch.bool)
    assert torch.count_nonzero(t(seq, mask)) == 0


def test_order_matters_padding_does_not_and_an_empty_window_gives_zeros():
    t = _tower()
    torch.nn.init.normal_(t.out.weight)
    seq = torch.randn(1, 5, 8)
    full = torch.ones(1, 5, dtype=torch.bool)
    assert not torch.allclose(t(seq, full), t(seq.flip(1), full), atol=1e-4)
    # a 3-item window: whatever the padded slots hold, the output is the same
    mask = torch.tensor([[False, False, True, True, True]])
    noisy = seq.clone()
    noisy[:, :2] = torch.randn(1, 2, 8) * 100
    torch.testing.assert_close(t(seq, mask), t(noisy, mask))
    empty = t(seq, torch.zeros(1, 5, dtype=torch.bool))
    assert torch.isfinite(empty).all() and torch.count_nonzero(empty) == 0


def test_config_checks_and_round_trip(tmp_path):
    with pytest.raises(ValueError, match="user_tower must be one of"):
        FusionConfig(user_tower="rnn")
    with pytest.raises(ValueError, match="must divide the embedding size"):
        SequenceTower(10, 5, TowerConfig(heads=3))
    cfg = FusionConfig(user_tower="attention")
    cfg.tower.layers = 1
    cfg.save(tmp_path)
    back = FusionConfig.load(tmp_path)
    assert back.user_tower == "attention" and back.tower == TowerConfig(layers=1)
    assert back.ablation("fusion_no_tower").user_tower == "pool"  # the pooled model, everything else the same
    assert back.ablation("fusion_no_tower").tower == back.tower


@pytest.fixture(scope="module")
def attention_model():
    from query_fixtures import trained_model
    return trained_model(user_tower="attention")


def _load(model_dir, store):
    from fusion import FusionRecommender
    from fusion.data import TrainData
    from kg import EmbeddedStore
    return FusionRecommender.load(model_dir, TrainData.from_graph(EmbeddedStore(store).load(), seed=0))


def test_a_trained_tower_moves_the_user_vectors(attention_model):
    rec = _load(*attention_model)
    assert rec.model_.tower is not None and torch.count_nonzero(rec.model_.tower.out.weight) > 0


def test_the_query_api_scores_users_as_the_evaluated_model_does(attention_model):
    from fusion import Recommender
    from query_fixtures import HashEncoder

    model_dir, store = attention_model
    fr = _load(model_dir, store)
    rec = Recommender.load(model_dir, store=store, text_encoder=HashEncoder(), event_log=None)
    users = rec.user_ids
    for uid in ("a3", "b0", "x"):
        u = users.index(uid)
        want = dict(zip(fr._item_ids, fr.score(np.array([u]))[0]))
        got = rec.recommend(uid, k=len(fr._item_ids), exclude_seen=False)
        for pid, score in zip(got["product_id"], got["score"]):
            assert score == pytest.approx(want[pid], rel=1e-4, abs=1e-4), (uid, pid)
        # the live path (after an event, a user's vector is recomputed alone) gives the vector of the load
        again = rec._user_vector(rec._state, rec._history.find(uid), rec._history.items_of(rec._history.find(uid)))
        np.testing.assert_allclose(again, rec.user_vectors([uid])[0], rtol=1e-5, atol=1e-5)


def test_new_users_and_recorded_events_go_through_the_tower(attention_model, tmp_path):
    import shutil

    from fusion import Recommender
    from query_fixtures import HashEncoder

    model_dir, store = attention_model
    shutil.copytree(store, tmp_path / "store")
    rec = Recommender.load(model_dir, store=tmp_path / "store", text_encoder=HashEncoder(), event_log=None)
    m = rec.model
    # recommend_new_user: the tower's torch forward over the fused vectors of the chosen products
    cols = np.array([rec.product_ids.index(p) for p in ("A1", "A2", "B3")])
    items = torch.from_numpy(np.ascontiguousarray(rec._state.vectors))
    with torch.no_grad():
        m.eval()
        want = m.history_vectors(items, torch.from_numpy(cols)[None], torch.ones(1, 3, dtype=torch.bool))[0]
        order = m.history_vectors(items, torch.from_numpy(cols[::-1].copy())[None], torch.ones(1, 3, dtype=torch.bool))[0]
    assert not torch.allclose(want, order, atol=1e-5)  # the order of the history changes the user
    np.testing.assert_allclose(rec._encode_history(rec._state.vectors, cols), want.numpy(), rtol=1e-5, atol=1e-5)
    got = rec.recommend_new_user(["A1", "A2", "B3"], k=5)
    # a new user known from recorded events is scored like recommend_new_user
    for t, p in enumerate(("A1", "A2", "B3")):
        rec.record("newbie", p, timestamp=10 + t)
    live = rec.recommend("newbie", k=5)
    assert live["product_id"].tolist() == got["product_id"].tolist()
    np.testing.assert_allclose(live["score"], got["score"], rtol=1e-5)
    assert rec.explain("newbie", live["product_id"].iloc[0])


@pytest.mark.parametrize("layers, n", [(1, 1), (2, 3), (2, 5), (3, 4)])
def test_the_numpy_forward_equals_the_torch_one(layers, n):
    from fusion.sequence_tower import NumpyTower
    torch.manual_seed(layers * 10 + n)
    t = SequenceTower(8, 5, TowerConfig(layers=layers, heads=2, dropout=0.3))
    t.reset_parameters()
    for p in t.parameters():  # away from the zero / identity start, so that every part counts
        torch.nn.init.normal_(p, std=0.3)
    t.eval()
    seq = torch.randn(1, 5, 8)
    mask = torch.zeros(1, 5, dtype=torch.bool)
    mask[:, 5 - n:] = True
    want = t(seq, mask)[0].detach().numpy()
    got = NumpyTower(t)(seq[0, 5 - n:].numpy())
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert NumpyTower(t)(np.zeros((0, 8), np.float32)).tolist() == [0.0] * 8
