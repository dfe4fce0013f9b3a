"""scripts/recommend_all.py on the tiny two-shop model: every user's top k in the Parquet file, exactly as
`Recommender.recommend_batch` ranks them, written in several chunks."""
from __future__ import annotations

import json

import pandas as pd

from fusion import Recommender
from query_fixtures import trained_model
from scripts_loader import script

recommend_all = script("recommend_all")


def test_every_users_top_k_is_written_as_recommend_batch_ranks_it(tmp_path):
    model, store = trained_model()
    out, figures = tmp_path / "recs.parquet", tmp_path / "figures.json"
    assert recommend_all.main(["--model", str(model), "--out", str(out), "--k", "4", "--chunk", "5",
                               "--json", str(figures), "--quiet"]) == 0
    got = pd.read_parquet(out)
    rec = Recommender.load(model, event_log=None)
    want = rec.recommend_batch(rec.user_ids, k=4)
    assert list(got.columns) == ["user_id", "rank", "product_id", "score", "model"]
    assert got["user_id"].tolist() == want["user_id"].tolist()
    assert got["product_id"].tolist() == want["product_id"].astype(str).tolist()
    assert (got["rank"].to_numpy() == want["rank"].to_numpy()).all()
    assert (got["model"] == rec.model_version).all()
    f = json.loads(figures.read_text())
    assert f["users"] == rec.num_users == got["user_id"].nunique() and f["rows"]["RECOMMENDED"] == len(got)
    assert not (tmp_path / ".recs.parquet.tmp").exists()
