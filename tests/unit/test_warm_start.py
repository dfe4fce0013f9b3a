"""Warm start (`fusion.warm_start`, `FusionRecommender.warm_start`) on the tiny two-shop graph of query_fixtures:
the saved model knows neither user b9, user x, product B9 nor product D0 (new brand Delta); the grown graph has
all of them."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

import fusion.recommender as rec_mod
from fusion import FusionConfig, FusionRecommender, Recommender
from fusion.data import TrainData
from fusion.features import entity_ids
from fusion.warm_start import default_epochs, entity_rows, transfer_weights
from kg import KnowledgeGraph, merge_files
from kg.export import products_frame

from query_fixtures import HashEncoder, _texts, interactions, products

ENC = HashEncoder()
NEW_PRODUCT = {"product_id": "D0", "title": "Delta drill", "description": "cordless drill tool", "brand": "Delta",
               "categories": "Tools > Drills"}


def _graph(tmp, name: str, prods: pd.DataFrame, inter: pd.DataFrame) -> KnowledgeGraph:
    d = tmp / name
    d.mkdir()
    prods.to_csv(d / "products.csv", index=False)
    inter.to_csv(d / "interactions.csv", index=False)
    g = KnowledgeGraph()
    merge_files(g, d / "products.csv", d / "interactions.csv", show_progress=False)
    return g


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setattr(rec_mod, "text_embeddings",
                        lambda g, items, *a, **k: ENC.encode_texts(products_frame(g, items).pipe(_texts)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add wake-up costs
    yield
    torch.set_num_threads(threads)


def _config(dim: int = 16) -> FusionConfig:
    cfg = FusionConfig()
    cfg.gnn.dim, cfg.train.epochs, cfg.train.batch_size, cfg.history_len = dim, 4, 64, 5
    return cfg


@pytest.fixture
def saved(tmp_path):
    """(saved model dir, old graph, grown graph)."""
    inter = interactions()
    old_inter = inter[(inter["user_id"] != "x") & (inter["user_id"] != "b9") & (inter["product_id"] != "B9")]
    old = _graph(tmp_path, "old", products()[lambda p: p["product_id"] != "B9"], old_inter)
    grown_inter = pd.concat([inter, pd.DataFrame([{"user_id": "b9", "product_id": "D0", "timestamp": 2000}])])
    new = _graph(tmp_path, "new", pd.concat([products(), pd.DataFrame([NEW_PRODUCT])]), grown_inter)
    rec = FusionRecommender(_config()).fit(TrainData.from_graph(old))
    rec.save(tmp_path / "old_model")
    return tmp_path / "old_model", old, new


def _fresh(cfg: FusionConfig, graph: KnowledgeGraph):
    rec = FusionRecommender(cfg)
    data = TrainData.from_graph(graph)
    torch.manual_seed(cfg.train.seed)
    model = rec._build(data)
    items = graph.nodes["Product"]["id"].to_numpy()[data.items].astype(str).tolist()
    return model, entity_ids(graph, cfg.external_products), items


def _row(model, graph, label: str, ext_id: str) -> torch.Tensor:
    idx = model.gnn.index
    return model.gnn.embedding.weight[idx.offsets[label] + graph.id_map(label).index(ext_id)].detach()


def test_entity_rows_match_on_type_and_id():
    old = {"User": ["u1", "u2"], "Product": ["p1", "p2", "p3"]}
    new = {"User": ["u2", "u9", "u1"], "Product": ["p3", "p1"], "Brand": ["b1"]}
    new_rows, old_rows, kept, fresh, dropped = entity_rows(old, new)
    assert dict(zip(new_rows.tolist(), old_rows.tolist())) == {0: 1, 2: 0, 3: 4, 4: 2}
    assert kept == {"User": 2, "Product": 2, "Brand": 0}
    assert fresh == {"User": 1, "Product": 0, "Brand": 1} and dropped == {"User": 0, "Product": 1, "Brand": 0}


def test_known_entities_keep_their_rows_new_ones_their_fresh_initialisation(saved):
    model_dir, old, new = saved
    state = torch.load(model_dir / "model.pt")
    cfg = FusionConfig.load(model_dir)
    old_model, _, _ = _fresh(cfg, old)
    old_model.load_state_dict(state)
    model, ents, items = _fresh(cfg, new)
    init = model.gnn.embedding.weight.detach().clone()
    report = transfer_weights(model, model_dir, ents, items)
    for label, ext in (("User", "a3"), ("User", "b0"), ("Brand", "acme"), ("Brand", "bolt"), ("Product", "A0"),
                       ("Category", "food")):
        assert torch.equal(_row(model, new, label, ext), _row(old_model, old, label, ext)), (label, ext)
    for label, ext in (("User", "x"), ("User", "b9"), ("Product", "B9"), ("Product", "D0"), ("Brand", "delta")):
        r = new.id_map(label).index(ext) + model.gnn.index.offsets[label]
        assert torch.equal(model.gnn.embedding.weight[r], init[r]), (label, ext)
    assert report.new == {"User": 2, "Product": 2, "Brand": 1, "Category": 1, "items": 2}
    assert report.kept["User"] == 19 and report.kept["Brand"] == 2 and report.kept["items"] == 20
    assert "gnn.embedding.weight" in report.row_matched
    for key, value in model.state_dict().items():  # everything else has the saved shape: copied as it is
        if key != "gnn.embedding.weight":
            assert torch.equal(value, old_model.state_dict()[key]), key


def test_warm_start_trains_saves_and_reloads_with_the_query_api(saved, tmp_path):
    model_dir, _, new = saved
    data = TrainData.from_graph(new)
    rec = FusionRecommender.warm_start(model_dir, data, epochs=1)
    assert rec.state_.epoch == 1 and len(rec.state_.history) == 1
    assert rec.item_item_ is not None and rec.item_item_.num_items == data.num_items  # refitted on the new catalog
    out = rec.save(tmp_path / "warm")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["warm_start_from"] == str(model_dir.resolve()) and meta["warm_epochs"] == 1
    assert isinstance(meta["warm_seconds"], float) and meta["warm_start"]["new"]["User"] == 2
    assert meta["best_epoch"] == 4  # the source's from-scratch count, so warm starts chain with the same default
    assert json.loads((out / "entities.json").read_text())["User"] == new.nodes["User"]["id"].astype(str).tolist()
    q = Recommender.load(out, store=new, text_encoder=ENC, event_log=None)
    top = q.recommend("b9", k=5)  # a user the saved model never saw, known now
    assert len(top) == 5 and "D0" not in set(top["product_id"])  # seen: excluded
    assert set(q.recommend("x", k=3)["product_id"]).isdisjoint({"A0", "B0"})


def test_only_new_products_are_encoded_known_ones_keep_their_saved_text(saved, monkeypatch):
    model_dir, _, new = saved
    encoded = []

    def encode(g, items, *a, **k):
        encoded.append(g.nodes["Product"]["id"].to_numpy()[items].tolist())
        return ENC.encode_texts(products_frame(g, items).pipe(_texts))

    monkeypatch.setattr(rec_mod, "text_embeddings", encode)
    data = TrainData.from_graph(new)
    rec = FusionRecommender.warm_start(model_dir, data, epochs=1)
    assert encoded == [["B9", "D0"]]
    saved_text = torch.load(model_dir / "text.pt")
    old_ids = json.loads((model_dir / "items.json").read_text())
    ids = new.nodes["Product"]["id"].to_numpy()[data.items].tolist()
    assert torch.equal(rec.text_embeddings[ids.index("A3")], saved_text[old_ids.index("A3")])
    d0 = ids.index("D0")
    assert torch.equal(rec.text_embeddings[d0], ENC.encode_texts(products_frame(new, data.items[[d0]]).pipe(_texts))[0])
    assert rec.text_embeddings.shape == (22, saved_text.shape[1])


def test_default_epochs_are_a_quarter_of_the_saved_best(saved):
    assert [default_epochs(b) for b in (0, 1, 4, 5, 6, 7, 8, 14)] == [1, 1, 1, 2, 2, 2, 2, 4]
    model_dir, _, new = saved
    rec = FusionRecommender.warm_start(model_dir, TrainData.from_graph(new))
    assert rec.state_.epoch == 1  # the saved model's best epoch is 4


def test_missing_entities_file_says_retrain_once(saved, tmp_path):
    model_dir, _, new = saved
    legacy = tmp_path / "legacy"
    shutil.copytree(model_dir, legacy)
    (legacy / "entities.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"no entities\.json.*retrain it once"):
        FusionRecommender.warm_start(legacy, TrainData.from_graph(new), epochs=1)


def test_a_different_dim_is_a_clear_error(saved):
    model_dir, _, new = saved
    model, ents, items = _fresh(_config(dim=8), new)
    with pytest.raises(ValueError, match=r"gnn\.dim=16.*gnn\.dim=8"):
        transfer_weights(model, model_dir, ents, items)


def test_train_script_warm_starts_on_the_split_final_graph(saved, tmp_path, capsys):
    from kg import EmbeddedStore
    from scripts_loader import script

    model_dir, _, new = saved
    store = tmp_path / "store"
    EmbeddedStore(store).write(new)
    out = tmp_path / "warm_cli"
    assert script("train").main(["--store", str(store), "--out", str(out), "--split", "loo", "--cold-items", "0",
                                 "--warm-start", str(model_dir), "--warm-epochs", "2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "warm start from" in printed and "peak RSS" in printed
    meta = json.loads((out / "meta.json").read_text())
    assert meta["warm_epochs"] == 2 and meta["split"] == "loo" and not (out / "checkpoint-warm.pt").exists()
    assert (out / "history.json").exists() and (out / "curves.png").exists()
    with pytest.raises(SystemExit):
        script("train").main(["--store", str(store), "--out", str(out), "--split", "loo", "--warm-epochs", "2"])
