"""fusion.item_item: the EASE closed form, pruning, the head's scores and the validation choice."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from fusion.item_item import (ItemItemHead, choose_item_item, choose_next_item, ease_weights, item_item_weights,
                              last_items, last_rows, next_item_weights, prune_columns, score_scale)


def _x(seed=0, users=40, items=12, density=0.3):
    rng = np.random.default_rng(seed)
    x = (rng.random((users, items)) < density).astype(np.float32)
    x[:, -1] = 0  # one product nobody has
    return sp.csr_matrix(x)


def test_ease_weights_solve_the_constrained_least_squares():
    x = _x()
    active, b = ease_weights(x, reg=5.0)
    assert list(active) == list(range(11))
    xa = x[:, active].toarray().astype(np.float64)
    p = np.linalg.inv(xa.T @ xa + 5.0 * np.eye(len(active)))
    expected = -p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0)
    np.testing.assert_allclose(b, expected, rtol=1e-3, atol=1e-5)
    with pytest.raises(ValueError, match="reg must be > 0"):
        ease_weights(x, 0)


def test_prune_keeps_the_top_positive_weights_per_column():
    b = np.array([[0.0, 0.5, -1.0], [0.2, 0.0, 0.3], [0.9, -0.1, 0.0]], dtype=np.float32)
    w = prune_columns(b, 1).toarray()
    np.testing.assert_allclose(w, [[0, 0.5, 0], [0, 0, 0.3], [0.9, 0, 0]], rtol=1e-6)
    assert (prune_columns(b, 5).toarray() == np.maximum(b, 0)).all()
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        prune_columns(b, 0)


def test_item_item_weights_cover_every_column_and_refuse_huge_catalogs():
    x = _x()
    w = item_item_weights(x, 5.0, top_k=3, max_items=100)
    assert w.shape == (12, 12) and (w.data > 0).all()
    assert w[11].nnz == 0 and w[:, 11].nnz == 0  # no interactions, no weights
    assert (np.diff(w.tocsc().indptr) <= 3).all()
    assert w.diagonal().sum() == 0
    with pytest.raises(ValueError, match="11 products have interactions, more than item_item.max_items=10"):
        item_item_weights(x, 5.0, top_k=3, max_items=10)


def test_head_scores_lift_and_round_trip(tmp_path):
    x = _x()
    w = item_item_weights(x, 5.0, top_k=4, max_items=100)
    head = ItemItemHead(w, gamma=2.0, reg=5.0, weight=0.1)
    s = head.scores(x[:3])
    np.testing.assert_allclose(s, 2.0 * (x[:3] @ w).toarray(), rtol=1e-6)
    have = x[1].indices
    row = head.lift([np.append(have, 50)])  # a column beyond the head (added later) is ignored
    cols, vals = row.indices, row.data
    dense = np.zeros(12, np.float32)
    dense[cols] = vals
    np.testing.assert_allclose(dense, s[1], rtol=1e-5)
    assert (vals > 0).all()
    assert head.lift([np.zeros(0, np.int64)]).nnz == 0
    head.save(tmp_path)
    back = ItemItemHead.load(tmp_path)
    assert (back.weights != w).nnz == 0 and (back.gamma, back.reg, back.weight) == (2.0, 5.0, 0.1)
    assert ItemItemHead.load(tmp_path / "none") is None


def test_score_scale():
    a = np.array([[0.0, 2.0], [4.0, 6.0]])
    assert score_scale(a, a / 2) == pytest.approx(2.0)
    assert score_scale(a, np.zeros_like(a)) == 0.0


def test_choose_picks_the_term_when_it_helps_and_none_when_it_cannot():
    # users 0..29 have products {0, 1}; half of them also have 2, which is what validation holds for the rest
    n_users, n_items = 40, 6
    x = np.zeros((n_users, n_items), np.float32)
    x[:30, :2] = 1
    x[:15, 2] = 1
    x[30:, 3:5] = 1
    valid = np.zeros_like(x)
    valid[15:30, 2] = 1
    x, valid = sp.csr_matrix(x), sp.csr_matrix(valid)
    users = np.arange(15, 30)
    flat = np.tile(np.array([0, 0, 0, 0.1, 0.2, 0.3], np.float32), (len(users), 1))  # ranks 2 last
    reg, weight, rows = choose_item_item(flat, x, users, valid, [1.0, 10.0], [0.5, 2.0], top_k=5, max_items=100)
    assert weight > 0 and rows[0]["weight"] == 0 and len(rows) == 5
    assert max(r["valid_ndcg@10"] for r in rows) == 1.0 and rows[0]["valid_ndcg@10"] < 1.0
    perfect = np.tile(np.array([0, 0, 9, 0, 0, 0], np.float32), (len(users), 1))
    assert choose_item_item(perfect, x, users, valid, [1.0], [0.5], 5, 100)[1] == 0.0
    # `fitted` receives W of the chosen reg (a later scoring of the same rows reuses it), None without a term
    fitted: dict = {}
    reg, _, _ = choose_item_item(flat, x, users, valid, [1.0, 10.0], [0.5, 2.0], 5, 100, fitted=fitted)
    assert np.allclose(fitted["weights"].toarray(), item_item_weights(x, reg, 5, 100).toarray())
    choose_item_item(perfect, x, users, valid, [1.0], [0.5], 5, 100, fitted=fitted)
    assert fitted["weights"] is None


def test_next_item_weights_count_what_came_right_after_and_normalise_both_ways():
    # users: [0, 1, 2], [0, 1], [1, 1, 3], [] (time order), 5 products (4 never seen)
    indptr, items = np.array([0, 3, 5, 8, 8]), np.array([0, 1, 2, 0, 1, 1, 1, 3])
    t = next_item_weights(indptr, items, 5).toarray()
    c = np.zeros((5, 5))
    c[0, 1], c[1, 2], c[1, 3] = 2, 1, 1  # 2 -> 0 crosses users, 1 -> 1 is a repeat: neither counts
    expected = c / np.sqrt(np.outer(c.sum(1), c.sum(0)) + (c == 0))
    np.testing.assert_allclose(t, expected, rtol=1e-6)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(last_items(indptr, items, np.array([0, 2, 3, 1])), [2, 3, -1, 1])
    rows = last_rows(np.array([2, -1, 7, 0]), 5).toarray()  # -1 and a column beyond the term stay empty
    np.testing.assert_array_equal(rows.sum(1), [1, 0, 0, 1])
    assert rows[0, 2] == 1 and rows[3, 0] == 1


def test_head_adds_the_next_item_memory_of_the_last_product_and_round_trips(tmp_path):
    x = _x()
    w = item_item_weights(x, 5.0, top_k=4, max_items=100)
    t = sp.csr_matrix(np.triu(np.random.default_rng(1).random((12, 12)), 1).astype(np.float32))
    head = ItemItemHead(w, 2.0, 5.0, 0.1, next_weights=t, next_gamma=3.0, next_weight=0.02)
    assert head.uses_last
    last = np.array([4, -1, 0])
    s = head.scores(x[:3], last)
    expected = 2.0 * (x[:3] @ w).toarray()
    expected[0] += 3.0 * t[4].toarray()[0]
    expected[2] += 3.0 * t[0].toarray()[0]
    np.testing.assert_allclose(s, expected, rtol=1e-5)
    np.testing.assert_allclose(head.scores(x[:3]), 2.0 * (x[:3] @ w).toarray(), rtol=1e-6)  # no last: no memory
    lift = head.lift([x[0].indices, x[1].indices, x[2].indices], last).toarray()
    np.testing.assert_allclose(lift, s, rtol=1e-5)
    head.save(tmp_path)
    back = ItemItemHead.load(tmp_path)
    assert (back.next_weights != t).nnz == 0 and (back.next_gamma, back.next_weight) == (3.0, 0.02)
    # an item-item matrix swapped in (the cold graph's columns) keeps the memory
    other = back.with_weights(sp.csr_matrix((12, 12), dtype=np.float32), 1.0)
    np.testing.assert_allclose(other.scores(x[:1], last[:1])[0], 3.0 * t[4].toarray()[0], rtol=1e-5)
    # a head saved without the memory loads without it
    ItemItemHead(w, 2.0, 5.0, 0.1).save(tmp_path)
    assert ItemItemHead.load(tmp_path).next_weights is None and not ItemItemHead.load(tmp_path).uses_last


def test_choose_next_item_takes_the_memory_when_it_helps_and_zero_when_it_cannot():
    n_users, n_items = 20, 6
    seen = sp.csr_matrix(np.eye(n_users, n_items, dtype=np.float32) * 0)
    rel = np.zeros((n_users, n_items), np.float32)
    rel[:, 5] = 1  # everyone's next product is 5, which the scores put last
    rel = sp.csr_matrix(rel)
    scores = np.tile(np.array([0.5, 0.4, 0.3, 0.2, 0.1, 0.0], np.float32), (n_users, 1))
    nxt = np.zeros_like(scores)
    nxt[:, 5] = 1.0
    w, scale, rows = choose_next_item(scores, nxt, scores, seen, rel, [0.01, 0.5, 2.0])
    assert rows[0]["next_weight"] == 0 and len(rows) == 4
    assert w > 0 and scale > 0 and max(r["valid_ndcg@10"] for r in rows) == 1.0 > rows[0]["valid_ndcg@10"]
    wrong = np.zeros_like(scores)
    wrong[:, 1] = 1.0  # lifts a product that is never next
    rel0 = sp.csr_matrix(np.tile(np.array([1, 0, 0, 0, 0, 0], np.float32), (n_users, 1)))
    assert choose_next_item(scores, wrong, scores, seen, rel0, [0.5, 2.0])[0] == 0.0
    assert choose_next_item(scores, np.zeros_like(scores), scores, seen, rel, [0.5])[0] == 0.0  # a flat memory
