"""scripts/recommend_all.py --neo4j against the live server: the Parquet top k and the RECOMMENDED
relationships agree, and a second run changes nothing."""
from __future__ import annotations

import pandas as pd
import pytest

from live_neo4j import db_state, live_store, neo4j_config, require_server  # noqa: F401

require_server()

from query_fixtures import trained_model  # noqa: E402
from scripts_loader import script  # noqa: E402

pytestmark = pytest.mark.integration
build_graph = script("build_graph")
recommend_all = script("recommend_all")


def _neo4j_args(store) -> list[str]:
    c = store.config
    return ["--neo4j", "--neo4j-uri", c.uri, "--neo4j-user", c.user, "--neo4j-password", c.password]


def test_top_k_goes_to_parquet_and_neo4j_alike(live_store, tmp_path):
    model, store = trained_model()
    root = model.parent
    assert build_graph.main(["--products", str(root / "products.csv"), "--interactions",
                             str(root / "interactions.csv"), "--relations", str(root / "relations.csv"),
                             "--store", str(tmp_path / "local"), "--quiet", *_neo4j_args(live_store)]) == 0
    out = tmp_path / "recs.parquet"
    argv = ["--model", str(model), "--store", str(store), "--out", str(out), "--k", "3", "--chunk", "7", "--quiet",
            *_neo4j_args(live_store)]
    assert recommend_all.main(argv) == 0
    recs = pd.read_parquet(out)
    rows = live_store.connect().execute_query(
        "MATCH (u:User)-[r:RECOMMENDED]->(p:Product) RETURN u.id AS user_id, r.rank AS rank, p.id AS product_id",
        database_=live_store.config.database).records
    got = pd.DataFrame([dict(r) for r in rows]).sort_values(["user_id", "rank"]).reset_index(drop=True)
    want = recs[["user_id", "rank", "product_id"]].sort_values(["user_id", "rank"]).reset_index(drop=True)
    assert len(want) == 3 * recs["user_id"].nunique()
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    before = db_state(live_store)
    assert recommend_all.main(argv) == 0
    assert db_state(live_store) == before
