"""Neo4jStore against a live server: schema, batched writes, idempotence, increments, read-back, the
exploration queries of docs/neo4j.md, and the model's results written back (export, re-export, a new
model version, the vector index, every query of cypher/explore.cypher). `make test` starts a server
around the suite; by hand: `make neo4j` (or `docker compose up -d`) and NEO4J_URI, NEO4J_PASSWORD.

Settings come from the same variables as the application: NEO4J_URI, NEO4J_USERNAME (or NEO4J_USER),
NEO4J_PASSWORD, NEO4J_DATABASE. The tests write to a database that holds no knowledge graph and
delete what they wrote afterwards; a database that already holds one is left alone (the tests skip)
unless NEO4J_ALLOW_WIPE=1 allows them to delete its User/Product/Brand/Category nodes.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from live_neo4j import live_store, neo4j_config, require_server  # noqa: E402,F401  (fixtures)

require_server()

import neo4j  # noqa: E402

import kg  # noqa: E402
from kg import cypher  # noqa: E402
from kg.result_writers import Neo4jResultWriter  # noqa: E402
from kg.results import export_results  # noqa: E402
from neo4j_fixtures import FakeRecommender, write_files  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture
def kg_files(tmp_path: Path) -> dict[str, Path]:
    """A tiny catalog: products.csv, interactions.csv, relations.csv."""
    return write_files(tmp_path)


def _build(store, **paths):
    graph = store.load()
    result = kg.merge_files(graph, show_progress=False, **paths)
    written = store.write(graph, result.delta, info={"files": sorted(map(str, paths.values()))})
    return graph, result, written


def test_write_and_load_round_trip(live_store, kg_files):
    graph, result, written = _build(live_store, **kg_files)
    assert written
    c = live_store.last_counters
    assert c.nodes_created == result.delta.changes.nodes_created
    assert c.relationships_created == result.delta.changes.relationships_created
    assert c.statements > len(kg.NODE_LABELS)  # batch size 3: several transactions
    kg.assert_graphs_equal(live_store.load(), graph)
    assert live_store.meta()["counts"] == graph.counts()


def test_second_write_creates_nothing(live_store, kg_files):
    graph, result, _ = _build(live_store, **kg_files)
    live_store.write(graph, result.delta)  # the same delta again: MERGE finds everything
    assert live_store.last_counters.nodes_created == 0
    assert live_store.last_counters.relationships_created == 0
    graph2, result2, written = _build(live_store, **kg_files)  # the same files again: empty delta
    assert not written and not any(vars(result2.delta.changes).values())
    kg.assert_graphs_equal(live_store.load(), graph)


def test_incremental_interactions_and_product_updates(live_store, kg_files, tmp_path):
    _build(live_store, **kg_files)
    (tmp_path / "more.csv").write_text("user_id,product_id,timestamp,event,weight\n"
                                       "U3,B0003,2015-01-01,view,1\nU1,B0001,2014-04-18,purchase,1\n",
                                       encoding="utf-8")
    graph, result, _ = _build(live_store, interactions=tmp_path / "more.csv")
    assert live_store.last_counters.nodes_created == 1 and live_store.last_counters.relationships_created == 1
    kg.assert_graphs_equal(live_store.load(), graph)

    (tmp_path / "p2.csv").write_text("product_id,title,description,brand,categories,price\n"
                                     "B0002,Lip Balm,,Hairy Co,Beauty > Hair,3\n"
                                     "B0001,Rose Cream,x,Acme,Beauty > Gifts,\n", encoding="utf-8")
    graph, result, _ = _build(live_store, products=tmp_path / "p2.csv")
    assert live_store.last_counters.relationships_deleted == result.delta.changes.relationships_deleted == 3
    loaded = live_store.load()
    kg.assert_graphs_equal(loaded, graph)
    assert loaded.nodes["Product"].set_index("id")["price"].isna()["B0001"]  # the price property was removed


def test_full_write_without_delta(live_store, kg_files):
    graph = kg.KnowledgeGraph()
    kg.merge_files(graph, show_progress=False, **kg_files)
    assert live_store.write(graph)
    kg.assert_graphs_equal(live_store.load(), graph)


def _constraints(store):
    return sorted((r["name"], tuple(r["labelsOrTypes"]), tuple(r["properties"])) for r in store.connect().execute_query(
        "SHOW CONSTRAINTS YIELD name, labelsOrTypes, properties", database_=store.config.database).records)


def test_schema_is_idempotent(live_store):
    live_store.ensure_schema()
    first = _constraints(live_store)
    assert first == sorted((f"{label.lower()}_id", (label,), ("id",)) for label in kg.NODE_LABELS)
    live_store.ensure_schema()  # IF NOT EXISTS: the same constraints, no error
    assert _constraints(live_store) == first


def _explore(store, name, **params):
    records = store.connect().execute_query(
        cypher.EXPLORE[name], {**cypher.EXPLORE_EXAMPLE_PARAMS[name], **params},
        database_=store.config.database, routing_=neo4j.RoutingControl.READ).records
    return [r.data() for r in records]


def test_exploration_queries_of_the_docs(live_store, kg_files):
    _build(live_store, **kg_files)
    ctx = _explore(live_store, "product_context")
    assert {r["brand"] for r in ctx} == {"Acme"}
    assert sorted(r["category_path"] for r in ctx) == [["Beauty", "Gifts"], ["Beauty", "Skin Care", "Face"]]
    hist = _explore(live_store, "user_history")
    assert [(r["product"], r["event"]) for r in hist] == [("B0001", "purchase"), ("B0002", "view")]
    assert hist[1]["at"] is None and hist[0]["at"].year == 2014
    pairs = _explore(live_store, "brands_sharing_customers", min_shared=1)
    assert [(r["brand"], r["other_brand"], r["shared_customers"]) for r in pairs] == [("Acme", "Hairy Co", 1)]
    tree = _explore(live_store, "category_tree")
    assert [r["path"] for r in tree][:2] == ["beauty", "beauty > gifts"] and len(tree) == 6
    assert _explore(live_store, "two_hops_from_user") == []  # U1 saw B0002 already; X9 is outside the catalog
    hops = _explore(live_store, "two_hops_from_user", user_id="U2")
    assert [(r["product"], r["relations"]) for r in hops] == [("B0002", ["ALSO_BOUGHT"])]
    graph = live_store.load()
    pictures = _explore(live_store, "product_picture")  # paths come back as [node, relationship, node]
    ends = sorted(r["path"][2].get("name") for r in pictures)
    assert ends == sorted(["Acme", "Gifts", "Face"]) and all(r["path"][0]["id"] == "B0001" for r in pictures)
    seen = {r["path"][2]["id"] for r in _explore(live_store, "user_picture")}
    assert seen and all(r["path"][0]["id"] == "U1" for r in _explore(live_store, "user_picture"))
    assert seen <= {"B0001", "B0002"}
    counts = {tuple(r["labels"]): r["nodes"] for r in _explore(live_store, "node_counts")}
    assert counts.pop(("KGMeta",)) == 1  # the store's own bookkeeping node
    assert counts == {(label,): graph.num_nodes(label) for label in kg.NODE_LABELS if graph.num_nodes(label)}


# --- the model's results (scripts/export_to_neo4j.py) ---------------------------------------------------
@pytest.fixture
def results_store(live_store, kg_files):
    """The live store holding the tiny graph; the vector index is dropped afterwards."""
    _build(live_store, **kg_files)
    yield live_store
    live_store.drop_vector_index()


def _export(store, rec, **kw):
    writer = Neo4jResultWriter(store, await_index_s=120)
    export_results(rec, [writer], rec.user_ids, show_progress=False, chunk_size=2, **kw)
    return writer


def _explore_results(store, name, **params):
    records = store.connect().execute_query(
        cypher.EXPLORE_RESULTS[name], {**cypher.EXPLORE_RESULTS_EXAMPLE_PARAMS[name], **params},
        database_=store.config.database, routing_=neo4j.RoutingControl.READ).records
    return [r.data() for r in records]


def test_results_export_is_idempotent_and_a_new_version_replaces_the_old(results_store):
    store = results_store
    first = _export(store, FakeRecommender("v1"))
    assert first.report["counters"]["relationships_created"] == 2 + 6 and first.unmatched() == {}
    assert store.output_models() == {"RECOMMENDED": {"v1": 2}, "SIMILAR_TO": {"v1": 6}}
    assert store.vector_index_config() == (4, "cosine")

    again = _export(store, FakeRecommender("v1"))
    assert again.report["counters"]["relationships_created"] == 0
    assert again.report["counters"]["relationships_deleted"] == 0
    assert again.report["vector_index_created"] is False
    assert store.output_models() == {"RECOMMENDED": {"v1": 2}, "SIMILAR_TO": {"v1": 6}}

    second = _export(store, FakeRecommender("v2"))
    assert second.report["removed"] == {"SIMILAR_TO": 6, "RECOMMENDED": 2, "embeddings": 0}
    assert store.output_models() == {"RECOMMENDED": {"v2": 2}, "SIMILAR_TO": {"v2": 6}}
    assert _explore_results(store, "embedding_models") == [{"model": "v2", "products": 3, "dimensions": 4}]

    # a model of another dimension: the vector index is rebuilt and still answers
    wider = FakeRecommender("v3", vectors=np.hstack([FakeRecommender().product_vectors, np.ones((3, 4))]))
    assert _export(store, wider, similar_k=1).report["vector_index_created"] is True
    assert store.vector_index_config() == (8, "cosine")
    assert [r["product"] for r in _explore_results(store, "vector_neighbours")][0] == "B0002"
    assert store.output_models()["SIMILAR_TO"] == {"v3": 3}


def test_results_exploration_queries(results_store):
    store = results_store
    _export(store, FakeRecommender("v1"))
    side = _explore_results(store, "history_and_recommendations")
    assert [(r["side"], r["product"]) for r in side] == [("INTERACTED", "B0001"), ("INTERACTED", "B0003"),
                                                         ("INTERACTED", "B0003"), ("RECOMMENDED", "B0002")]
    why = _explore_results(store, "why_recommended")
    assert sorted((r["seen"], r["link"], r["via"]) for r in why) == [("B0001", "ALSO_BOUGHT", "Lip Balm"),
                                                                     ("B0001", "HAS_BRAND", "Acme")]
    assert all(r["rank"] == 1 for r in why)
    similar = _explore_results(store, "similar_products")
    assert [(r["rank"], r["product"], r["model"]) for r in similar] == [(1, "B0002", "v1"), (2, "B0003", "v1")]
    near = _explore_results(store, "vector_neighbours")
    assert [r["product"] for r in near] == ["B0002", "B0003"] and near[0]["score"] > near[1]["score"]
    brand = _explore_results(store, "recommendations_sharing_brand")
    assert [(r["product"], r["brand"], r["brand_in_history"]) for r in brand] == [("B0002", "Acme", 1)]
    assert _explore_results(store, "recommendations_sharing_brand", user_id="U1") == []  # B0003 is Hairy Co
    versions = _explore_results(store, "model_versions")
    assert [(r["relationship"], r["model"], r["relationships"]) for r in versions] == [
        ("RECOMMENDED", "v1", 2), ("SIMILAR_TO", "v1", 6)]


def test_every_query_of_explore_cypher_runs(results_store):
    """cypher/explore.cypher as a Browser user runs it: each block's :param values, then its query."""
    store = results_store
    _export(store, FakeRecommender("v1"))
    text = (Path(__file__).resolve().parents[2] / "cypher" / "explore.cypher").read_text(encoding="utf-8")
    body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("//"))
    results = {" ".join(q.split()) for q in cypher.EXPLORE_RESULTS.values()}
    ran = 0
    for chunk in filter(None, (c.strip() for c in body.split(";"))):
        params = {m[1]: ast.literal_eval(m[2]) for m in re.finditer(r"^:param (\w+) => (.+)$", chunk, re.M)}
        statement = "\n".join(ln for ln in chunk.splitlines() if not ln.startswith(":"))
        records = store.connect().execute_query(statement, params, database_=store.config.database,
                                                routing_=neo4j.RoutingControl.READ).records
        if " ".join(statement.split()) in results:
            assert records, f"the example of this results query finds nothing: {statement}"
        ran += 1
    assert ran == len(cypher.EXPLORE) + len(cypher.EXPLORE_RESULTS)
