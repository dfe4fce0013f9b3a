"""The cold products' graph term: K over the product relations, (K + b K^2) in the cold columns only."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from fusion.cold_graph import ColdGraphTerm, cold_graph_weights, combined_head, product_adjacency
from fusion.cold_mix import choose_cold_mix, pick_cold_row
from fusion.item_item import ItemItemHead
from kg_fixtures import graph_with_relations

RELATIONS = """product_id,relation,other_id
p1,also_bought,p2
p2,also_bought,p1
p1,also_viewed,p2
p3,bought_together,p2
p4,also_bought,X9
"""


@pytest.fixture
def graph(tmp_path):
    return graph_with_relations(tmp_path, RELATIONS)


def _columns(g):
    items = np.flatnonzero(g.catalog_mask)
    column_of = np.full(len(g.catalog_mask), -1, dtype=np.int64)
    column_of[items] = np.arange(len(items))
    names = g.nodes["Product"]["id"].to_numpy()[items].tolist()
    return column_of, len(items), names


def test_adjacency_is_the_normalised_union_of_product_relations_between_catalog_products(graph):
    column_of, n, names = _columns(graph)
    k = product_adjacency(graph, column_of, n).toarray()
    c = {p: names.index(p) for p in names}
    assert np.allclose(k, k.T) and np.all(np.diag(k) == 0)
    # p1-p2 given three times (two relations, both directions) is one edge; p2 also links p3; p4 only X9
    deg = {"p1": 1, "p2": 2, "p3": 1, "p4": 0}
    assert k[c["p1"], c["p2"]] == pytest.approx(1 / np.sqrt(deg["p1"] * deg["p2"]))
    assert k[c["p2"], c["p3"]] == pytest.approx(1 / np.sqrt(2))
    assert k[c["p4"]].sum() == 0 and k[c["p1"], c["p3"]] == 0


def test_term_holds_one_and_two_hop_paths_in_the_cold_columns_only(graph):
    column_of, n, names = _columns(graph)
    k = product_adjacency(graph, column_of, n)
    c = {p: names.index(p) for p in names}
    cold = np.array([c["p3"], c["p4"]])
    g = cold_graph_weights(k, cold, hop2=3.0, top_k=10).toarray()
    kd = k.toarray()
    want = kd + 3.0 * kd @ kd
    assert g[c["p2"], c["p3"]] == pytest.approx(want[c["p2"], c["p3"]])  # one hop
    assert want[c["p1"], c["p3"]] > 0  # two hops, through p2
    assert g[c["p1"], c["p3"]] == pytest.approx(want[c["p1"], c["p3"]])
    assert g[c["p3"], c["p3"]] == 0  # never itself (K^2 has a diagonal)
    assert np.all(g[:, [c["p1"], c["p2"]]] == 0) and np.all(g[:, c["p4"]] == 0)
    pruned = cold_graph_weights(k, cold, hop2=3.0, top_k=1).toarray()
    col = want[:, c["p3"]].copy()
    col[c["p3"]] = 0
    assert np.flatnonzero(pruned[:, c["p3"]]).tolist() == [int(np.argmax(col))]  # the strongest kept (p1: 1.5)
    assert cold_graph_weights(k, np.zeros(0, np.int64)).nnz == 0


def test_combined_head_adds_the_cold_columns_to_the_item_item_term_and_scores_as_both():
    w = sp.csr_matrix(np.array([[0, 2.0, 0], [1.0, 0, 0], [0, 0, 0]], dtype=np.float32))
    ii = ItemItemHead(w, gamma=0.5, reg=10.0, weight=0.1)
    g = sp.csr_matrix(np.array([[0, 0, 3.0], [0, 0, 1.0], [0, 0, 0]], dtype=np.float32))
    cg = ColdGraphTerm(g, gamma=2.0, weight=1.0, hop2=3.0)
    x = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))
    both = combined_head(ii, cg)
    assert np.allclose(both.scores(x), ii.scores(x) + cg.scores(x))
    assert (both.reg, both.weight) == (10.0, 0.1)  # the record of the item-item term is kept
    assert np.allclose(combined_head(None, cg).scores(x), cg.scores(x))
    assert combined_head(ii, None) is ii and combined_head(None, None) is None


def test_term_round_trips_through_its_file(tmp_path):
    g = sp.random(6, 6, density=0.3, format="csr", dtype=np.float32, random_state=0)
    ColdGraphTerm(g, 0.7, 2.0, 3.0).save(tmp_path)
    back = ColdGraphTerm.load(tmp_path)
    assert (back.gamma, back.weight, back.hop2) == (pytest.approx(0.7), 2.0, 3.0)
    assert np.allclose(back.weights.toarray(), g.toarray())
    assert ColdGraphTerm.load(tmp_path / "none") is None


@pytest.mark.parametrize("offset", ["max", "mean"])
def test_the_offset_keeps_the_order_among_cold_products_and_leaves_warm_ones(tmp_path, offset):
    """Each user's cold products give back the max (or mean) of their term: a per-user shift, so the order
    among cold products is the plain term's and warm products do not move; with "max" no cold product ends
    above its score without the term, with "mean" the user's mean cold score is kept."""
    rng = np.random.default_rng(1)
    n, cold = 12, np.array([8, 9, 10, 11])
    g = np.zeros((n, n), np.float32)
    g[:8][:, cold] = rng.random((8, 4)) * (rng.random((8, 4)) < 0.6)
    g = sp.csr_matrix(g)
    xd = (rng.random((5, n)) < 0.4) & (np.arange(n) < 8)
    xd[4] = False  # a user whose history reaches no cold product: offset 0
    x = sp.csr_matrix(xd, dtype=np.float32)
    plain = ColdGraphTerm(g, 1.5, 1.0, 3.0)
    term = ColdGraphTerm(g, 1.5, 1.0, 3.0, offset, cold)
    base = rng.normal(size=(5, n)).astype(np.float32)
    up = base + plain.scores(x)
    got = term.apply_offsets(base + term.scores(x), x)
    assert term.shifts and not plain.shifts and np.all(plain.offsets(x) == 0)
    assert np.allclose(got[:, :8], base[:, :8])  # warm products: untouched
    lift = (up - base)[:, cold]
    want = lift.max(axis=1) if offset == "max" else lift.mean(axis=1)
    assert np.allclose(term.offsets(x), want, atol=1e-6) and term.offsets(x)[4] == 0
    assert np.allclose(got[:, cold], up[:, cold] - want[:, None], atol=1e-5)  # the same order among cold ones
    if offset == "max":
        assert np.all(got[:, cold] <= base[:, cold] + 1e-6)
    else:
        assert np.allclose(got[:, cold].mean(axis=1), base[:, cold].mean(axis=1), atol=1e-5)
    term.save(tmp_path)
    back = ColdGraphTerm.load(tmp_path)
    assert back.offset == offset and np.array_equal(back.cold, cold)
    assert np.allclose(back.offsets(x), term.offsets(x))


def test_choose_cold_mix_takes_the_graph_term_when_it_ranks_the_validation_cold_products_better():
    """Network scores carry no signal, the graph term names each user's cold product: v > 0 wins; without
    signal in the graph term, v = 0 (first) stays."""
    rng = np.random.default_rng(0)
    n_users, n_items, cold = 40, 30, np.arange(20, 30)
    ui = sp.csr_matrix((rng.random((n_users, n_items)) < 0.2) & (np.arange(n_items) < 20), dtype=np.float32)
    answer = cold[np.arange(n_users) % 10]
    valid = sp.csr_matrix((np.ones(n_users), (np.arange(n_users), answer)), shape=(n_users, n_items))
    users = np.arange(n_users)
    text = rng.normal(size=(n_items, 8)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    scores = rng.normal(size=(n_users, len(cold))).astype(np.float32)
    graph = np.zeros((n_users, len(cold)), np.float32)
    graph[np.arange(n_users), np.arange(n_users) % 10] = 1.0
    w, _, rows = choose_cold_mix(scores, ui, users, valid, cold, text, text[cold].mean(axis=0), [0.0, 0.5],
                                 graph=graph, graph_weights=[0.0, 1.0, 4.0])
    best = max(rows, key=lambda r: r["valid_cold_ndcg@10"])
    assert best["graph_weight"] > 0 and best["valid_cold_ndcg@10"] == pytest.approx(1.0)
    assert len(rows) == 6 and {r["graph_weight"] for r in rows} == {0.0, 1.0, 4.0}
    flat = np.zeros_like(graph)
    _, _, rows0 = choose_cold_mix(scores, ui, users, valid, cold, text, text[cold].mean(axis=0), [0.0, 0.5],
                                  graph=flat, graph_weights=[0.0, 1.0])
    first = max(range(len(rows0)), key=lambda i: (rows0[i]["valid_cold_ndcg@10"], -i))
    assert rows0[first]["graph_weight"] == 0.0


def test_a_graph_weight_that_costs_warm_ranking_is_not_chosen():
    rows = [{"weight": w, "graph_weight": v, "valid_cold_ndcg@10": c}
            for (w, v, c) in [(0.0, 0.0, 0.17), (0.25, 0.0, 0.18), (0.25, 0.1, 0.20), (0.25, 0.5, 0.22)]]
    assert pick_cold_row([dict(r) for r in rows]) == 3  # the cold slice alone takes v = 0.5
    warm = {0.0: 0.0650, 0.1: 0.0648, 0.5: 0.0620}  # v = 0.5 costs 4.6% of warm NDCG@10, v = 0.1 0.3%
    picked = [dict(r) for r in rows]
    assert pick_cold_row(picked, warm, tolerance=0.005) == 2
    assert [r["warm_ok"] for r in picked] == [True, True, True, False]
    assert picked[3]["valid_ndcg@10"] == 0.0620
    assert pick_cold_row([dict(r) for r in rows], {0.0: 0.0650, 0.1: 0.06, 0.5: 0.06}) == 1  # only v = 0 passes
    rest = [dict(r) for r in rows if r["graph_weight"]]  # the rows of a later KG share: no v = 0 among them
    assert pick_cold_row(rest, {0.0: 0.0650, 0.1: 0.06, 0.5: 0.06}) == -1
    assert not any(r["warm_ok"] for r in rest)


def test_an_unknown_offset_is_a_clear_config_error():
    from fusion import FusionConfig
    from fusion.config import ColdMixConfig

    with pytest.raises(ValueError, match=r"cold_mix\.graph_offset must be one of max, mean, none, got 'median'"):
        ColdMixConfig(graph_offset="median")
    d = FusionConfig().to_dict()
    d["cold_mix"]["graph_offset"] = "median"
    with pytest.raises(ValueError, match="graph_offset"):
        FusionConfig.from_dict(d)


def test_cooccurrence_paths_equal_the_cosine_co_occurrence_times_the_relations():
    from fusion.cold_graph import cooccurrence_paths

    rng = np.random.default_rng(3)
    x = sp.csr_matrix(rng.random((20, 9)) < 0.3, dtype=np.float32)
    x[:, 8] = 0  # a product nobody has: no co-occurrence row
    x.eliminate_zeros()
    k = sp.random(9, 3, density=0.5, format="csc", dtype=np.float32, random_state=1)
    xd = x.toarray()
    deg = xd.sum(axis=0)
    c = (xd.T @ xd) / np.sqrt(np.outer(np.maximum(deg, 1), np.maximum(deg, 1)))
    np.fill_diagonal(c, 0)
    assert np.allclose(cooccurrence_paths(x, k).toarray(), c @ k.toarray(), atol=1e-6)


def test_the_co_purchase_part_joins_the_term_at_its_relative_norm(graph):
    column_of, n, names = _columns(graph)
    k = product_adjacency(graph, column_of, n)
    c = {p: names.index(p) for p in names}
    cold = np.array([c["p3"]])
    x = np.zeros((3, n), np.float32)
    x[0, [c["p2"], c["p4"]]] = x[1, [c["p4"], c["p1"]]] = x[2, c["p2"]] = 1
    ui = sp.csr_matrix(x)
    plain = cold_graph_weights(k, cold, 3.0, 10)
    both = cold_graph_weights(k, cold, 3.0, 10, ui, cf=0.5)
    assert np.array_equal(cold_graph_weights(k, cold, 3.0, 10, ui, cf=0.0).toarray(), plain.toarray())
    extra = (both - plain).toarray()
    # p4 has no relation to p3 but is bought with p2, related to p3: only the co-purchase paths name it
    assert plain[c["p4"], c["p3"]] == 0 and extra[c["p4"], c["p3"]] > 0
    assert np.linalg.norm(extra) == pytest.approx(0.5 * np.linalg.norm(plain.toarray()), rel=1e-4)
