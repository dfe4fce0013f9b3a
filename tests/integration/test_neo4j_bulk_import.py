"""The bulk paths against a real server.

- The bulk import (kg/neo4j_import.py): a tiny graph written as `neo4j-admin database import full` CSVs
  into a second server this module starts itself (its own home and free ports, so the suite's server is
  never touched), read back with `Neo4jStore.load()`, and an incremental `Neo4jStore.write` on top of it.
- The first-load statements of `Neo4jStore.write` (`cypher.create_nodes` / `create_relationships`, used
  when the database holds no graph yet) for every label and relationship type, on the suite's server.

Runs where the other live tests run (`make test`, or NEO4J_URI set); the second server needs the same
Java and Maven artifacts as the first.
"""
from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from live_neo4j import free_port, live_store, neo4j_config, require_server  # noqa: F401  (fixtures)

require_server()

import neo4j  # noqa: E402

import kg  # noqa: E402
from kg import cypher  # noqa: E402
from kg import neo4j_server as ns  # noqa: E402
from kg.neo4j_import import bulk_import  # noqa: E402
from kg.neo4j_store import Neo4jConfig, Neo4jStore  # noqa: E402
from neo4j_fixtures import write_files  # noqa: E402

pytestmark = pytest.mark.integration

# strings the CSV layer must carry exactly: a quote, a comma, a line break, a backslash, non-ASCII text,
# an empty description ("" is stored, not left out) and a missing price (left out)
TRICKY = ('product_id,title,description,brand,categories,price\n'
          'B0004,"He said ""hi"", twice","line one\nline two \\ é ✓ 😀",Acme,Beauty > Gifts,0.1\n'
          'B0005,Plain,,,,\n')


@pytest.fixture(scope="module")
def bulk_server(tmp_path_factory):
    """A second server's config (fresh home under the test's tmp dir, free loopback ports); stopped afterwards."""
    home = tmp_path_factory.mktemp("bulk-neo4j") / "home"
    config = ns.ServerConfig(home=home, password=secrets.token_urlsafe(16), bolt_port=free_port(),
                             http_port=free_port(), heap="512m", pagecache="64m")
    yield config
    ns.stop(home)


def _store(config: ns.ServerConfig) -> Neo4jStore:
    return Neo4jStore(Neo4jConfig(uri=config.bolt_uri, user="neo4j", password=config.password, batch_size=3,
                                  max_retries=3), show_progress=False)


def test_bulk_import_round_trip_then_incremental_write(bulk_server, tmp_path: Path):
    files = write_files(tmp_path)
    (tmp_path / "tricky.csv").write_text(TRICKY, encoding="utf-8")
    graph = kg.KnowledgeGraph()
    kg.merge_files(graph, show_progress=False, **files)
    kg.merge_files(graph, show_progress=False, products=tmp_path / "tricky.csv")

    report = bulk_import(graph, bulk_server, tmp_path / "csv", info={"source": "bulk test"}, threads=2,
                         max_off_heap_memory="256m")
    assert report["nodes"] == sum(graph.num_nodes(label) for label in kg.NODE_LABELS) + 1  # + KGMeta
    assert report["relationships"] == sum(len(t) for t in graph.edges.values())
    assert not (tmp_path / "csv").exists()  # the CSV files are removed after the import

    with _store(bulk_server) as store:
        loaded = store.load()
        kg.assert_graphs_equal(loaded, graph)
        products = loaded.nodes["Product"].set_index("id")
        assert products.loc["B0004", "title"] == 'He said "hi", twice'
        assert products.loc["B0004", "description"] == "line one\nline two \\ é ✓ 😀"
        assert products.loc["X9", "title"] == "" and products.loc["B0005", "description"] == ""
        meta = store.meta()
        assert (meta["format_version"], meta["version"]) == (1, 1)
        assert meta["counts"] == graph.counts() and meta["info"] == {"source": "bulk test"}
        constraints = store.connect().execute_query("SHOW CONSTRAINTS YIELD name RETURN name ORDER BY name").records
        assert [r["name"] for r in constraints] == sorted(f"{label.lower()}_id" for label in kg.NODE_LABELS)

        # an incremental build on top of the imported database: a new user, an interaction, a new brand
        (tmp_path / "more.csv").write_text("user_id,product_id,timestamp,event,weight\n"
                                           "U9,B0004,2015-01-01,view,1\nU1,B0005,,purchase,2\n", encoding="utf-8")
        (tmp_path / "p2.csv").write_text("product_id,title,description,brand,categories,price\n"
                                         "B0005,Plain,,New Brand,Home > Bath,2.5\n", encoding="utf-8")
        graph2 = store.load()
        result = kg.merge_files(graph2, show_progress=False, products=tmp_path / "p2.csv",
                                interactions=tmp_path / "more.csv")
        assert store.write(graph2, result.delta)
        c = store.last_counters
        assert c.nodes_created == result.delta.changes.nodes_created == 4  # U9, New Brand, Home, Home > Bath
        assert c.relationships_created == result.delta.changes.relationships_created
        kg.assert_graphs_equal(store.load(), graph2)
        assert store.meta()["version"] == 2

        store.write(graph2, result.delta)  # the same delta again: nothing new
        assert store.last_counters.nodes_created == 0 and store.last_counters.relationships_created == 0
        kg.assert_graphs_equal(store.load(), graph2)


# --- the first-load statements of Neo4jStore.write --------------------------------------------------------
def _q(store, statement, **params):
    return store.connect().execute_query(statement, params, database_=store.config.database).records


@pytest.mark.parametrize("label", kg.NODE_LABELS)
def test_create_nodes_writes_every_property_and_refuses_a_duplicate_id(live_store, label):
    live_store.ensure_schema()
    props = cypher.NODE_WRITE_PROPERTIES[label]
    rows = [{"id": f"{label}-{i}", "props": {p: (i if p in ("idx", "level") else None) for p in props}}
            for i in range(3)]
    _q(live_store, cypher.create_nodes(label), rows=rows)
    got = _q(live_store, cypher.read_nodes(label))
    assert [(r["idx"], r["id"]) for r in got] == [(i, f"{label}-{i}") for i in range(3)]
    with pytest.raises(neo4j.exceptions.ConstraintError):  # the uniqueness constraint guards the CREATE
        _q(live_store, cypher.create_nodes(label), rows=rows[:1])
    assert len(_q(live_store, cypher.read_nodes(label))) == 3


@pytest.mark.parametrize("rel_type", kg.REL_TYPES)
def test_create_relationships_then_merge_finds_them(live_store, rel_type):
    spec = kg.REL_SPECS[rel_type]
    live_store.ensure_schema()
    same = spec.src == spec.dst
    idx = {"a": 0, "b": 1, "c": 2 if same else 0, "d": 3 if same else 1}
    for label, ids in ((spec.src, ["a", "b"]), (spec.dst, ["c", "d"])):
        _q(live_store, cypher.upsert_nodes(label), rows=[{"id": i, "props": {"idx": idx[i]}} for i in ids])
    keys, order = cypher.REL_KEYS[rel_type], cypher.REL_ORDER[rel_type]
    rows = [{"src_id": s, "dst_id": d, **{k: n for k in keys}, "props": {} if keys else {order: n}}
            for n, (s, d) in enumerate((("a", "c"), ("b", "d"), ("a", "d")))]
    _q(live_store, cypher.create_relationships(rel_type), rows=rows)
    got = _q(live_store, cypher.read_relationships(rel_type))
    assert [(r["src"], r["dst"]) for r in got] == [(idx[s], idx[d]) for s, d in (("a", "c"), ("b", "d"), ("a", "d"))]
    summary = live_store.connect().execute_query(cypher.merge_relationships(rel_type), {"rows": rows},
                                                 database_=live_store.config.database).summary
    assert summary.counters.relationships_created == 0  # what CREATE wrote, MERGE finds
