"""Splits: the right rows held out, reproducible, and never leaking a test pair into training."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eval_fixtures import build_graph
from fusion.evaluation.splits import assert_no_leak, make_split, time_order

PRODUCTS = pd.DataFrame({"product_id": [f"p{i}" for i in range(12)], "title": "t", "description": "",
                         "brand": "", "categories": "A > B"})


def _inter(rows):
    return pd.DataFrame(rows, columns=["user_id", "product_id", "timestamp"])


@pytest.fixture
def graph(tmp_path):
    rows = []
    # u1: 10 items with timestamps given out of arrival order; u2: 2 items (stays in train);
    # u3: no timestamps (arrival order); u4: a repeat purchase of p1
    for k in range(10):
        rows.append(("u1", f"p{k}", 2000 - 10 * k))  # p9 is the earliest, p0 the latest
    rows += [("u2", "p1", 5), ("u2", "p2", 6)]
    rows += [("u3", f"p{k}", "") for k in (3, 4, 5, 6, 7)]
    rows += [("u4", "p1", 10), ("u4", "p2", 11), ("u4", "p3", 12), ("u4", "p1", 13), ("u4", "p4", 14)]
    return build_graph(tmp_path, PRODUCTS, _inter(rows))


def _pairs(g, df):
    u = g.nodes["User"]["id"].to_numpy()[df["src"].to_numpy()]
    p = g.nodes["Product"]["id"].to_numpy()[df["dst"].to_numpy()]
    return set(zip(u, p))


def test_loo_holds_out_last_and_second_to_last_by_time(graph):
    s = make_split(graph, "loo")
    assert _pairs(graph, s.test) == {("u1", "p0"), ("u3", "p7"), ("u4", "p4")}
    assert _pairs(graph, s.valid) == {("u1", "p1"), ("u3", "p6"), ("u4", "p3")}
    assert ("u2", "p1") in _pairs(graph, s.train) and ("u2", "p2") in _pairs(graph, s.train)
    assert s.info["duplicates_dropped"] == 1  # u4's second p1


def test_time_split_holds_out_last_20_percent(graph):
    s = make_split(graph, "time")
    test = _pairs(graph, s.test)
    assert {p for u, p in test if u == "u1"} == {"p0", "p1"}  # 20% of 10, the two latest
    assert {p for u, p in _pairs(graph, s.valid) if u == "u1"} == {"p2"}  # 10% of the 8 left
    assert not any(u == "u2" for u, _ in test)


def test_splits_are_reproducible(graph):
    a, b = make_split(graph, "loo", seed=3), make_split(graph, "loo", seed=3)
    pd.testing.assert_frame_equal(a.test, b.test)
    pd.testing.assert_frame_equal(a.train, b.train)


@pytest.mark.parametrize("kind", ["loo", "time"])
def test_no_test_pair_reaches_the_graph_models_are_fitted_on(graph, kind):
    s = make_split(graph, kind)
    for final, held in ((True, s.test), (False, pd.concat([s.valid, s.test]))):
        fit = s.fit_graph(graph, final).edges["INTERACTED"]
        fit_pairs = set(zip(fit["src"], fit["dst"]))
        assert not fit_pairs & set(zip(held["src"], held["dst"]))
    # the store's own graph is untouched
    assert len(graph.edges["INTERACTED"]) == 22


def test_assert_no_leak_names_the_pair():
    a = pd.DataFrame({"src": [0, 1], "dst": [5, 6]})
    with pytest.raises(AssertionError, match=r"user 1, product 6"):
        assert_no_leak(a, pd.DataFrame({"src": [1], "dst": [6]}))


def test_time_order_without_timestamps_is_arrival_order():
    df = pd.DataFrame({"src": [0, 0, 0], "dst": [1, 2, 3], "seq": [2, 0, 1],
                       "timestamp": pd.array([None, None, None], dtype="Int64")})
    assert time_order(df)["dst"].tolist() == [2, 3, 1]


def test_file_split_maps_ids_and_drops_unknown_users_and_repeats(graph, tmp_path):
    f = tmp_path / "test.csv"
    _inter([("u1", "p10", "2020-01-01"), ("u3", "p11", ""), ("stranger", "p10", ""),
            ("u1", "p3", "")]).to_csv(f, index=False)  # u1 already bought p3 in training: a repeat
    s = make_split(graph, "file", test_file=f)
    assert _pairs(graph, s.test) == {("u1", "p10"), ("u3", "p11")}
    assert s.info["test_users_unknown"] == 1 and s.info["test_repeats_dropped"] == 1
    # validation is each user's last training item (users with >= 3)
    assert _pairs(graph, s.valid) == {("u1", "p0"), ("u3", "p7"), ("u4", "p4")}
    assert len(s.fit_interactions(True)) == 21  # the store's 22 rows minus u4's duplicate


def test_file_split_validates_on_a_random_holdout_when_the_test_file_is_not_the_future(graph, tmp_path):
    # the test rows predate each user's last training row (a per-user random holdout with dates, like
    # amazon-beauty-kg's time_test.csv): validation must be a random holdout of the same per-user share
    f = tmp_path / "test.csv"
    _inter([("u1", "p10", 1), ("u1", "p11", 2), ("u4", "p10", 1), ("u4", "p11", 2)]).to_csv(f, index=False)
    s = make_split(graph, "file", test_file=f, seed=3)
    assert s.info["test_future_pct"] == 0 and s.info["valid_random"] == 1
    frac = 4 / (4 + 21)
    per_user = s.valid.groupby("src").size()
    users = graph.nodes["User"]["id"].to_numpy()
    assert {users[u]: n for u, n in per_user.items()} == {"u1": round(frac * 10), "u3": 1, "u4": 1}
    assert _pairs(graph, s.valid) != {("u1", "p0"), ("u3", "p7"), ("u4", "p4")}  # not simply the last ones
    again = make_split(graph, "file", test_file=f, seed=3)
    pd.testing.assert_frame_equal(s.valid, again.valid)
    assert_no_leak(s.train, pd.concat([s.valid, s.test]))


def test_bad_arguments(graph, tmp_path):
    with pytest.raises(ValueError, match="split kind must be one of"):
        make_split(graph, "random")
    with pytest.raises(ValueError, match="needs a test file"):
        make_split(graph, "file")


@pytest.mark.parametrize("kind", ["loo", "time"])
def test_cold_products_are_held_out_of_every_fitting_row(graph, kind):
    s = make_split(graph, kind, seed=1, cold_frac=0.25)
    assert len(s.cold_items) == round(0.25 * graph.edges_of("INTERACTED")["dst"].nunique())
    assert set(s.cold["dst"]) <= set(s.cold_items) and len(s.cold) > 0
    for part in (s.train, s.valid, s.test):
        assert not part["dst"].isin(s.cold_items).any()
    assert not s.fit_graph(graph, final=True).edges_of("INTERACTED")["dst"].isin(s.cold_items).any()
    # every interaction with a cold product went to `cold` (duplicates once)
    inter = graph.edges_of("INTERACTED")
    n_cold = inter[inter["dst"].isin(s.cold_items)][["src", "dst"]].drop_duplicates()
    assert len(s.cold) == len(n_cold)
    assert np.array_equal(make_split(graph, kind, seed=1, cold_frac=0.25).cold_items, s.cold_items)
    assert make_split(graph, kind, seed=1).cold is None
    with pytest.raises(ValueError, match="cold_frac must be in"):
        make_split(graph, kind, cold_frac=1.0)


def test_cold_products_leave_the_test_file_too(graph, tmp_path):
    f = tmp_path / "test.csv"
    _inter([("u1", "p10", "2020-01-01"), ("u1", "p11", "2020-01-02")]).to_csv(f, index=False)
    s = make_split(graph, "file", test_file=f, cold_frac=0.5, seed=0)
    assert not s.test["dst"].isin(s.cold_items).any()
    assert set(s.cold["dst"]) <= set(s.cold_items)
