"""Neo4jStore without a server: a fake driver (tests/neo4j_fixtures.py) records every call and keeps a
tiny in-memory graph.

The fake interprets the store's statements by identity (it looks each one up among the builders of
`kg.cypher`), not by parsing Cypher, so these tests check the store's planning, batching, ordering,
null handling, retries and read-back; the Cypher text itself is checked in test_cypher.py and
against a live server in tests/integration.
"""
from __future__ import annotations

from pathlib import Path

import neo4j
import numpy as np
import pandas as pd
import pytest
from neo4j_fixtures import FakeDriver, write_files
from neo4j.exceptions import AuthError, ServiceUnavailable

import kg
from kg import neo4j_store
from kg.neo4j_store import Neo4jConfig, Neo4jConnectionError, Neo4jStore, node_rows, relationship_rows
from kg.schema import NODE_LABELS


# --- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return write_files(tmp_path)


def _config(**kw) -> Neo4jConfig:
    return Neo4jConfig(**{"uri": "bolt://localhost:7687", "user": "neo4j", "password": "secret", **kw})


@pytest.fixture
def driver() -> FakeDriver:
    return FakeDriver()


@pytest.fixture
def store(driver) -> Neo4jStore:
    return Neo4jStore(_config(batch_size=2, database="kgtest"), driver=driver, show_progress=False)


def _build(store: Neo4jStore, **paths) -> kg.BuildResult:
    graph = store.load()
    result = kg.merge_files(graph, show_progress=False, **paths)
    store.write(graph, result.delta)
    result.graph = graph
    return result


# --- config --------------------------------------------------------------------------------------------
def test_config_from_env():
    env = {"NEO4J_URI": "neo4j://db:7687", "NEO4J_USERNAME": "alice", "NEO4J_USER": "bob",
           "NEO4J_PASSWORD": "pw", "NEO4J_DATABASE": "shop"}
    cfg = Neo4jConfig.from_env(env)
    assert (cfg.uri, cfg.user, cfg.password, cfg.database) == ("neo4j://db:7687", "alice", "pw", "shop")
    assert "pw" not in repr(cfg)


def test_config_falls_back_to_neo4j_user_then_default():
    env = {"NEO4J_URI": "bolt://h:7687", "NEO4J_USER": "bob", "NEO4J_PASSWORD": "pw"}
    assert Neo4jConfig.from_env(env).user == "bob"
    assert Neo4jConfig.from_env({**env, "NEO4J_USER": ""}).user == "neo4j"
    assert Neo4jConfig.from_env(env).database is None


def test_config_flags_override_env_unless_none(monkeypatch):
    monkeypatch.setenv("NEO4J_URI", "bolt://env:7687")
    monkeypatch.setenv("NEO4J_PASSWORD", "pw")
    monkeypatch.delenv("NEO4J_USERNAME", raising=False)
    cfg = Neo4jConfig.from_env(uri=None, user="flag", batch_size=10)
    assert (cfg.uri, cfg.user, cfg.batch_size) == ("bolt://env:7687", "flag", 10)
    with pytest.raises(TypeError, match="batchsize"):
        Neo4jConfig.from_env(batchsize=10)


@pytest.mark.parametrize("env, match", [
    ({"NEO4J_PASSWORD": "pw"}, "NEO4J_URI"),
    ({"NEO4J_URI": "bolt://h:7687"}, "NEO4J_PASSWORD"),
    ({"NEO4J_URI": "http://h:7474", "NEO4J_PASSWORD": "pw"}, "must start with one of bolt://"),
])
def test_config_errors_name_the_setting(env, match):
    with pytest.raises(ValueError, match=match):
        Neo4jConfig.from_env(env)


@pytest.mark.parametrize("kw, match", [({"batch_size": 0}, "batch_size"), ({"max_retries": 0}, "max_retries"),
                                       ({"password": ""}, "NEO4J_PASSWORD")])
def test_config_validates_values(kw, match):
    with pytest.raises(ValueError, match=match):
        _config(**kw)


# --- connection ----------------------------------------------------------------------------------------
def test_unreachable_server_gives_clear_error_after_bounded_retries(monkeypatch):
    waits = []
    monkeypatch.setattr(neo4j_store, "_sleep", waits.append)
    driver = FakeDriver(connect_failures=10**6)
    store = Neo4jStore(_config(max_retries=4, retry_wait_s=0.5), driver=driver)
    with pytest.raises(Neo4jConnectionError, match=r"cannot reach Neo4j at bolt://localhost:7687 after 4 attempts"
                                                   r".*make neo4j.*docker compose up -d.*NEO4J_URI.*NEO4J_PASSWORD"):
        store.connect()
    assert driver.connect_attempts == 4
    assert waits == [0.5, 1.0, 2.0]  # exponential backoff, no wait after the last attempt
    assert isinstance(Neo4jConnectionError("x"), ConnectionError)


def test_connect_succeeds_after_transient_failures(monkeypatch):
    waits = []
    monkeypatch.setattr(neo4j_store, "_sleep", waits.append)
    driver = FakeDriver(connect_failures=2)
    store = Neo4jStore(_config(), driver=driver)
    assert store.connect() is driver
    assert store.connect() is driver  # verified once
    assert driver.connect_attempts == 3 and waits == [1.0, 2.0]


def test_wrong_password_fails_at_once(monkeypatch):
    monkeypatch.setattr(neo4j_store, "_sleep", lambda s: pytest.fail("auth errors must not be retried"))
    driver = FakeDriver(connect_failures=1, connect_error=AuthError("The client is unauthorized"))
    with pytest.raises(Neo4jConnectionError, match="refused the credentials of user 'neo4j'.*NEO4J_PASSWORD"):
        Neo4jStore(_config(), driver=driver).connect()


def test_real_driver_to_a_closed_port_gives_the_clear_error(monkeypatch):
    monkeypatch.setattr(neo4j_store, "_sleep", lambda s: None)
    store = Neo4jStore(_config(uri="bolt://127.0.0.1:9", max_retries=2, connect_timeout_s=2.0))
    with pytest.raises(Neo4jConnectionError, match="after 2 attempts"):
        store.connect()
    store.close()


def test_injected_driver_is_not_closed_by_the_store(driver):
    with Neo4jStore(_config(), driver=driver) as store:
        store.connect()
    assert not driver.closed


# --- writing -------------------------------------------------------------------------------------------
def test_write_batches_rows_and_orders_statements(store, driver, files):
    result = _build(store, **files)
    writes = [c for c in driver.calls if c.kind in ("upsert", "merge", "delete")]
    assert writes, "nothing written"
    for c in writes:
        assert 1 <= len(c.params["rows"]) <= 2, "batch larger than batch_size"
    # every row of the delta reached the server exactly once
    sent = {(c.name, r["id"]) for c in writes if c.kind == "upsert" for r in c.params["rows"]}
    expected = {(label, i) for label, t in result.delta.nodes.items() for i in t["id"]}
    assert sent == expected
    assert sum(len(c.params["rows"]) for c in writes if c.kind == "merge") == \
        result.delta.changes.relationships_created
    # schema first, then all nodes, then relationships, the meta node last
    kinds = [c.kind for c in driver.calls if c.kind not in ("ANY_GRAPH_NODE", "READ_META", "read_nodes",
                                                           "read_rels", "max_order")]
    assert kinds[: len(NODE_LABELS)] == ["schema"] * len(NODE_LABELS)
    last_upsert = max(i for i, k in enumerate(kinds) if k == "upsert")
    first_merge = min(i for i, k in enumerate(kinds) if k == "merge")
    assert last_upsert < first_merge
    assert kinds[-1] == "WRITE_META"


def test_reads_use_read_routing_and_every_call_the_database(store, driver, files):
    _build(store, **files)
    store.load()
    for c in driver.calls:
        assert c.database == "kgtest"
        read = c.kind in ("read_nodes", "read_rels", "max_order", "ANY_GRAPH_NODE", "READ_META")
        assert c.routing == (neo4j.RoutingControl.READ if read else neo4j.RoutingControl.WRITE), c.kind


def test_write_records_server_counters(store, driver, files):
    result = _build(store, **files)
    ch = result.delta.changes
    assert store.last_counters.nodes_created == ch.nodes_created
    assert store.last_counters.relationships_created == ch.relationships_created
    assert store.last_counters.statements == sum(c.kind in ("upsert", "merge", "delete") for c in driver.calls)


def test_round_trip_reproduces_the_graph_exactly(store, files, tmp_path):
    result = _build(store, **files)
    loaded = store.load()
    kg.assert_graphs_equal(loaded, result.graph)
    assert np.isnan(loaded.nodes["Product"].set_index("id").loc["B0002", "price"])  # null price -> NaN
    assert loaded.edges["INTERACTED"]["timestamp"].isna().sum() == 1
    assert store.meta()["counts"] == result.graph.counts() and store.meta()["version"] == 1
    # the embedded store, fed the same files, holds the same graph
    embedded = kg.EmbeddedStore(tmp_path / "store")
    graph = embedded.load()
    embedded.write(graph, kg.merge_files(graph, show_progress=False, **files).delta)
    kg.assert_graphs_equal(loaded, embedded.load())


def test_same_files_again_write_nothing(store, driver, files):
    _build(store, **files)
    n = len(driver.calls)
    graph = store.load()
    result = kg.merge_files(graph, show_progress=False, **files)
    assert store.write(graph, result.delta) is False
    assert store.last_counters.nodes_created == 0 and store.last_counters.relationships_created == 0
    assert all(c.kind in ("ANY_GRAPH_NODE", "READ_META", "read_nodes", "read_rels") for c in driver.calls[n:])


def test_writing_a_delta_twice_is_idempotent(store, driver, files):
    result = _build(store, **files)
    store.write(result.graph, result.delta)
    assert store.last_counters.nodes_created == 0
    assert store.last_counters.relationships_created == 0
    kg.assert_graphs_equal(store.load(), result.graph)


def test_incremental_build_with_updates_and_deletions(store, driver, files, tmp_path):
    first = _build(store, **files)
    # B0002 moves to another brand and category and gets a price; B0001 loses its price
    (tmp_path / "p2.csv").write_text(
        "product_id,title,description,brand,categories,price\n"
        "B0002,Lip Balm,,Hairy Co,Beauty > Hair,3\n"
        "B0001,Rose Cream,\"Face cream, 50ml\",Acme,Beauty > Skin Care > Face | Beauty > Gifts,\n"
        "B0004,Soap,,New Brand,Home > Bath,1\n", encoding="utf-8")
    (tmp_path / "i2.csv").write_text("user_id,product_id,timestamp,event,weight\n"
                                     "U3,B0004,2015-01-01,view,1\nU1,B0001,2014-04-18,purchase,1\n",
                                     encoding="utf-8")
    second = _build(store, products=tmp_path / "p2.csv", interactions=tmp_path / "i2.csv")
    assert second.delta.changes.relationships_deleted == 2  # old HAS_BRAND and IN_CATEGORY of B0002
    assert store.last_counters.relationships_deleted == 2
    assert store.last_counters.nodes_created == second.delta.changes.nodes_created
    kg.assert_graphs_equal(store.load(), second.graph)
    assert np.isnan(store.load().nodes["Product"].set_index("id").loc["B0001", "price"])
    # the order keys keep growing, so edges appended later read back later
    ords = [r["ord"] for r in driver.rels["HAS_BRAND"].values()]
    assert len(set(ords)) == len(ords)
    assert first.graph is not second.graph


def test_full_write_without_delta(driver, files):
    graph = kg.KnowledgeGraph()
    kg.merge_files(graph, show_progress=False, **files)
    store = Neo4jStore(_config(batch_size=1000), driver=driver, show_progress=False)
    assert store.write(graph) is True
    kg.assert_graphs_equal(store.load(), graph)
    assert store.exists()


def test_empty_database_loads_an_empty_graph(store):
    g = store.load()
    assert not store.exists() and store.meta() == {}
    kg.assert_graphs_equal(g, kg.KnowledgeGraph())


def test_clear_deletes_graph_nodes_in_batches(store, driver, files):
    result = _build(store, **files)
    total = sum(result.graph.num_nodes(label) for label in NODE_LABELS)
    assert store.clear() == total
    assert not store.exists() and store.meta() == {}
    assert not any(driver.rels.values())


def test_load_refuses_nodes_it_did_not_write(store, driver, files):
    _build(store, **files)
    driver.nodes["Brand"]["stray"] = {"id": "stray", "name": "Stray"}  # e.g. created by hand in Browser
    with pytest.raises(ValueError, match="1 Brand node.*no `idx`"):
        store.load()
    driver.nodes["Brand"]["stray"]["idx"] = 7
    with pytest.raises(ValueError, match="Brand nodes' `idx` values are not 0..2"):
        store.load()


def test_load_refuses_another_format(store, driver, files):
    _build(store, **files)
    driver.meta["format_version"] = 99
    with pytest.raises(ValueError, match="stored format 99"):
        store.load()


# --- row builders --------------------------------------------------------------------------------------
def test_rows_carry_python_values_and_null_for_missing(files):
    graph = kg.KnowledgeGraph()
    kg.merge_files(graph, show_progress=False, **files)
    rows = {r["id"]: r["props"] for r in node_rows(graph, "Product")}
    assert rows["B0002"]["price"] is None and type(rows["B0001"]["price"]) is float
    assert rows["X9"] == {"idx": 3, "title": "", "description": "", "price": None, "in_catalog": False}
    inter = relationship_rows(graph, "INTERACTED")
    assert [r["seq"] for r in inter] == list(range(len(inter)))
    assert inter[1]["props"]["timestamp"] is None and type(inter[0]["props"]["timestamp"]) is int
    brands = relationship_rows(graph, "HAS_BRAND", first_order=10)
    assert [r["props"]["ord"] for r in brands] == [10, 11, 12]


def test_created_rows_absent_from_the_graph_are_not_written(files):
    graph = kg.KnowledgeGraph()
    kg.merge_files(graph, show_progress=False, **files)
    gone = pd.DataFrame({"src_id": ["B0003"], "dst_id": ["acme"]})  # e.g. created, then replaced in a merged delta
    assert relationship_rows(graph, "HAS_BRAND", gone) == []
    assert neo4j_store.deleted_rows(graph, "HAS_BRAND", gone) == [{"src_id": "B0003", "dst_id": "acme"}]
    kept = pd.DataFrame({"src_id": ["B0001"], "dst_id": ["acme"]})
    assert neo4j_store.deleted_rows(graph, "HAS_BRAND", kept) == []


def test_importing_the_store_does_not_import_the_driver():
    import subprocess
    import sys
    code = "import sys, kg, kg.neo4j_store; assert kg.Neo4jStore and 'neo4j' not in sys.modules, 'eager import'"
    subprocess.run([sys.executable, "-c", code], check=True)
