"""The cold products' text mix (`fusion.cold_mix`) and the validation cold products it is chosen on."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from fusion.cold_mix import ColdTextMix, choose_cold_mix, cold_columns, score_spread
from fusion.evaluation.splits import make_split
from fusion.vectors import history_means, unit_rows

from eval_fixtures import build_graph


def _mix(w: float, scale: float = 2.0, d: int = 4, t: int = 6, seed: int = 0) -> ColdTextMix:
    rng = np.random.default_rng(seed)
    return ColdTextMix(w, scale, rng.normal(size=d).astype(np.float32), rng.normal(size=t).astype(np.float32))


def test_weight_zero_is_the_network_and_one_is_the_text_order():
    rng = np.random.default_rng(1)
    scores, prof, text = rng.normal(size=(5, 7)), rng.normal(size=(5, 6)), rng.normal(size=(7, 6))
    mean = scores.mean(axis=1)
    np.testing.assert_allclose(_mix(0.0).mix(scores, mean, prof, text), scores, rtol=1e-6)
    full = _mix(1.0).mix(scores, mean, prof, text)
    assert (np.argsort(-full, axis=1) == np.argsort(-(prof @ text.T), axis=1)).all()
    half = _mix(0.5).mix(scores, mean, prof, text)
    # each user's mean score over the cold products does not move (m_u is their mean)
    np.testing.assert_allclose(half.mean(axis=1) - 0.5 * 2.0 * (prof @ (text - _mix(0.5).text_mean).T).mean(axis=1),
                               mean, rtol=1e-5, atol=1e-5)


def test_cold_vectors_give_the_mixed_score_as_one_dot_product():
    rng = np.random.default_rng(2)
    mix = _mix(0.3)
    users, prof = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3, 6)).astype(np.float32)
    fused, text = rng.normal(size=(5, 4)).astype(np.float32), rng.normal(size=(5, 6)).astype(np.float32)
    f2, t2 = mix.cold_vectors(fused, text)
    dot = users @ f2.T + prof @ t2.T
    np.testing.assert_allclose(dot, mix.mix(users @ fused.T, users @ mix.fused_mean, prof, text), rtol=1e-4, atol=1e-5)


def test_save_and_load_round_trip(tmp_path):
    mix = ColdTextMix(0.25, 1.5, np.ones(3, np.float32), np.arange(4, dtype=np.float32), valid_ndcg=0.2)
    mix.save(tmp_path)
    back = ColdTextMix.load(tmp_path)
    assert (back.weight, back.scale, back.valid_ndcg) == (0.25, 1.5, 0.2)
    np.testing.assert_array_equal(back.text_mean, mix.text_mean)
    assert ColdTextMix.load(tmp_path / "nothing") is None


def test_cold_columns_and_spread():
    ui = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 0, 0, 1]], dtype=np.float32))
    assert cold_columns(ui).tolist() == [1, 2]
    s = np.array([[1.0, 3.0], [0.0, 2.0]])
    assert score_spread(s, s / 4) == pytest.approx(4.0)
    assert score_spread(s, np.zeros_like(s)) == 1.0


def _world(network_signal: float, text_signal: float, seed: int = 0):
    """Users with a taste t_u: cold product i is theirs when its text is nearest; network and text scores each
    carry that signal with the given strength (the rest noise)."""
    rng = np.random.default_rng(seed)
    n_users, n_warm, n_cold, dim = 200, 30, 40, 8
    text = unit_rows(rng.normal(size=(n_warm + n_cold, dim)))
    taste = unit_rows(rng.normal(size=(n_users, dim)))
    # history: the 3 warm products nearest to each user's taste -> the text profile points at the taste
    warm_aff = taste @ text[:n_warm].T
    hist = np.argsort(-warm_aff, axis=1)[:, :3]
    ui = sp.csr_matrix((np.ones(hist.size, np.float32), (np.repeat(np.arange(n_users), 3), hist.ravel())),
                       shape=(n_users, n_warm + n_cold))
    cols = np.arange(n_warm, n_warm + n_cold)
    truth = np.argmax(taste @ text[cols].T, axis=1)
    valid = sp.csr_matrix((np.ones(n_users, np.float32), (np.arange(n_users), cols[truth])), shape=ui.shape)
    onehot = np.zeros((n_users, n_cold))
    onehot[np.arange(n_users), truth] = 1.0
    scores = (network_signal * onehot + rng.normal(size=onehot.shape)).astype(np.float32)
    prof = history_means(ui, text.astype(np.float32))
    noisy_text = text.copy()
    if text_signal == 0:
        noisy_text[cols] = unit_rows(rng.normal(size=(n_cold, dim)))  # text says nothing of taste
    return scores, ui, np.arange(n_users), valid, cols, noisy_text.astype(np.float32), prof


def test_choice_takes_the_text_when_the_network_knows_nothing():
    scores, ui, users, valid, cols, text, _ = _world(network_signal=0.0, text_signal=1.0)
    w, a, rows = choose_cold_mix(scores, ui, users, valid, cols, text, text[cols].mean(axis=0),
                                 [0.0, 0.25, 0.5, 0.75, 1.0])
    assert w >= 0.75
    by_w = {r["weight"]: r["valid_cold_ndcg@10"] for r in rows}
    assert by_w[w] > by_w[0.0] + 0.1 and a > 0


def test_choice_keeps_the_network_when_the_text_knows_nothing():
    scores, ui, users, valid, cols, text, _ = _world(network_signal=4.0, text_signal=0.0)
    w, _, rows = choose_cold_mix(scores, ui, users, valid, cols, text, text[cols].mean(axis=0),
                                 [0.0, 0.25, 0.5, 0.75, 1.0])
    assert w <= 0.25
    by_w = {r["weight"]: r["valid_cold_ndcg@10"] for r in rows}
    assert by_w[w] >= by_w[1.0] + 0.2


@pytest.fixture()
def graph(tmp_path):
    rng = np.random.default_rng(0)
    prods = pd.DataFrame({"product_id": [f"p{i}" for i in range(40)], "title": [f"item {i}" for i in range(40)]})
    rows = [{"user_id": f"u{u}", "product_id": f"p{i}", "timestamp": t}
            for u in range(30) for t, i in enumerate(rng.choice(40, 6, replace=False))]
    return build_graph(tmp_path, prods, pd.DataFrame(rows))


@pytest.mark.parametrize("kind", ["loo", "time"])
def test_validation_cold_products_are_out_of_tuning_and_back_in_the_final_fit(graph, kind):
    s = make_split(graph, kind, seed=3, cold_frac=0.1)
    plain = make_split(graph, kind, seed=3, cold_frac=0.1, valid_cold_frac=0.0)
    assert len(s.valid_cold_items) == round(0.1 * pd.concat([plain.train, plain.valid])["dst"].nunique()) > 0
    assert not set(s.valid_cold_items) & set(s.cold_items)
    tuning = s.fit_graph(graph, final=False).edges_of("INTERACTED")
    assert not tuning["dst"].isin(s.valid_cold_items).any()
    assert not s.valid["dst"].isin(s.valid_cold_items).any()
    assert set(s.valid_cold["dst"]) <= set(s.valid_cold_items) and len(s.valid_cold)
    # the final fit graph and the test rows are those of a split without validation cold products
    key = ["src", "dst", "seq"]
    pd.testing.assert_frame_equal(s.fit_interactions(True)[key].reset_index(drop=True),
                                  plain.fit_interactions(True)[key].reset_index(drop=True))
    pd.testing.assert_frame_equal(s.test, plain.test)
    assert plain.valid_cold is None and "valid_cold" in s.summary()


GRAPH_RELATIONS = pd.DataFrame({"product_id": ["A9", "A9", "B9", "A0"],
                                "relation": ["also_bought", "also_bought", "also_viewed", "also_bought"],
                                "other_id": ["A1", "A2", "B3", "A1"]})


def _train_with_mix(root, weight: float, graph_weight: float = 0.0, offset: str = "max", kg_share: float = 0.0):
    """The query fixtures' two-shop catalog with A9 and B9 stripped of their interactions (cold, like C0),
    trained with cold mix weight `weight` (no validation: the configured weight is used); with
    `graph_weight`, A9 and B9 have product relations and the cold graph term gets that weight v (with that
    per-user `offset`) and the KG similarity's share `kg_share` (`fusion.kg_similarity`)."""
    import torch

    import fusion.recommender as rec_mod
    from fusion import FusionConfig, FusionRecommender
    from fusion.data import TrainData
    from kg import EmbeddedStore, KnowledgeGraph, merge_files
    from kg.export import products_frame
    from query_fixtures import HashEncoder, _texts, interactions, products

    root.mkdir(parents=True, exist_ok=True)
    p, i = root / "products.csv", root / "interactions.csv"
    products().to_csv(p, index=False)
    inter = interactions()
    inter[~inter["product_id"].isin(["A9", "B9"])].to_csv(i, index=False)
    r = None
    if graph_weight:
        r = root / "relations.csv"
        GRAPH_RELATIONS.to_csv(r, index=False)
    graph = KnowledgeGraph()
    merge_files(graph, p, i, r, show_progress=False)
    EmbeddedStore(root / "store").write(graph)
    enc = HashEncoder()
    cfg = FusionConfig()
    cfg.gnn.dim, cfg.train.epochs, cfg.train.batch_size, cfg.history_len = 16, 6, 64, 5
    cfg.cold_mix.weight, cfg.cold_mix.graph_weight, cfg.cold_mix.graph_offset = weight, graph_weight, offset
    cfg.cold_mix.graph_kg, cfg.cold_mix.graph_kg_dim = kg_share, 64
    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rec_mod, "text_embeddings", lambda g, items, *a, **k: enc.encode_texts(
            products_frame(g, items).pipe(_texts)))
        fr = FusionRecommender(cfg).fit(TrainData.from_graph(graph, seed=0))
    fr.save(root / "model", extra={"store": str(root / "store")})
    return fr, graph, enc


@pytest.mark.parametrize("index,weight,graph_weight,offset,kg_share", [
    ("exact", 0.6, 0.0, "max", 0.0), ("faiss", 0.6, 0.0, "max", 0.0), ("exact", 0.6, 2.0, "max", 0.0),
    ("faiss", 0.6, 2.0, "max", 0.0), ("exact", 0.6, 2.0, "mean", 0.0), ("exact", 0.6, 2.0, "none", 0.0),
    ("faiss", 0.6, 2.0, "none", 0.0), ("exact", 0.0, 2.0, "max", 0.0), ("faiss", 0.0, 2.0, "max", 0.0),
    ("exact", 0.6, 2.0, "max", 0.5), ("faiss", 0.6, 2.0, "max", 0.5)])
def test_the_query_api_ranks_cold_products_as_the_evaluated_model_scores_them(tmp_path, index, weight,
                                                                              graph_weight, offset, kg_share):
    if index == "faiss":
        pytest.importorskip("faiss")
    from fusion import Recommender

    fr, graph, enc = _train_with_mix(tmp_path, weight, graph_weight, offset, kg_share)
    assert (fr.cold_mix_ is not None and fr.cold_mix_.weight == 0.6) == bool(weight)
    assert (fr.cold_graph_ is not None) == bool(graph_weight)
    if graph_weight:  # A9 and B9 have relations (C0 none): their columns of the term, and only theirs
        cols = {fr._item_ids[c] for c in np.flatnonzero(fr.cold_graph_.weights.getnnz(axis=0))}
        assert fr.cold_graph_.gamma > 0 and fr.cold_graph_.kg_share == kg_share
        if kg_share:  # the KG similarity reaches C0 too, through its brand and categories
            assert {"A9", "B9"} <= cols <= {"A9", "B9", "C0"} and "C0" in cols
        else:
            assert cols == {"A9", "B9"}
        assert fr.cold_graph_.shifts == (offset != "none") and fr.cold_graph_.offset == offset
        # the offset comes off all three cold products, C0 (no relation) too
        assert {fr._item_ids[c] for c in fr.cold_graph_.cold} == {"A9", "B9", "C0"}
    rec = Recommender.load(tmp_path / "model", index=index, text_encoder=enc, event_log=None)
    ids = fr._item_ids
    cold = {"A9", "B9", "C0"}
    for user in ("a3", "b2", "x"):
        u = int(np.flatnonzero(graph.nodes["User"]["id"].to_numpy() == user)[0])
        want = dict(zip(ids, fr.score(np.array([u]))[0]))
        got = rec.recommend(user, k=len(ids), exclude_seen=False)
        assert len(got) == len(ids)
        for pid, score in zip(got["product_id"], got["score"]):
            assert score == pytest.approx(want[pid], rel=1e-4, abs=1e-4), (user, pid)
    if not weight:
        return
    # the mix moved the cold products' scores and only theirs
    plain = fr.without_cold_mix()
    a3 = int(np.flatnonzero(graph.nodes["User"]["id"].to_numpy() == "a3")[0])
    diff = fr.score(np.array([a3]))[0] - plain.score(np.array([a3]))[0]
    moved = {ids[c] for c in np.flatnonzero(np.abs(diff) > 1e-6)}
    assert moved and moved <= cold


def test_a_product_added_after_training_is_mixed_like_the_trained_cold_ones(tmp_path):
    from fusion import Recommender

    _train_with_mix(tmp_path, 1.0)
    from query_fixtures import HashEncoder

    rec = Recommender.load(tmp_path / "model", text_encoder=HashEncoder(), event_log=None)
    rec.add_products(pd.DataFrame([{"product_id": "N1", "title": "Fresh apple pear", "description": "sweet apple",
                                    "brand": "Acme", "categories": "Food > Fruit"},
                                   {"product_id": "N2", "title": "Steel claw hammer", "description": "workshop tool",
                                    "brand": "Bolt", "categories": "Tools > Hammers"}]))
    # w = 1: among cold products a fruit buyer's order is the text order, so the fruit newcomer beats the hammer
    top = rec.recommend("a3", k=30, exclude_seen=True)
    order = [p for p in top["product_id"] if p in {"N1", "N2"}]
    assert order == ["N1", "N2"]
    top_b = rec.recommend("b2", k=30, exclude_seen=True)
    assert [p for p in top_b["product_id"] if p in {"N1", "N2"}] == ["N2", "N1"]

def test_a_product_added_after_training_gets_no_offset_of_the_cold_graph_term(tmp_path):
    """Under the cold graph term's offset the rec rows carry one more column; a product added later has no term and
    no offset, and adding it leaves the trained products' scores as they were."""
    from fusion import Recommender
    from query_fixtures import HashEncoder

    fr, graph, _ = _train_with_mix(tmp_path, 0.6, 2.0, offset="max")
    assert fr.cold_graph_.shifts
    rec = Recommender.load(tmp_path / "model", text_encoder=HashEncoder(), event_log=None)
    before = rec.recommend("a3", k=len(fr._item_ids), exclude_seen=False)
    rec.add_products(pd.DataFrame([{"product_id": "N1", "title": "Fresh apple pear", "description": "sweet apple",
                                    "brand": "Acme", "categories": "Food > Fruit"}]))
    after = rec.recommend("a3", k=len(fr._item_ids) + 1, exclude_seen=False)
    assert "N1" in set(after["product_id"])
    old = dict(zip(before["product_id"], before["score"]))
    for pid, score in zip(after["product_id"], after["score"]):
        if pid != "N1":
            assert score == pytest.approx(old[pid], rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("offset", ["max", "none"])
def test_the_warm_check_scores_every_graph_weight_and_the_max_offset_costs_warm_ranking_nothing(tmp_path, offset):
    """A tuned fit with validation and validation cold products runs the cold graph term's warm check
    (`FusionRecommender._warm_cost`, reusing the item-item W fitted while choosing reg): each v gets the warm
    validation NDCG@10 of the whole catalog; with the max offset no cold product rises, so no v falls below
    v = 0's."""
    import torch

    import fusion.recommender as rec_mod
    from fusion import FusionConfig, FusionRecommender
    from fusion.data import TrainData
    from kg import KnowledgeGraph, merge_files
    from kg.export import products_frame
    from query_fixtures import HashEncoder, _texts, interactions, products

    p, i, r = tmp_path / "products.csv", tmp_path / "interactions.csv", tmp_path / "relations.csv"
    products().to_csv(p, index=False)
    inter = interactions()
    # each user's order rotated, so that the held-out last items differ and every validation item is warm
    # (with the fixture's one order every user's last two products would be cold in the tuning graph)
    k = inter["product_id"].str[1:].astype(int)
    u = inter["user_id"].str[1:].map(lambda x: int(x) if x.isdigit() else 0)
    inter["timestamp"] = 1000 + (k + 3 * u) % 10
    inter.to_csv(i, index=False)
    chain = [(f"{b}{k}", f"{b}{k + 1}") for b in "AB" for k in range(9)]
    pd.DataFrame({"product_id": [a for a, _ in chain], "relation": "also_bought",
                  "other_id": [b for _, b in chain]}).to_csv(r, index=False)
    graph = KnowledgeGraph()
    merge_files(graph, p, i, r, show_progress=False)
    split = make_split(graph, "loo", seed=0, cold_frac=0.1)
    tuning = TrainData.from_graph(split.fit_graph(graph, final=False), valid=split.valid, seed=0,
                                  valid_cold=split.valid_cold)
    final = TrainData.from_graph(split.fit_graph(graph, final=True), seed=0)
    cfg = FusionConfig()
    cfg.gnn.dim, cfg.train.epochs, cfg.train.batch_size, cfg.history_len = 16, 3, 64, 5
    cfg.cold_mix.graph_weights, cfg.cold_mix.graph_offset = [0.0, 1.0, 4.0], offset
    enc = HashEncoder()
    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rec_mod, "text_embeddings", lambda g, items, *a, **k: enc.encode_texts(
            products_frame(g, items).pipe(_texts)))
        fr = FusionRecommender(cfg, tuning=tuning, refit=False).fit(final)
    rows = fr.cold_mix_tuning_
    assert {row["graph_weight"] for row in rows} == {0.0, 1.0, 4.0}
    warm = {row["graph_weight"]: row["valid_ndcg@10"] for row in rows}
    cold = np.flatnonzero(np.asarray(tuning.user_items.getnnz(axis=0)).ravel() == 0)
    assert not np.isin(np.unique(tuning.valid.indices), cold).any() and len(cold)
    assert all(v is not None for v in warm.values())
    assert fr._tuning_item_item is None  # dropped once the warm check is done
    if offset == "max":  # cold products only go down: warm validation items can only move up
        assert all(r["valid_ndcg@10"] >= warm[0.0] - 1e-12 for r in rows)
    # every (w, v > 0) was tried with every share of the KG similarity, each share with its own warm check;
    # v = 0 leaves the term out, so its rows are there once
    assert {r["graph_kg"] for r in rows} == set(cfg.cold_mix.graph_kg_mix)
    assert {r["graph_kg"] for r in rows if not r["graph_weight"]} == {0.0}
    keys = [(r["weight"], r["graph_weight"], r["graph_kg"]) for r in rows]
    assert len(keys) == len(set(keys)) == len(cfg.cold_mix.weights) * (1 + 2 * len(cfg.cold_mix.graph_kg_mix))
    best = max(rows, key=lambda r: r["valid_cold_ndcg@10"] if r["warm_ok"] else -1)
    assert fr.cold_mix_valid_ == best["valid_cold_ndcg@10"]
    if fr.cold_graph_ is not None:  # the fitted term holds the chosen share, and it is saved with it
        assert fr.cold_graph_.kg_share == fr.cold_graph_kg_choice_
        fr.save(tmp_path / "model")
        meta = json.loads((tmp_path / "model" / "meta.json").read_text())
        assert meta["cold_mix"]["graph_kg"] == fr.cold_graph_kg_choice_
