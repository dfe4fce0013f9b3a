"""fusion.Recommender on the trained Scientific model (skipped when work/scientific/model is absent)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT

pytestmark = pytest.mark.realdata

MODEL = ROOT / "work" / "scientific" / "model"


@pytest.fixture(scope="module")
def rec():
    if not (MODEL / "model.pt").exists() or not (ROOT / "work" / "scientific" / "store" / "CURRENT").exists():
        pytest.skip(f"no trained Scientific model at {MODEL} (scripts/train.py --store work/scientific/store ...)")
    from fusion import Recommender

    return Recommender.load(MODEL, store=ROOT / "work" / "scientific" / "store")


def test_scientific_queries(rec):
    assert len(rec.product_ids) == 4344 and rec.product_vectors.shape[0] == 4344
    user = "0"
    out = rec.recommend(user, k=10)
    assert len(out) == 10 and (out["source"] == "model").all()
    seen = {rec.product_ids[c] for c in rec._history.seen(rec._history.user(user))}
    assert not seen & set(out["product_id"])
    staples = rec.search("stainless steel staples", k=10)
    assert staples["title"].str.contains("stapl", case=False).sum() >= 8
    assert rec.similar("1", k=5)["title"].str.contains("stapl", case=False).sum() >= 1  # bought alongside
    assert rec.similar("1", k=5, text_weight=0.5)["title"].str.contains("stapl", case=False).sum() >= 4
    assert rec.recommend(user, k=5, categories="Fasteners")["category"].str.contains("Fasteners").all()
    paths = rec.explain(user, out["product_id"].iloc[0])
    assert all(p.nodes[0] == ("User", user, user) for p in paths)


def test_scientific_cold_start_readds_land_near_originals(rec):
    cat = rec._state.catalog
    cols = np.random.default_rng(0).choice(len(cat), 20, replace=False)
    rows = pd.DataFrame({"product_id": [f"{cat.ids[c]}#again" for c in cols], "title": cat.titles[cols],
                         "description": cat.descriptions[cols], "brand": cat.brand_text[cols],
                         "categories": cat.category_text[cols]})
    ids = rec.add_products(rows)
    v = rec.product_vectors
    new = v[-20:] / np.linalg.norm(v[-20:], axis=1, keepdims=True)
    old = v[cols] / np.linalg.norm(v[cols], axis=1, keepdims=True)
    assert (new * old).sum(1).mean() > 0.75  # 0.819 over 400 products (scripts/eval_cold_start.py)
    hits = [str(cat.ids[c]) in set(rec.similar(i, k=10)["product_id"]) for i, c in zip(ids, cols)]
    assert np.mean(hits) >= 0.8
