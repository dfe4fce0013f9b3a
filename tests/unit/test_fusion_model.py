"""The graph encoder and fusion model on tiny graphs the tests build."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fusion import FusionConfig, FusionRecommender, LossConfig
from fusion.data import TrainData
from fusion.data import build_histories, build_path_sampler


def _data(graph):
    return TrainData.from_graph(graph, seed=0)


def test_entity_index_and_relation_attention(tiny_graph):
    from gnn import GNNConfig, KGEncoder, build_entity_index
    from kg import to_hetero_data
    idx = build_entity_index(to_hetero_data(tiny_graph))
    assert idx.total == sum(tiny_graph.num_nodes(l) for l in ("User", "Product", "Brand", "Category"))
    assert set(idx.relations) == {"INTERACTED", "HAS_BRAND", "IN_CATEGORY", "SUBCATEGORY_OF", "ALSO_BOUGHT",
                                  "BOUGHT_TOGETHER"}
    for a in idx.adjacency:  # symmetric
        d = a.to_dense()
        assert torch.allclose(d, d.T)
    enc = KGEncoder(idx, GNNConfig(dim=8, num_layers=2))
    w = enc.relation_weights()
    has = idx.presence.sum(1) > 0
    assert torch.allclose(w[has].sum(1), torch.ones(int(has.sum())))
    out = enc()
    assert out.shape == (idx.total, 8)
    out.sum().backward()
    assert enc.relation_logits.grad is not None and enc.relation_logits.grad.abs().sum() > 0


def test_cold_product_gets_embedding_from_its_brand_and_category(tiny_graph):
    from gnn import GNNConfig, KGEncoder, build_entity_index
    from kg import to_hetero_data
    idx = build_entity_index(to_hetero_data(tiny_graph))
    enc = KGEncoder(idx, GNNConfig(dim=8, num_layers=1))
    with torch.no_grad():
        enc.embedding.weight.zero_()
        b = idx.offsets["Brand"] + tiny_graph.id_map("Brand").index("acme tools")
        enc.embedding.weight[b] = 1.0
    p4 = idx.offsets["Product"] + tiny_graph.id_map("Product").index("p4")
    # p4's own embedding is zero, but one propagation step brings its brand in
    assert enc()[p4].abs().sum() > 0


def test_histories_follow_time_order(tiny_graph):
    data = _data(tiny_graph)
    h = build_histories(tiny_graph, data.column_of)
    ids = tiny_graph.nodes["Product"]["id"].to_numpy()[data.items]
    u3 = tiny_graph.id_map("User").index("u3")
    assert [ids[c] for c in h.items[h.indptr[u3]:h.indptr[u3 + 1]]] == ["p4", "p1"]
    items, mask = h.last(np.array([u3]), 3)
    assert mask.tolist() == [[False, True, True]]
    assert [ids[c] for c in items[0, 1:].tolist()] == ["p4", "p1"]


def test_history_as_set_holds_the_other_items():
    from fusion.data import Histories
    # user 0: items 10, 11, 12; user 1: one item; user 2: five items
    h = Histories(np.array([0, 3, 4, 9]), np.array([10, 11, 12, 20, 30, 31, 32, 33, 34]))
    items, mask = h.others(np.array([1, 3, 6]), np.array([0, 1, 2]), 3)
    assert mask.tolist() == [[False, True, True], [False, False, False], [True, True, True]]
    assert items[0, 1:].tolist() == [12, 10]   # every other item of user 0, never the target 11
    assert items[2].tolist() == [33, 34, 30]   # 3 of user 2's 4 others, wrapping round
    with pytest.raises(ValueError, match="history_order must be one of"):
        FusionConfig(history_order="random")


def test_set_history_weighs_items_equally(tiny_graph, monkeypatch):
    import fusion.recommender as rec_mod
    monkeypatch.setattr(rec_mod, "text_embeddings", lambda g, items, *a, **k: torch.randn(len(items), 16,
                        generator=torch.Generator().manual_seed(0)))
    cfg = FusionConfig(history_order="set")
    cfg.gnn.dim, cfg.train.epochs, cfg.train.batch_size = 8, 2, 4
    rec = FusionRecommender(cfg).fit(_data(tiny_graph))
    m = rec.model_
    items = torch.randn(5, 8)
    v = m.history_vectors(items, torch.tensor([[0, 1, 2]]), torch.tensor([[True, True, True]]))
    v_rev = m.history_vectors(items, torch.tensor([[2, 1, 0]]), torch.tensor([[True, True, True]]))
    assert torch.allclose(v, v_rev, atol=1e-6)  # order does not matter in a set
    assert np.isfinite(rec.score(np.arange(3))).all()


def test_path_sampler_returns_real_path_ends(tiny_graph):
    data = _data(tiny_graph)
    ps = build_path_sampler(tiny_graph, data.column_of)
    ids = tiny_graph.nodes["Product"]["id"].to_numpy()[data.items]
    col = {p: i for i, p in enumerate(ids)}
    ends, ok = ps.sample(np.full(200, col["p1"]), np.random.default_rng(0))
    reach = {ids[e] for e in ends[ok]}
    # p1 shares its brand with p2 and is related to p2 (ALSO_BOUGHT); X9 is outside the catalog
    assert reach == {"p2"}
    assert [g[0] for g in build_path_sampler(tiny_graph, data.column_of, ["related"]).groups] == ["related"]


def test_kg_path_options_are_checked_and_train(tiny_graph):
    with pytest.raises(ValueError, match="kg_path_kind must be one of bpr, softmax"):
        LossConfig(kg_path_kind="listwise")
    with pytest.raises(ValueError, match=r"unknown group\(s\) \['brands'\]"):
        LossConfig(kg_path_groups=["brands"])
    for negatives in (0, 3):  # every product, and the sampled candidates
        cfg = FusionConfig(use_text=False)
        cfg.gnn.dim, cfg.train.epochs, cfg.train.batch_size = 8, 1, 4
        cfg.loss.kg_path_kind, cfg.loss.kg_path_groups, cfg.loss.num_negatives = "softmax", ["brand"], negatives
        rec = FusionRecommender(cfg).fit(_data(tiny_graph))
        assert np.isfinite(rec.state_.history[0]["kg_path"]) and np.isfinite(rec.score(np.arange(3))).all()


@pytest.mark.parametrize("variant", ["fusion", "fusion_no_text", "fusion_no_gnn", "fusion_no_kg_loss",
                                     "fusion_no_text_loss", "fusion_no_pref_loss", "fusion_no_item_item"])
def test_every_variant_trains_and_scores(tiny_graph, variant, monkeypatch):
    import fusion.recommender as rec_mod
    # a fake 16-d text embedding keeps this test independent of the real encoder
    monkeypatch.setattr(rec_mod, "text_embeddings", lambda g, items, *a, **k: torch.randn(len(items), 16,
                        generator=torch.Generator().manual_seed(0)))
    cfg = FusionConfig().ablation(variant)
    cfg.gnn.dim, cfg.train.epochs, cfg.train.batch_size = 8, 2, 4
    rec = FusionRecommender(cfg, name=variant).fit(_data(tiny_graph))
    s = rec.score(np.arange(3))
    assert s.shape == (3, 4) and np.isfinite(s).all()
    assert rec.state_.epoch == 2 and len(rec.state_.history) == 2
    # without validation the term uses the configured reg/weight; the ablation has none
    assert (rec.item_item_ is None) == (variant == "fusion_no_item_item")


def test_config_round_trip_and_ablations(tmp_path):
    cfg = FusionConfig()
    cfg.gnn.num_layers = 3
    cfg.save(tmp_path)
    assert FusionConfig.load(tmp_path) == cfg
    assert not cfg.ablation("fusion_no_text").use_text
    assert cfg.ablation("fusion_no_kg_loss").loss.kg_path == 0.0
    assert not cfg.ablation("fusion_no_item_item").item_item.enabled and cfg.item_item.enabled
    with pytest.raises(ValueError, match="unknown ablation 'nope'"):
        cfg.ablation("nope")
    with pytest.raises(ValueError, match="unknown FusionConfig field"):
        FusionConfig.from_dict({"bogus": 1})


def _fake_text(monkeypatch):
    import fusion.recommender as rec_mod
    monkeypatch.setattr(rec_mod, "text_embeddings", lambda g, items, *a, **k: torch.randn(
        len(items), 16, generator=torch.Generator().manual_seed(0)))


def _tiny_cfg(epochs):
    cfg = FusionConfig()
    cfg.gnn.dim, cfg.train.epochs, cfg.train.batch_size = 8, epochs, 4
    return cfg


def test_training_resumes_from_checkpoint(tiny_graph, tmp_path, monkeypatch):
    _fake_text(monkeypatch)
    data = _data(tiny_graph)
    first = FusionRecommender(_tiny_cfg(2), out_dir=str(tmp_path)).fit(data)
    assert (tmp_path / "checkpoint.pt").exists() and first.state_.epoch == 2
    logs = []
    import fusion.recommender as rec_mod
    real = rec_mod.train_model
    monkeypatch.setattr(rec_mod, "train_model", lambda *a, **k: real(*a, **{**k, "log": logs.append}))
    again = FusionRecommender(_tiny_cfg(3), out_dir=str(tmp_path)).fit(data)
    assert any("resumed" in line and "after epoch 2" in line for line in logs)
    assert again.state_.epoch == 3 and [r["epoch"] for r in again.state_.history] == [1, 2, 3]
    # the terms fitted after training are not part of what a checkpoint must match: only they are redone
    post = _tiny_cfg(3)
    post.cold_mix.graph_offset, post.item_item.reg = "mean", 123.0
    logs.clear()
    third = FusionRecommender(post, out_dir=str(tmp_path)).fit(data)
    assert any("resumed" in line for line in logs) and third.state_.epoch == 3
    # a checkpoint of another config is not resumed into this one: a clear error naming what differs
    other = _tiny_cfg(4)
    other.user_tower, other.train.lr = "attention", 1e-3
    with pytest.raises(ValueError, match=r"checkpoint\.pt was written by a training run with a different config "
                                         r"\(train\.lr, user_tower differ\)"):
        FusionRecommender(other, out_dir=str(tmp_path)).fit(data)


def test_saved_model_reloads_with_identical_scores(tiny_graph, tmp_path, monkeypatch):
    _fake_text(monkeypatch)
    data = _data(tiny_graph)
    rec = FusionRecommender(_tiny_cfg(2)).fit(data)
    rec.save(tmp_path / "m")
    for f in ("config.json", "model.pt", "items.json", "text.pt", "meta.json"):
        assert (tmp_path / "m" / f).exists()
    again = FusionRecommender.load(tmp_path / "m", data)
    np.testing.assert_allclose(again.score(np.arange(3)), rec.score(np.arange(3)), rtol=1e-5, atol=1e-6)


def test_early_stopping_keeps_best_epoch(tiny_graph, monkeypatch):
    _fake_text(monkeypatch)
    import scipy.sparse as sp
    data = _data(tiny_graph)
    data.valid = sp.csr_matrix(data.user_items.shape, dtype=np.float32)
    data.valid[0, 3] = 1.0
    cfg = _tiny_cfg(6)
    cfg.train.patience = 2
    rec = FusionRecommender(cfg).fit(data)
    s = rec.state_
    assert all("valid_ndcg@10" in r for r in s.history)
    best = max(r["valid_ndcg@10"] for r in s.history)
    assert s.best_ndcg == pytest.approx(best) and s.epoch <= 6


def test_catalog_only_graph_drops_external_products(tiny_graph):
    from fusion.features import build_inputs
    data = _data(tiny_graph)
    full = build_inputs(tiny_graph, data.items, None, external_products=True)
    cat = build_inputs(tiny_graph, data.items, None, external_products=False)
    assert cat.index.num_nodes["Product"] == 4 and full.index.num_nodes["Product"] == 5
    # item columns map to the same products' entities, relative to the Product block
    assert (cat.item_entity - cat.index.offsets["Product"]).tolist() == [0, 1, 2, 3]
    nnz = {r: a._nnz() for r, a in zip(cat.index.relations, cat.index.adjacency)}
    assert nnz["ALSO_BOUGHT"] == 2  # p1-p2 both ways; p1-X9 dropped


def test_cold_product_vector_comes_from_content_only(tiny_graph):
    from fusion.features import build_inputs
    from fusion.model import FusionModel
    e = tiny_graph.edges_of("INTERACTED")
    p4 = tiny_graph.id_map("Product").index("p4")
    g = tiny_graph.with_interactions(e[e["dst"] != p4])  # p4 is now cold: brand, category, text only
    data = _data(g)
    inputs = build_inputs(g, data.items, None, True)
    col = int(data.column_of[p4])
    text = torch.randn(len(data.items), 16)
    for content_only in (True, False):
        cfg = FusionConfig(cold_content_only=content_only, item_dropout=0.5)
        cfg.gnn.dim = 8
        m = FusionModel(cfg, inputs.index, inputs.item_entity, text_dim=16).eval()
        before = m.item_vectors(m.entity_embeddings(), text)[col].detach().clone()
        with torch.no_grad():
            m.gnn.embedding.weight[inputs.item_entity[col]] += 5.0  # p4's free embedding
        after = m.item_vectors(m.entity_embeddings(), text)[col].detach()
        assert torch.allclose(before, after) == content_only
        # in eval mode no warm product is ever dropped
        warm = [c for c in range(len(data.items)) if c != col]
        assert m.content_only_entities() is None or not m.content_only_entities()[inputs.item_entity[warm]].any()


def test_run_fusion_scores_a_saved_model_and_an_ablation_on_the_same_split(tiny_graph, tmp_path, monkeypatch):
    import json
    from fusion.evaluation import make_split, run_fusion
    _fake_text(monkeypatch)
    split = make_split(tiny_graph, "loo", seed=0)
    rec = FusionRecommender(_tiny_cfg(2)).fit(TrainData.from_graph(split.fit_graph(tiny_graph, True), seed=0))
    rec.save(tmp_path / "m", extra={"split": "loo", "seed": 0, "cold_items": 0.0, "best_valid_ndcg@10": 0.5})
    assert rec.item_item_ is not None and (tmp_path / "m" / "item_item.npz").exists()
    res = run_fusion(tiny_graph, split, ["fusion", "fusion_no_kg_loss", "fusion_no_item_item"],
                     model_dir=str(tmp_path / "m"), log=lambda m: None)
    assert [r.name for r in res] == ["fusion", "fusion_no_kg_loss", "fusion_no_item_item"]
    # the last is the saved network without the term: no retraining, no term in its params
    assert res[0].params["item_item"]["reg"] == rec.item_item_.reg and res[2].params["item_item"] is None
    assert res[2].params["best_epoch"] == res[0].params["best_epoch"]
    assert res[0].params["best_valid_ndcg@10"] == 0.5 and res[0].params["model_dir"] == str(tmp_path / "m")
    assert all(np.isfinite(r.metrics["ndcg@10"]) for r in res)
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    (tmp_path / "m" / "meta.json").write_text(json.dumps({**meta, "cold_items": 0.05}))
    with pytest.raises(ValueError, match="cold items 0.05"):
        run_fusion(tiny_graph, split, ["fusion"], model_dir=str(tmp_path / "m"), log=lambda m: None)


def test_two_fits_of_one_config_agree(tiny_graph, monkeypatch):
    """The seed covers the initial weights as well as the batches: a re-run gives the same model."""
    _fake_text(monkeypatch)
    data = _data(tiny_graph)
    torch.manual_seed(123)  # whatever the process's RNG state before
    a = FusionRecommender(_tiny_cfg(2)).fit(data).score(np.arange(3))
    torch.manual_seed(456)
    b = FusionRecommender(_tiny_cfg(2)).fit(data).score(np.arange(3))
    np.testing.assert_array_equal(a, b)


def test_item_item_term_skipped_on_catalogs_too_big_for_it(tiny_graph, monkeypatch, capsys):
    """Above item_item.max_items the model trains and scores with the network alone, and says why."""
    _fake_text(monkeypatch)
    cfg = _tiny_cfg(1)
    cfg.item_item.max_items = 2
    import fusion.recommender as fr
    calls = []
    real = fr.choose_item_item
    monkeypatch.setattr(fr, "choose_item_item", lambda *a, **k: calls.append(1) or real(*a, **k))
    rec = FusionRecommender(cfg).fit(_data(tiny_graph))
    assert rec.item_item_ is None and np.isfinite(rec.score(np.arange(2))).all()
    assert "item-item term skipped" in capsys.readouterr().err
    assert not calls  # decided before scoring the validation users (GBs of scores on a large catalog)


def test_fused_adam_trains_the_same_model(tiny_graph, monkeypatch):
    """train.fused_adam (the fast kernel for large embedding tables) is the same optimiser: same scores up
    to rounding, and the option survives a config round trip."""
    _fake_text(monkeypatch)
    data = _data(tiny_graph)
    plain = FusionRecommender(_tiny_cfg(2)).fit(data).score(np.arange(3))
    cfg = _tiny_cfg(2)
    cfg.train.fused_adam = True
    fused = FusionRecommender(cfg).fit(data).score(np.arange(3))
    np.testing.assert_allclose(fused, plain, rtol=1e-3, atol=1e-4)
    from fusion.config import FusionConfig
    assert FusionConfig.from_dict(cfg.to_dict()).train.fused_adam is True
