"""Each write, read and delete statement of kg/cypher.py for every allow-listed label and relationship type,
run on the live server and checked by its effect (a statement that Neo4j 5 refused would fail here)."""
from __future__ import annotations

import pytest

from live_neo4j import live_store, neo4j_config, require_server  # noqa: F401  (fixtures)

require_server()

import neo4j  # noqa: E402

from kg import cypher  # noqa: E402
from kg.schema import INTERACTED, NODE_LABELS, REL_SPECS, REL_TYPES  # noqa: E402

pytestmark = pytest.mark.integration


def _q(store, statement, **params):
    return store.connect().execute_query(statement, params, database_=store.config.database).records


@pytest.mark.parametrize("label", NODE_LABELS)
def test_node_statements(live_store, label):
    live_store.ensure_schema()
    rows = [{"id": f"{label}-{i}", "props": {"idx": i}} for i in range(3)]
    _q(live_store, cypher.create_nodes(label), rows=rows[:1])  # the first load's CREATE
    with pytest.raises(neo4j.exceptions.ConstraintError):  # the uniqueness constraint refuses a second one
        _q(live_store, cypher.create_nodes(label), rows=rows[:1])
    _q(live_store, cypher.upsert_nodes(label), rows=rows)
    _q(live_store, cypher.upsert_nodes(label), rows=rows)  # MERGE on the id: no duplicates
    got = _q(live_store, cypher.read_nodes(label))
    assert [(r["idx"], r["id"]) for r in got] == [(i, f"{label}-{i}") for i in range(3)]
    assert _q(live_store, cypher.delete_nodes(label), batch=2)[0]["deleted"] == 2
    assert _q(live_store, cypher.delete_nodes(label), batch=2)[0]["deleted"] == 1
    assert _q(live_store, cypher.read_nodes(label)) == []


@pytest.mark.parametrize("rel_type", REL_TYPES)
def test_relationship_statements(live_store, rel_type):
    spec = REL_SPECS[rel_type]
    live_store.ensure_schema()
    same = spec.src == spec.dst  # Product -> Product: both ends share one index space
    idx = {"a": 0, "b": 1, "c": 2 if same else 0, "d": 3 if same else 1}
    for label, ids in ((spec.src, ["a", "b"]), (spec.dst, ["c", "d"])):
        _q(live_store, cypher.upsert_nodes(label), rows=[{"id": i, "props": {"idx": idx[i]}} for i in ids])
    keys = cypher.REL_KEYS[rel_type]
    order = cypher.REL_ORDER[rel_type]

    def row(src, dst, n):
        r = {"src_id": src, "dst_id": dst, "props": {} if keys else {order: n}}
        for k in keys:
            r[k] = n
        return r

    rows = [row("a", "c", 0), row("b", "d", 1), row("a", "d", 2)]
    _q(live_store, cypher.create_relationships(rel_type), rows=rows[:1])  # the first load's CREATE
    _q(live_store, cypher.merge_relationships(rel_type), rows=rows)  # finds the created one
    _q(live_store, cypher.merge_relationships(rel_type), rows=rows)  # idempotent
    assert _q(live_store, cypher.max_order(rel_type))[0]["max_order"] == 2
    got = _q(live_store, cypher.read_relationships(rel_type))
    assert [(r["src"], r["dst"]) for r in got] == [(idx[s], idx[d]) for s, d in (("a", "c"), ("b", "d"), ("a", "d"))]
    _q(live_store, cypher.delete_relationships(rel_type), rows=[{k: v for k, v in rows[1].items() if k != "props"}])
    left = _q(live_store, f"MATCH ()-[r:{rel_type}]->() RETURN count(r) AS n")[0]["n"]
    assert left == 2
    if rel_type == INTERACTED:
        assert sorted(r["seq"] for r in _q(live_store, cypher.read_relationships(rel_type))) == [0, 2]
