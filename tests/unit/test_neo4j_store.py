"""Neo4jStore without a server: a fake driver records every call and keeps a tiny in-memory graph.

The fake interprets the store's statements by identity (it looks each one up among the builders of
`kg.cypher`), not by parsing Cypher, so these tests check the store's planning, batching, ordering,
null handling, retries and read-back; the Cypher text itself is checked in test_cypher.py and
against a live server in tests/integration.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import neo4j
import numpy as np
import pandas as pd
import pytest
from neo4j_fixtures import write_files
from neo4j.exceptions import AuthError, ServiceUnavailable

import kg
from kg import cypher, neo4j_store
from kg.neo4j_store import Neo4jConfig, Neo4jConnectionError, Neo4jStore, node_rows, relationship_rows
from kg.schema import NODE_LABELS, REL_SPECS, REL_TYPES


# --- a fake driver -------------------------------------------------------------------------------------
class _Counters(SimpleNamespace):
    def __init__(self):
        super().__init__(nodes_created=0, relationships_created=0, relationships_deleted=0, properties_set=0)


class _Result:
    def __init__(self, records):
        self._records = records

    def keys(self):
        return list(self._records[0]) if self._records else []

    def values(self):
        return [list(r.values()) for r in self._records]


class FakeDriver:
    """Records `execute_query` calls and applies them to dicts: nodes[label][id] = props,
    rels[type][(src_id, dst_id, *keys)] = props."""

    def __init__(self, connect_failures: int = 0, connect_error: Exception | None = None):
        self.calls: list[SimpleNamespace] = []
        self.connect_attempts = 0
        self.connect_failures = connect_failures
        self.connect_error = connect_error or ServiceUnavailable("Couldn't connect to localhost:7687")
        self.closed = False
        self.nodes: dict[str, dict[str, dict]] = {label: {} for label in NODE_LABELS}
        self.rels: dict[str, dict[tuple, dict]] = {t: {} for t in REL_TYPES}
        self.meta: dict | None = None
        self.handlers = {}
        for s in cypher.schema_statements():
            self.handlers[s] = ("schema", None)
        for label in NODE_LABELS:
            self.handlers[cypher.upsert_nodes(label)] = ("upsert", label)
            self.handlers[cypher.read_nodes(label)] = ("read_nodes", label)
            self.handlers[cypher.delete_nodes(label)] = ("delete_nodes", label)
        for t in REL_TYPES:
            self.handlers[cypher.merge_relationships(t)] = ("merge", t)
            self.handlers[cypher.delete_relationships(t)] = ("delete", t)
            self.handlers[cypher.read_relationships(t)] = ("read_rels", t)
            self.handlers[cypher.max_order(t)] = ("max_order", t)
        for k in ("ANY_GRAPH_NODE", "READ_META", "WRITE_META", "DELETE_META"):
            self.handlers[getattr(cypher, k)] = (k, None)

    # driver API
    def verify_connectivity(self):
        self.connect_attempts += 1
        if self.connect_attempts <= self.connect_failures:
            raise self.connect_error

    def close(self):
        self.closed = True

    def execute_query(self, query_, parameters_=None, routing_=neo4j.RoutingControl.WRITE, database_=None,
                      result_transformer_=None, **kwargs):
        kind, name = self.handlers[query_]  # KeyError: a statement that is not from kg.cypher
        self.calls.append(SimpleNamespace(kind=kind, name=name, query=query_, params=parameters_,
                                          routing=routing_, database=database_))
        counters = _Counters()
        records = getattr(self, f"_{kind.lower()}")(name, parameters_ or {}, counters)
        if result_transformer_ is not None:
            return result_transformer_(_Result(records))
        return SimpleNamespace(records=records, summary=SimpleNamespace(counters=counters))

    # statement semantics
    def _schema(self, name, params, c):
        return []

    @staticmethod
    def _set(target: dict, props: dict, c):
        for k, v in props.items():
            if v is None:
                target.pop(k, None)  # SET += {k: null} removes k
            else:
                target[k] = v
                c.properties_set += 1

    def _upsert(self, label, params, c):
        for row in params["rows"]:
            node = self.nodes[label].get(row["id"])
            if node is None:
                node = self.nodes[label][row["id"]] = {"id": row["id"]}
                c.nodes_created += 1
            self._set(node, row["props"], c)
        return []

    def _key(self, t, row):
        return (row["src_id"], row["dst_id"], *(row[k] for k in cypher.REL_KEYS[t]))

    def _merge(self, t, params, c):
        spec = REL_SPECS[t]
        for row in params["rows"]:
            if row["src_id"] not in self.nodes[spec.src] or row["dst_id"] not in self.nodes[spec.dst]:
                continue  # MATCH finds no endpoint: the row does nothing
            key = self._key(t, row)
            rel = self.rels[t].get(key)
            if rel is None:
                rel = self.rels[t][key] = {k: row[k] for k in cypher.REL_KEYS[t]}
                c.relationships_created += 1
            self._set(rel, row["props"], c)
        return []

    def _delete(self, t, params, c):
        for row in params["rows"]:
            if self.rels[t].pop(self._key(t, row), None) is not None:
                c.relationships_deleted += 1
        return []

    def _max_order(self, t, params, c):
        vals = [r[cypher.REL_ORDER[t]] for r in self.rels[t].values() if cypher.REL_ORDER[t] in r]
        return [{"max_order": max(vals) if vals else None}]

    def _read_nodes(self, label, params, c):
        cols = [cypher.NODE_INDEX, cypher.NODE_KEY, *kg.schema.NODE_PROPERTIES[label]]
        rows = [{k: n.get(k) for k in cols} for n in self.nodes[label].values()]
        return sorted(rows, key=lambda r: (r["idx"] is None, r["idx"] or 0))

    def _read_rels(self, t, params, c):
        spec, order = REL_SPECS[t], cypher.REL_ORDER[t]
        rows = []
        for key, r in self.rels[t].items():
            row = {"src": self.nodes[spec.src][key[0]].get("idx"), "dst": self.nodes[spec.dst][key[1]].get("idx")}
            row.update({p: r.get(p) for p in spec.properties})
            rows.append((r.get(order), row))
        return [row for _, row in sorted(rows, key=lambda x: (x[0] is None, x[0] or 0))]

    def _delete_nodes(self, label, params, c):
        ids = list(self.nodes[label])[: params["batch"]]
        for i in ids:
            del self.nodes[label][i]
            for t, spec in REL_SPECS.items():
                for key in [k for k in self.rels[t] if (spec.src == label and k[0] == i)
                            or (spec.dst == label and k[1] == i)]:
                    del self.rels[t][key]
        return [{"deleted": len(ids)}]

    def _any_graph_node(self, name, params, c):
        return [{"found": int(any(self.nodes.values()))}]

    def _read_meta(self, name, params, c):
        return [] if self.meta is None else [dict(self.meta)]

    def _write_meta(self, name, params, c):
        m = self.meta or {"format_version": None, "version": 0, "written_at": None, "info_json": None,
                          "counts_json": None}
        m = {**m, **params["props"], "version": m["version"] + 1}
        self.meta = m
        return [{"version": m["version"]}]

    def _delete_meta(self, name, params, c):
        self.meta = None
        return []


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
                                                   r".*docker compose up -d.*NEO4J_URI.*NEO4J_PASSWORD"):
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
