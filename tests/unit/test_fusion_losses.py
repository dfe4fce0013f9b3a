"""Each loss against its formula on tiny tensors."""
from __future__ import annotations

import math

import pytest
import torch

from fusion.losses import bpr_loss, info_nce_loss, kg_path_loss, l2_regularization, softmax_preference_loss


def test_bpr_matches_formula():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    want = -(math.log(1 / (1 + math.exp(-1))) + math.log(1 / (1 + math.exp(1)))) / 2
    assert bpr_loss(pos, neg).item() == pytest.approx(want, rel=1e-6)
    # [B, S] negatives broadcast against each positive
    assert bpr_loss(pos, torch.stack([neg, neg], 1)).item() == pytest.approx(want, rel=1e-6)


def test_softmax_preference_matches_formula_and_mask():
    s = torch.tensor([[1.0, 2.0, 3.0]])
    want = -math.log(math.exp(2) / (math.exp(1) + math.exp(2) + math.exp(3)))
    assert softmax_preference_loss(s, torch.tensor([1])).item() == pytest.approx(want, rel=1e-6)
    mask = torch.tensor([[False, True, True]])  # the target itself is never masked
    want_m = -math.log(math.exp(2) / (math.exp(1) + math.exp(2)))
    assert softmax_preference_loss(s, torch.tensor([1]), mask).item() == pytest.approx(want_m, rel=1e-6)


def test_info_nce_matches_formula():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    n = torch.tensor([[-1.0, 0.0]])
    t = 0.5
    sims = torch.tensor([[1.0, 1 / math.sqrt(2), -1.0], [0.0, 1 / math.sqrt(2), 0.0]]) / t
    want = -(torch.log_softmax(sims, 1)[0, 0] + torch.log_softmax(sims, 1)[1, 1]) / 2
    assert info_nce_loss(q, p, n, temperature=t).item() == pytest.approx(want.item(), rel=1e-5)
    # a perfectly aligned batch with a low temperature has near-zero loss
    eye = torch.eye(4)
    assert info_nce_loss(eye, eye, temperature=0.01).item() < 1e-6


def test_kg_path_prefers_real_path_end():
    u = torch.tensor([[1.0, 0.0]])
    good, bad = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    assert kg_path_loss(u, good, bad) < kg_path_loss(u, bad, good)
    assert kg_path_loss(u, good, bad).item() == pytest.approx(-math.log(1 / (1 + math.exp(-3))), rel=1e-6)


def test_l2_is_mean_squared_norm():
    a, b = torch.ones(2, 3), torch.zeros(2, 3)
    assert l2_regularization(a, b).item() == pytest.approx(3.0)


def test_kg_path_softmax_ranks_the_end_among_the_candidates():
    import numpy as np
    import scipy.sparse as sp
    from fusion.trainer import _kg_path_softmax
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    user = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    ends = torch.tensor([2, 1])
    # every product: the formula row by row
    s = user @ items.T
    want = -(torch.log_softmax(s, 1)[0, 2] + torch.log_softmax(s, 1)[1, 1]) / 2
    assert _kg_path_softmax(user, items, ends, torch.tensor([0]), None, None, np.array([0, 1])).item() == \
        pytest.approx(want.item(), rel=1e-6)
    # sampled: the path ends [1, 2] plus the preference loss's negatives (cand after the batch's positive 0)
    cand = torch.tensor([0, 3])
    pool = torch.tensor([1, 2, 3])
    sp_ = user @ items[pool].T
    want_s = -(torch.log_softmax(sp_, 1)[0, 1] + torch.log_softmax(sp_, 1)[1, 0]) / 2
    assert _kg_path_softmax(user, items, ends, torch.tensor([0]), cand, None, np.array([0, 1])).item() == \
        pytest.approx(want_s.item(), rel=1e-6)
    # a user's own training product (user 0 bought product 3) leaves the denominator
    seen = sp.csr_matrix(np.array([[0, 0, 0, 1], [0, 0, 0, 0]]))
    sm = sp_.clone()
    sm[0, 2] = float("-inf")
    want_m = -(torch.log_softmax(sm, 1)[0, 1] + torch.log_softmax(sm, 1)[1, 0]) / 2
    assert _kg_path_softmax(user, items, ends, torch.tensor([0]), cand, seen, np.array([0, 1])).item() == \
        pytest.approx(want_m.item(), rel=1e-6)
