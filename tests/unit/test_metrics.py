"""Metrics against hand-computed values on a tiny case."""
import math

import numpy as np
import pytest
import scipy.sparse as sp

from fusion.metrics import (catalog_coverage, evaluate_model, evaluate_scores, hit_rate_at_k, mrr_at_k,
                                       ndcg_at_k, recall_at_k, top_k)

# 3 users, 6 items. Ranked lists (best first) and relevant items:
#   user 0: [0, 1, 2, 3]  relevant {1, 3}  -> hits at ranks 2 and 4
#   user 1: [4, 5, 0, 1]  relevant {5}     -> hit at rank 2
#   user 2: [2, 3, 4, 5]  relevant {0}     -> no hit
TOP = np.array([[0, 1, 2, 3], [4, 5, 0, 1], [2, 3, 4, 5]])
REL = sp.csr_matrix(np.array([[0, 1, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0]], dtype=np.float32))
L2 = math.log2


def test_recall():
    # k=2: user0 1/2, user1 1/1, user2 0 ; k=4: 2/2, 1, 0
    assert recall_at_k(TOP, REL, 2) == pytest.approx((0.5 + 1 + 0) / 3)
    assert recall_at_k(TOP, REL, 4) == pytest.approx((1 + 1 + 0) / 3)


def test_ndcg():
    u0_k2 = (1 / L2(3)) / (1 + 1 / L2(3))
    u0_k4 = (1 / L2(3) + 1 / L2(5)) / (1 + 1 / L2(3))
    u1 = 1 / L2(3)  # one relevant item: ideal DCG is 1
    assert ndcg_at_k(TOP, REL, 2) == pytest.approx((u0_k2 + u1 + 0) / 3)
    assert ndcg_at_k(TOP, REL, 4) == pytest.approx((u0_k4 + u1 + 0) / 3)


def test_hit_rate_and_mrr():
    assert hit_rate_at_k(TOP, REL, 1) == pytest.approx(0.0)
    assert hit_rate_at_k(TOP, REL, 2) == pytest.approx(2 / 3)
    assert mrr_at_k(TOP, REL, 4) == pytest.approx((0.5 + 0.5 + 0) / 3)
    assert mrr_at_k(TOP, REL, 1) == pytest.approx(0.0)


def test_users_without_test_items_are_ignored():
    rel = sp.vstack([REL, sp.csr_matrix((1, 6), dtype=np.float32)]).tocsr()
    top = np.vstack([TOP, [[0, 1, 2, 3]]])
    assert recall_at_k(top, rel, 4) == pytest.approx(recall_at_k(TOP, REL, 4))


def test_coverage():
    assert catalog_coverage(TOP, 6, 2) == pytest.approx(len({0, 1, 4, 5, 2, 3}) / 6)
    assert catalog_coverage(TOP, 6, 1) == pytest.approx(3 / 6)


def test_top_k_masks_training_items_and_breaks_ties_by_column():
    scores = np.array([[5.0, 4.0, 4.0, 1.0]])
    assert top_k(scores, 3).tolist() == [[0, 1, 2]]
    train = sp.csr_matrix(np.array([[1, 0, 0, 0]], dtype=np.float32))
    assert top_k(scores, 3, train).tolist() == [[1, 2, 3]]


def test_shape_errors_name_what_was_expected():
    with pytest.raises(ValueError, match="fewer than k=5"):
        recall_at_k(TOP, REL, 5)
    with pytest.raises(ValueError, match="exclude has shape"):
        top_k(np.zeros((2, 3)), 1, sp.csr_matrix((1, 3)))


def test_training_item_is_never_counted_as_a_hit():
    # the best-scored item is a training item of user 0 and also (wrongly) in test: it must be masked
    scores = np.array([[9.0, 1.0, 0.5]])
    train = sp.csr_matrix(np.array([[1, 0, 0]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[1, 0, 1]], dtype=np.float32))
    m = evaluate_scores(scores, test, train, ks=(1, 2))
    assert m["recall@1"] == 0.0 and m["recall@2"] == pytest.approx(0.5)


class _Fixed:
    def __init__(self, s):
        self.s = s

    def score(self, users):
        return self.s[users]


def test_evaluate_model_cold_start_slice():
    # 2 users, 4 items; item 3 has no training interaction (cold)
    s = np.array([[0.1, 0.2, 0.3, 0.9], [0.9, 0.1, 0.2, 0.3]])
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 0, 1, 1], [0, 0, 1, 1]], dtype=np.float32))
    cold = np.array([False, False, False, True])
    m, c = evaluate_model(_Fixed(s), test, train, ks=(1, 2), cold_items=cold)
    # user 0 (train item 0) ranks [3, 2]: both test items; user 1 (train item 1) ranks [0, 3]: a miss, then item 3
    assert m["recall@1"] == pytest.approx((0.5 + 0.0) / 2)
    assert c["users"] == 2
    assert c["recall@1"] == pytest.approx((1.0 + 0.0) / 2)
    assert c["recall@2"] == pytest.approx((1.0 + 1.0) / 2)


def test_evaluate_cold_ranks_the_cold_products_among_themselves():
    from fusion.metrics import evaluate_cold
    # 3 users, 5 items; items 3 and 4 are cold (held out); user 2 has no cold interaction
    s = np.array([[0.9, 0.8, 0.7, 0.1, 0.2], [0.0, 0.0, 0.0, 0.5, 0.4], [1.0, 0.0, 0.0, 0.3, 0.3]])
    cold = sp.csr_matrix(np.array([[0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]], dtype=np.float32))
    c = evaluate_cold(_Fixed(s), cold, np.array([3, 4]), ks=(1, 2))
    # among the cold items user 0 ranks [4, 3] (miss, hit), user 1 ranks [3, 4] (miss, hit)
    assert c["users"] == 2 and c["items"] == 2
    assert c["recall@1"] == 0.0 and c["recall@2"] == 1.0
    assert c["ndcg@2"] == pytest.approx(1 / math.log2(3))
    # against the whole catalog user 0's cold item is out of the top 2; user 1's is 2nd
    assert c["recall@2_all"] == pytest.approx(0.5)
    empty = evaluate_cold(_Fixed(s), sp.csr_matrix((3, 5), dtype=np.float32), np.array([3, 4]), ks=(1,))
    assert empty["users"] == 0 and empty["recall@1"] is None
