"""SASRec and its text form: the windows it trains on, that it reads order, early stopping, cold items."""
from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from eval_fixtures import build_graph
from fusion.data import TrainData, interaction_matrix
from fusion.evaluation.baselines import SASRec, SASRecText
from fusion.evaluation.baselines.sasrec import last_items, training_windows
from fusion.metrics import top_k

RING = 20  # items on a ring; every user walks 5 consecutive steps of it


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_training_windows_and_last_items():
    # user 0: items 3, 1, 4 (time order); user 1: one item (no window); user 2: 7 items, max_len 3
    indptr = np.array([0, 3, 4, 11])
    items = np.array([3, 1, 4, 9, 0, 1, 2, 3, 4, 5, 6])
    inputs, targets = training_windows(indptr, items, max_len=3)
    assert inputs.tolist() == [[0, 4, 2], [4, 5, 6]]  # +1 shifted, left-padded
    assert targets.tolist() == [[4, 2, 5], [5, 6, 7]]
    assert last_items(indptr, items, np.array([0, 1, 2]), 3).tolist() == [[4, 2, 5], [0, 0, 10], [5, 6, 7]]


def _ring(tmp_path, users: int = 60):
    """Users walk 5 consecutive items of a ring of RING items; the answer is the next step. Every item has
    the same popularity and the same co-occurrence on both sides, so only the order tells the answer."""
    prods = pd.DataFrame({"product_id": [f"P{i}" for i in range(RING)], "title": [f"item {i}" for i in range(RING)],
                          "description": "", "brand": "", "categories": ""})
    rows, answer = [], {}
    for u in range(users):
        start = u % RING
        for step in range(5):
            rows.append({"user_id": f"u{u}", "product_id": f"P{(start + step) % RING}", "timestamp": 1000 + step})
        answer[f"u{u}"] = f"P{(start + 5) % RING}"
    return build_graph(tmp_path, prods, pd.DataFrame(rows)), answer


def test_sasrec_reads_the_order(tmp_path):
    g, answer = _ring(tmp_path)
    train = TrainData.from_graph(g, seed=0)
    model = SASRec(dim=32, num_layers=1, max_len=8, dropout=0.0, lr=0.01, epochs=80, batch_size=16).fit(train)
    users = g.id_map("User").indices(list(answer))
    want = train.column_of[g.id_map("Product").indices(list(answer.values()))]
    top = top_k(model.score(users), 1, train.user_items[users])[:, 0]
    assert (top == want).mean() >= 0.9
    assert model.loss_history_[-1] < model.loss_history_[0]


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    g, answer = _ring(tmp_path)
    users = g.id_map("User").indices(list(answer))
    cols = g.id_map("Product").indices(list(answer.values()))
    valid = pd.DataFrame({"src": users, "dst": cols})
    train = TrainData.from_graph(g, valid=valid, seed=0)
    assert train.valid.nnz == len(users)
    model = SASRec(dim=32, num_layers=1, max_len=8, dropout=0.0, lr=0.01, epochs=60, batch_size=16,
                   eval_every=2, patience=3).fit(train)
    assert 2 <= model.best_epoch_ <= 60 and model.best_epoch_ % 2 == 0
    test = interaction_matrix(valid, train.num_users, train.column_of)
    top = top_k(model.score(users), 1, train.user_items[users])[:, 0]
    assert (top == test[users].indices).mean() >= 0.9  # the restored weights are the good ones


def test_sampled_softmax_learns_too(tmp_path):
    g, answer = _ring(tmp_path)
    train = TrainData.from_graph(g, seed=0)
    model = SASRec(dim=32, num_layers=1, max_len=8, dropout=0.0, lr=0.01, epochs=80, batch_size=16,
                   full_softmax_max_items=5, num_negatives=8).fit(train)
    users = g.id_map("User").indices(list(answer))
    want = train.column_of[g.id_map("Product").indices(list(answer.values()))]
    assert (top_k(model.score(users), 1, train.user_items[users])[:, 0] == want).mean() >= 0.8


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed")
def test_sasrec_text_ranks_a_product_nobody_bought(tmp_path):
    """Two kinds of product (apple snacks / steel hammers); one hammer has no interaction at all. SASRec's free
    embedding of it never leaves its random start; the text form places it among the hammers."""
    words = {"A": "fresh red apple fruit juice snack", "B": "steel claw hammer tool nail workshop"}
    prods, rows = [], []
    for blk in "AB":
        for k in range(8):
            prods.append({"product_id": f"{blk}{k}", "title": f"{words[blk].split()[k % 6]} {words[blk]}",
                          "description": words[blk], "brand": "", "categories": ""})
    for u in range(16):
        blk = "AB"[u % 2]
        for step, k in enumerate(np.random.default_rng(u).permutation(7)[:4]):  # item 7 of each block: never
            rows.append({"user_id": f"u{u}", "product_id": f"{blk}{k}", "timestamp": 1000 + step})
    g = build_graph(tmp_path, pd.DataFrame(prods), pd.DataFrame(rows))
    train = TrainData.from_graph(g, seed=0)
    model = SASRecText(dim=16, num_layers=1, max_len=8, dropout=0.0, lr=0.01, epochs=40, batch_size=8).fit(train)
    cold = int(train.column_of[g.id_map("Product").index("B7")])
    ids = g.nodes["Product"]["id"].to_numpy()[train.items].astype(str)
    apples = np.flatnonzero(np.char.startswith(ids, "A"))
    hammer_fans = g.id_map("User").indices([f"u{u}" for u in range(1, 16, 2)])
    s = model.score(hammer_fans)
    assert (s[:, cold] > s[:, apples].max(axis=1)).all()


def test_validation_curve_script_prints_the_checks(tmp_path, capsys):
    """scripts/validation_curve.py on a tiny store: the JSON line has a check every eval_every epochs."""
    import json

    from eval_fixtures import checker_board
    from kg import EmbeddedStore
    from scripts_loader import script

    g, _ = checker_board(tmp_path)
    EmbeddedStore(tmp_path / "store").write(g)
    assert script("validation_curve").main([
        "--store", str(tmp_path / "store"), "--split", "loo", "--model", "sasrec", "--threads", "1",
        "--set", "epochs", "4", "--set", "eval_every", "2", "--set", "dim", "8", "--set", "max_len", "10"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [e for e, _ in out["valid_ndcg@10"]] == [2, 4] and out["best_epoch"] in (2, 4)
    assert len(out["loss"]) == 4 and out["params"]["dim"] == 8
