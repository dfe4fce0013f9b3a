"""scripts/eval_realtime.py end to end on the tiny two-shop graph of query_fixtures (loo split): four rows,
what each was fitted on, the shares, and that a rerun reuses the models."""
from __future__ import annotations

import json

import pytest
import torch

import fusion.recommender as rec_mod
from fusion import FusionConfig, Recommender
from fusion.evaluation.splits import make_split
from kg import KnowledgeGraph, merge_files
from kg.export import products_frame

from query_fixtures import HashEncoder, _texts, interactions, products
from scripts_loader import script

ENC = HashEncoder()


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setattr(rec_mod, "text_embeddings",
                        lambda g, items, *a, **k: ENC.encode_texts(products_frame(g, items).pipe(_texts)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def graph(tmp_path):
    products().to_csv(tmp_path / "products.csv", index=False)
    interactions().to_csv(tmp_path / "interactions.csv", index=False)
    g = KnowledgeGraph()
    merge_files(g, tmp_path / "products.csv", tmp_path / "interactions.csv", show_progress=False)
    return g


def test_replay_has_four_rows_fitted_on_what_they_claim(graph, tmp_path, capsys):
    er = script("eval_realtime")
    split = make_split(graph, "loo", seed=0, cold_frac=0.0)
    cfg = FusionConfig()
    cfg.gnn.dim, cfg.train.epochs, cfg.train.batch_size, cfg.history_len = 16, 4, 64, 5
    rows = er.replay(graph, split, cfg, tmp_path / "out")
    assert list(rows) == ["static", "record", "warm", "full"]
    n_train, n_valid = len(split.train), len(split.valid)
    assert n_valid == 20  # a0..a9, b0..b9: one validation item each
    assert rows["static"]["fit_interactions"] == n_train
    assert rows["full"]["fit_interactions"] == rows["warm"]["fit_interactions"] == n_train + n_valid
    for r in rows.values():
        assert 0.0 <= r["ndcg@10"] <= 1.0 and 0.0 <= r["recall@20"] <= 1.0
    gain = rows["full"]["ndcg@10"] - rows["static"]["ndcg@10"]
    if gain:
        assert rows["static"]["share"] == 0.0 and rows["full"]["share"] == pytest.approx(1.0)
        assert rows["record"]["share"] == pytest.approx((rows["record"]["ndcg@10"] - rows["static"]["ndcg@10"]) / gain)
    # the full retrain and the warm start were trained on the validation rows; the static model was not
    a3 = graph.id_map("User").index("a3")
    a3_valid = graph.nodes["Product"]["id"].to_numpy()[split.valid.loc[split.valid["src"] == a3, "dst"]]
    full = Recommender.load(tmp_path / "out" / "full", store=split.fit_graph(graph, final=True), event_log=None)
    static = Recommender.load(tmp_path / "out" / "static", store=split.fit_graph(graph, final=False), event_log=None)
    assert a3_valid[0] in set(full.history("a3")["product_id"])
    assert a3_valid[0] not in set(static.history("a3")["product_id"])
    full_meta = json.loads((tmp_path / "out" / "full" / "meta.json").read_text())
    static_meta = json.loads((tmp_path / "out" / "static" / "meta.json").read_text())
    assert full_meta["best_epoch"] == max(1, static_meta["best_epoch"])  # the refit protocol's epoch count
    assert json.loads((tmp_path / "out" / "warm" / "meta.json").read_text())["warm_start_from"].endswith("static")
    table = er.markdown(rows)
    assert table.count("\n") == 5 and "| record |" in table

    # a rerun reuses every model
    stamp = {r: (tmp_path / "out" / r / "model.pt").stat().st_mtime_ns for r in ("static", "full", "warm")}
    again = er.replay(graph, split, cfg, tmp_path / "out")
    assert {r: (tmp_path / "out" / r / "model.pt").stat().st_mtime_ns for r in stamp} == stamp
    assert again["warm"]["ndcg@10"] == rows["warm"]["ndcg@10"]
    # ... but the warm start, when asked for another number of epochs
    warm_meta = json.loads((tmp_path / "out" / "warm" / "meta.json").read_text())
    er.replay(graph, split, cfg, tmp_path / "out", warm_epochs=warm_meta["warm_epochs"] + 1)
    warm_again = json.loads((tmp_path / "out" / "warm" / "meta.json").read_text())
    assert warm_again["warm_epochs"] == warm_meta["warm_epochs"] + 1
    assert (tmp_path / "out" / "full" / "model.pt").stat().st_mtime_ns == stamp["full"]
    # ... and not at all for another split
    other = make_split(graph, "time", seed=0, cold_frac=0.0)
    with pytest.raises(SystemExit, match="use another --out"):
        er.replay(graph, other, cfg, tmp_path / "out")
