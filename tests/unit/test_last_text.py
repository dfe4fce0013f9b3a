"""fusion.last_text: the latest product's text term, alone and inside FusionRecommender (fit, score, save/load)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fusion.last_text import LastTextTerm, choose_last_text, last_text_block, last_text_scores
from fusion.vectors import unit_rows


def test_block_and_scores_read_the_latest_products_unit_text():
    rng = np.random.default_rng(0)
    text = unit_rows(rng.normal(size=(5, 4)).astype(np.float32))
    last = np.array([2, -1, 7, 0])  # -1: no history; 7: a product the term does not know
    block = last_text_block(text, last)
    np.testing.assert_allclose(block[0], text[2])
    assert not block[1].any() and not block[2].any()
    s = last_text_scores(text, last)
    assert s.shape == (4, 5)
    np.testing.assert_allclose(s[0], text @ text[2], rtol=1e-6)
    np.testing.assert_allclose(s[0, 2], 1.0, rtol=1e-6)  # a product is its own closest text
    np.testing.assert_allclose(last_text_scores(text, last, cols=np.array([4, 1])), s[:, [4, 1]])
    term = LastTextTerm(0.2, 3.0)
    np.testing.assert_allclose(term.scores(text, last), 3.0 * s, rtol=1e-6)
    np.testing.assert_allclose(term.user_block(text, last) @ text.T, 3.0 * s, rtol=1e-5, atol=1e-6)


def test_saved_form_round_trips_and_weight_zero_is_no_term():
    t = LastTextTerm(0.2, 3.5, 0.11)
    assert LastTextTerm.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    assert LastTextTerm.from_dict(None) is None
    assert LastTextTerm.from_dict({"weight": 0.0, "gamma": 0.0}) is None


def test_choose_takes_the_term_when_it_helps_and_zero_when_it_cannot():
    n_users, n_items = 20, 6
    seen = sp.csr_matrix((n_users, n_items), dtype=np.float32)
    rel = np.zeros((n_users, n_items), np.float32)
    rel[:, 5] = 1  # everyone's next product is 5, which the scores put last
    rel = sp.csr_matrix(rel)
    scores = np.tile(np.array([0.5, 0.4, 0.3, 0.2, 0.1, 0.0], np.float32), (n_users, 1))
    like = np.zeros_like(scores)
    like[:, 5] = 1.0  # 5 reads like the latest product
    w, scale, rows = choose_last_text(scores, like, scores, seen, rel, [0.05, 0.5, 2.0])
    assert [r["text_weight"] for r in rows] == [0.0, 0.05, 0.5, 2.0]
    assert w > 0 and scale > 0 and max(r["valid_ndcg@10"] for r in rows) == 1.0 > rows[0]["valid_ndcg@10"]
    wrong = np.zeros_like(scores)
    wrong[:, 1] = 1.0
    rel0 = sp.csr_matrix(np.tile(np.array([1, 0, 0, 0, 0, 0], np.float32), (n_users, 1)))
    assert choose_last_text(scores, wrong, scores, seen, rel0, [0.5, 2.0])[0] == 0.0
    assert choose_last_text(scores, np.zeros_like(scores), scores, seen, rel, [0.5])[0] == 0.0  # flat: no term


def _fit(cfg, data, tuning=None):
    import fusion.recommender as rec_mod
    from fusion import FusionRecommender
    from kg.export import products_frame
    from query_fixtures import HashEncoder, _texts

    enc = HashEncoder()
    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rec_mod, "text_embeddings", lambda g, items, *a, **k: enc.encode_texts(
            products_frame(g, items).pipe(_texts)))
        return FusionRecommender(cfg, tuning=tuning, refit=False).fit(data)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from kg import KnowledgeGraph, merge_files
    from query_fixtures import RELATIONS, interactions, products

    root = tmp_path_factory.mktemp("last_text")
    p, i, r = root / "p.csv", root / "i.csv", root / "r.csv"
    products().to_csv(p, index=False)
    interactions().to_csv(i, index=False)
    RELATIONS.to_csv(r, index=False)
    graph = KnowledgeGraph()
    merge_files(graph, p, i, r, show_progress=False)
    return graph


def _cfg():
    from fusion import FusionConfig

    cfg = FusionConfig()
    cfg.gnn.dim, cfg.train.epochs, cfg.train.batch_size, cfg.history_len = 16, 3, 64, 5
    return cfg


def test_recommender_adds_the_term_to_products_with_interactions_and_saves_it(tiny, tmp_path):
    """Without validation the configured weight is used: score = the score without the term + gamma <t_last, t_i>
    on every product with interactions (the cold C0 keeps its mixed score); save/load keeps gamma."""
    from fusion import FusionRecommender
    from fusion.cold_mix import cold_columns
    from fusion.data import TrainData
    from fusion.item_item import last_items

    cfg = _cfg()
    cfg.item_item.text_weight = 0.5
    data = TrainData.from_graph(tiny, seed=0)
    fr = _fit(cfg, data)
    assert fr.last_text_ is not None and fr.last_text_.weight == 0.5 and fr.last_text_.gamma > 0
    users = np.arange(data.user_items.shape[0])
    full = fr.score(users)
    term, fr.last_text_ = fr.last_text_, None
    without = fr.score(users)
    fr.last_text_ = term
    last = last_items(fr._hist.indptr, fr._hist.items, users)
    expected = term.gamma * last_text_scores(fr._unit_text_vectors(), last)
    cold = cold_columns(data.user_items)
    assert len(cold)  # the fixture has a product nobody bought
    expected[:, cold] = 0.0
    np.testing.assert_allclose(full - without, expected, rtol=1e-4, atol=1e-5)
    assert fr.without_item_item().last_text_ is None
    fr.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "meta.json").read_text())["last_text"]["gamma"] == pytest.approx(term.gamma)
    loaded = FusionRecommender.load(tmp_path / "m", data)
    assert loaded.last_text_ == LastTextTerm(term.weight, term.gamma, term.valid_ndcg)
    np.testing.assert_allclose(loaded.score(users), full, rtol=1e-4, atol=1e-5)


def test_weight_is_chosen_on_validation_with_zero_competing(tiny):
    from fusion.data import TrainData
    from fusion.evaluation.splits import make_split

    split = make_split(tiny, "loo", seed=0, cold_frac=0.0)
    tuning = TrainData.from_graph(split.fit_graph(tiny, final=False), valid=split.valid, seed=0)
    final = TrainData.from_graph(split.fit_graph(tiny, final=True), seed=0)
    cfg = _cfg()
    cfg.item_item.text_weights = [0.1, 1.0]
    fr = _fit(cfg, final, tuning)
    rows = fr.last_text_tuning_
    assert [r["text_weight"] for r in rows] == [0.0, 0.1, 1.0]
    best = max(rows, key=lambda r: r["valid_ndcg@10"])  # the first of equals
    assert fr.last_text_choice_ == best["text_weight"]
    assert (fr.last_text_ is None) == (best["text_weight"] == 0.0)
    assert fr.item_item_valid_ >= best["valid_ndcg@10"] - 1e-12
    cfg.item_item.text_weights = []  # an empty grid turns the term off
    assert _fit(cfg, final, tuning).last_text_ is None
