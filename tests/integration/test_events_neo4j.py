"""`scripts/apply_events.py --neo4j` against the live server: a `Recommender.record` event log is MERGEd into
Neo4j in batches by the build's identity rules, a torn last line is left out, and a second run changes nothing."""
from __future__ import annotations

import pandas as pd
import pytest

from live_neo4j import db_state, live_store, neo4j_config, require_server  # noqa: F401

require_server()

from fusion.serving.events import EventLog  # noqa: E402
from kg_fixtures import tiny_files  # noqa: E402
from scripts_loader import script  # noqa: E402

pytestmark = pytest.mark.integration
build_graph = script("build_graph")
apply_events = script("apply_events")


def _neo4j_args(store) -> list[str]:
    c = store.config
    return ["--neo4j", "--neo4j-uri", c.uri, "--neo4j-user", c.user, "--neo4j-password", c.password,
            "--batch-size", "2", "--quiet"]


def test_event_log_is_merged_into_neo4j_once(live_store, tmp_path):
    p, i, r = tiny_files(tmp_path)
    local = tmp_path / "local"
    assert build_graph.main(["--products", str(p), "--interactions", str(i), "--relations", str(r),
                             "--store", str(local), *_neo4j_args(live_store)]) == 0
    before, _ = db_state(live_store)
    log = EventLog(local / "events.csv")
    log.append(pd.DataFrame({"user_id": ["u1", "u9", "u9"], "product_id": ["p3", "p1", "p1"],
                             "timestamp": [1500000000, 1500000001, 1500000001], "event": ["purchase", "view", "view"],
                             "weight": [1.0, 1.0, 1.0]}))
    log.close()
    with open(local / "events.csv", "ab") as f:
        f.write(b"u9,p2,15000")  # a crash mid-append: that record never returned
    assert apply_events.main(["--store", str(local), *_neo4j_args(live_store)]) == 0
    after, digest = db_state(live_store)
    assert after["INTERACTED"] == before["INTERACTED"] + 3  # the two identical views stay two events
    assert after["User"] == before["User"] + 1
    rows = live_store.connect().execute_query(
        "MATCH (u:User {id: $u})-[r:INTERACTED]->(p:Product) RETURN p.id AS p, r.event AS e ORDER BY p.id",
        {"u": "u9"}, database_=live_store.config.database).records
    assert [(x["p"], x["e"]) for x in rows] == [("p1", "view"), ("p1", "view")]
    assert apply_events.main(["--store", str(local), *_neo4j_args(live_store)]) == 0
    assert db_state(live_store) == (after, digest)  # idempotent
