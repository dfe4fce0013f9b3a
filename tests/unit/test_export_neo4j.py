"""Writing a model's results back: tidy top-k rows, Neo4jStore's output methods against the fake driver,
the CSV and dry-run writers, and scripts/export_to_neo4j.py end to end with a stand-in recommender.

The fake driver (tests/neo4j_fixtures.py) applies each statement by identity, as Neo4j would: MERGE on
(start, end, model), prune by `keep`, delete other models in batches. The Cypher text itself is parsed in
test_cypher.py; tests/integration runs the same export against a live server.
"""
from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from neo4j_fixtures import FakeDriver, FakeRecommender, write_files

import kg
from kg import cypher
from kg.neo4j_store import Neo4jConfig, Neo4jStore
from kg.result_writers import CsvResultWriter, DryRunWriter, Neo4jResultWriter
from kg.results import embedding_rows, export_results, keep_rows, tidy_top_k, top_k_rows

ROOT = Path(__file__).resolve().parents[2]
OUTPUT_KINDS = ("merge_output", "prune_output", "SET_EMBEDDINGS", "delete_output_model", "CLEAR_OTHER_EMBEDDINGS")


# --- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture
def driver(tmp_path) -> FakeDriver:
    """A fake database holding the tiny catalog (U1, U2; B0001-B0003 and X9)."""
    d = FakeDriver()
    store = Neo4jStore(Neo4jConfig("bolt://localhost:7687", "neo4j", "pw"), driver=d, show_progress=False)
    graph = store.load()
    store.write(graph, kg.merge_files(graph, show_progress=False, **write_files(tmp_path)).delta)
    d.calls.clear()
    return d


@pytest.fixture
def store(driver) -> Neo4jStore:
    return Neo4jStore(Neo4jConfig("bolt://localhost:7687", "neo4j", "pw", batch_size=2), driver=driver,
                      show_progress=False)


def _export(store, rec, **kw) -> Neo4jResultWriter:
    writer = Neo4jResultWriter(store)
    export_results(rec, [writer], rec.user_ids, show_progress=False, **{"chunk_size": 2, **kw})
    return writer


def _rels(driver, t) -> dict[tuple, dict]:
    return {k: dict(v) for k, v in driver.rels[t].items()}


# --- tidy rows -----------------------------------------------------------------------------------------
def test_tidy_top_k_reranks_from_one_and_drops_padding_duplicates_and_self():
    raw = pd.DataFrame({"source_id": ["a", "a", "a", "a", "b", "b", "c"],
                        "rank": [0, 1, 2, 3, 0, 1, 0],
                        "product_id": ["x", None, "a", "x", "y", "z", "q"],
                        "score": [0.9, 0.5, 0.4, 0.3, 0.8, -np.inf, np.nan]})
    t = tidy_top_k(raw, drop_self=True)
    assert list(t.columns) == ["source_id", "product_id", "rank", "score"]
    assert t.values.tolist() == [["a", "x", 1, 0.9], ["b", "y", 1, 0.8]]
    # without a rank column the score orders; sources keep their first-seen order
    t = tidy_top_k(pd.DataFrame({"user_id": ["u2", "u2", "u1"], "product_id": ["p", "q", "p"],
                                 "score": [0.1, 0.7, 0.3]}))
    assert t[["source_id", "product_id", "rank"]].values.tolist() == [["u2", "q", 1], ["u2", "p", 2], ["u1", "p", 1]]


def test_tidy_top_k_names_missing_columns():
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['score'\]"):
        tidy_top_k(pd.DataFrame({"user_id": ["u"], "product_id": ["p"]}))


def test_rows_carry_python_values_and_every_asked_source():
    t = tidy_top_k(FakeRecommender().recommend_batch(["U1", "U2"]))
    rows = top_k_rows(t)
    assert rows[0] == {"src_id": "U1", "dst_id": "B0003", "score": pytest.approx(0.18), "rank": 1}
    assert type(rows[0]["score"]) is float and type(rows[0]["rank"]) is int
    assert keep_rows(t, ["U1", "U9", "U2"]) == [{"src_id": "U1", "keep": ["B0003"]}, {"src_id": "U9", "keep": []},
                                               {"src_id": "U2", "keep": ["B0002"]}]


def test_embedding_rows_check_shape_and_values():
    rows = embedding_rows(["a", "b"], np.eye(2, 3, dtype=np.float32))
    assert rows == [{"id": "a", "embedding": [1.0, 0.0, 0.0]}, {"id": "b", "embedding": [0.0, 1.0, 0.0]}]
    assert type(rows[0]["embedding"][0]) is float
    with pytest.raises(ValueError, match=r"must be \[3, d\] for 3 product ids, got shape \(2, 3\)"):
        embedding_rows(["a", "b", "c"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="product 'b' has a non-finite embedding value"):
        embedding_rows(["a", "b"], np.array([[0.0, 1.0], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match="vector dimensions must be in 1..4096"):
        embedding_rows(["a"], np.zeros((1, 5000)))


# --- Neo4j ---------------------------------------------------------------------------------------------
def test_export_writes_embeddings_index_recommendations_and_neighbours(store, driver):
    writer = _export(store, FakeRecommender("v1"))
    assert {(k[0], k[1]): (r["rank"], round(r["score"], 2)) for k, r in driver.rels["RECOMMENDED"].items()} == {
        ("U1", "B0003"): (1, 0.18), ("U2", "B0002"): (1, 0.58)}
    similar = {(k[0], k[1]): r["rank"] for k, r in driver.rels["SIMILAR_TO"].items()}
    assert similar == {("B0001", "B0002"): 1, ("B0001", "B0003"): 2, ("B0002", "B0001"): 1,
                       ("B0002", "B0003"): 2, ("B0003", "B0002"): 1, ("B0003", "B0001"): 2}
    assert {k[2] for t in ("RECOMMENDED", "SIMILAR_TO") for k in driver.rels[t]} == {"v1"}
    products = driver.nodes["Product"]
    assert products["B0002"]["embedding"] == pytest.approx([0.8, 0.6, 0.0, 0.0])
    assert products["B0002"]["embedding_model"] == "v1" and "embedding" not in products["X9"]
    vector = driver.indexes[cypher.VECTOR_INDEX]["options"]["indexConfig"]
    assert vector == {"vector.dimensions": 4, "vector.similarity_function": "COSINE"}
    assert {"recommended_model", "similar_to_model"} <= set(driver.indexes)
    assert writer.report["vector_index_created"] is True and writer.unmatched() == {}
    assert [c.params["name"] for c in driver.calls if c.kind == "AWAIT_INDEX"] == [cypher.VECTOR_INDEX]


def test_rows_are_batched_and_every_statement_is_parameterised(store, driver):
    _export(store, FakeRecommender("v1"))
    writes = [c for c in driver.calls if c.kind in OUTPUT_KINDS]
    assert {c.kind for c in writes} == {"merge_output", "prune_output", "SET_EMBEDDINGS", "CLEAR_OTHER_EMBEDDINGS"}
    for c in writes:
        assert c.params["model"] == "v1" if "model" in c.params else c.kind == "delete_output_model"
        if "rows" in c.params:
            assert 1 <= len(c.params["rows"]) <= 2, "batch larger than batch_size"
        else:
            assert c.params["batch"] == 2
        assert "v1" not in c.query and "B0001" not in c.query  # values never in the text
    sent = [r for c in writes if c.kind == "merge_output" and c.name == "SIMILAR_TO" for r in c.params["rows"]]
    assert len(sent) == 6
    # every product asked gets a prune row (its new top k) for each output type
    pruned = [r["src_id"] for c in writes if c.kind == "prune_output" and c.name == "SIMILAR_TO"
              for r in c.params["rows"]]
    assert sorted(pruned) == ["B0001", "B0002", "B0003"]
    for c in driver.calls:
        assert c.routing.name == ("READ" if c.kind in ("ANY_GRAPH_NODE", "SHOW_INDEXES", "output_models")
                                  else "WRITE"), c.kind


def test_second_export_of_the_same_model_creates_and_deletes_nothing(store, driver):
    _export(store, FakeRecommender("v1"))
    before = {t: _rels(driver, t) for t in ("RECOMMENDED", "SIMILAR_TO")}
    embeddings = {p: dict(n) for p, n in driver.nodes["Product"].items()}
    driver.calls.clear()
    writer = _export(store, FakeRecommender("v1"))
    c = writer.report["counters"]
    assert c["nodes_created"] == c["relationships_created"] == c["relationships_deleted"] == 0
    assert writer.report["removed"] == {"SIMILAR_TO": 0, "RECOMMENDED": 0, "embeddings": 0}
    assert writer.report["vector_index_created"] is False
    assert {t: _rels(driver, t) for t in before} == before
    assert driver.nodes["Product"] == embeddings
    kinds = {c.kind for c in driver.calls}
    assert "DROP_VECTOR_INDEX" not in kinds and "delete_output_model" not in kinds


def test_a_new_model_version_replaces_the_old_relationships_and_embeddings(store, driver):
    _export(store, FakeRecommender("v1"))
    n_before = {t: len(driver.rels[t]) for t in ("RECOMMENDED", "SIMILAR_TO")}
    driver.calls.clear()
    writer = _export(store, FakeRecommender("v2"))
    for t in ("RECOMMENDED", "SIMILAR_TO"):
        assert {k[2] for k in driver.rels[t]} == {"v2"}, t
        assert len(driver.rels[t]) == n_before[t]
    assert writer.report["removed"] == {"SIMILAR_TO": 6, "RECOMMENDED": 2, "embeddings": 0}
    deletes = [c for c in driver.calls if c.kind == "delete_output_model"]
    assert {c.params["old"] for c in deletes} == {"v1"}
    assert all(c.params["batch"] == 2 for c in deletes)  # SIMILAR_TO's six went in batches: 2, 2, 2, 0
    assert sum(c.name == "SIMILAR_TO" for c in deletes) == 4
    # the old relationships go only after the new ones are in
    last_merge = max(i for i, c in enumerate(driver.calls) if c.kind == "merge_output")
    assert min(i for i, c in enumerate(driver.calls) if c.kind == "delete_output_model") > last_merge
    assert {n.get("embedding_model") for p, n in driver.nodes["Product"].items() if p != "X9"} == {"v2"}


def test_embeddings_of_products_the_new_model_lacks_are_removed(store, driver):
    _export(store, FakeRecommender("v1"))
    smaller = FakeRecommender("v2")
    smaller.product_ids, smaller.product_vectors = smaller.product_ids[:2], smaller.product_vectors[:2]
    writer = _export(store, smaller, similar_k=1, k=0)
    assert writer.report["removed"]["embeddings"] == 1
    assert "embedding" not in driver.nodes["Product"]["B0003"]
    assert {k[2] for k in driver.rels["SIMILAR_TO"]} == {"v2"}


def test_a_source_whose_top_k_shrank_loses_the_stale_relationships_of_the_same_model(store, driver):
    _export(store, FakeRecommender("v1"), similar_k=2)
    _export(store, FakeRecommender("v1"), similar_k=1)
    assert sorted((k[0], k[1]) for k in driver.rels["SIMILAR_TO"]) == [
        ("B0001", "B0002"), ("B0002", "B0001"), ("B0003", "B0002")]
    # and a user with no recommendation any more loses theirs
    rec = FakeRecommender("v1")
    rec.recommend_batch = lambda users, k=10, exclude_seen=True: pd.DataFrame(
        {"user_id": ["U2"], "rank": [1], "product_id": ["B0002"], "score": [0.5]})
    _export(store, rec)
    assert [(k[0], k[1]) for k in driver.rels["RECOMMENDED"]] == [("U2", "B0002")]


def test_k_zero_skips_a_part_and_leaves_its_relationships_alone(store, driver):
    _export(store, FakeRecommender("v1"))
    _export(store, FakeRecommender("v2"), k=0)
    assert {k[2] for k in driver.rels["RECOMMENDED"]} == {"v1"}
    assert {k[2] for k in driver.rels["SIMILAR_TO"]} == {"v2"}


def test_a_model_of_another_dimension_rebuilds_the_vector_index(store, driver):
    _export(store, FakeRecommender("v1"))
    wider = FakeRecommender("v2", vectors=np.hstack([FakeRecommender().product_vectors, np.ones((3, 4))]))
    writer = _export(store, wider)
    assert writer.report["vector_index_created"] is True
    assert [c.kind for c in driver.calls].count("DROP_VECTOR_INDEX") == 1
    assert driver.indexes[cypher.VECTOR_INDEX]["options"]["indexConfig"]["vector.dimensions"] == 8
    assert len(driver.nodes["Product"]["B0001"]["embedding"]) == 8


def test_rows_for_nodes_the_database_lacks_are_reported(store, driver):
    rec = FakeRecommender("v1", user_ids=["U1", "U2"])
    orig = rec.recommend_batch
    rec.recommend_batch = lambda users, k=10, exclude_seen=True: pd.concat(
        [orig(users, k), pd.DataFrame({"user_id": ["U7"], "rank": [1], "product_id": ["B0001"], "score": [1.0]})])
    writer = _export(store, rec, chunk_size=10)
    assert writer.unmatched() == {"RECOMMENDED": 1}


def test_export_refuses_a_database_without_a_graph(tmp_path):
    store = Neo4jStore(Neo4jConfig("bolt://localhost:7687", "neo4j", "pw"), driver=FakeDriver(), show_progress=False)
    with pytest.raises(RuntimeError, match="holds no knowledge graph.*build_graph.py"):
        _export(store, FakeRecommender())


def test_store_methods_take_the_recommenders_tables_directly(store, driver):
    rec = FakeRecommender("v1")
    store.ensure_vector_index(4)
    assert store.write_product_embeddings(rec.product_ids, rec.product_vectors, "v1") == 3
    assert store.write_recommendations(rec.recommend_batch(["U1", "U2"]), "v1") == 2
    assert store.write_similar(rec.similar_batch(["B0001"], k=2), "v1") == 2
    assert store.output_models() == {"RECOMMENDED": {"v1": 2}, "SIMILAR_TO": {"v1": 2}}
    assert store.vector_index_config() == (4, "cosine")


@pytest.mark.parametrize("bad", ["ALSO_BOUGHT", "INTERACTED", "recommended", "RECOMMENDED]->() DELETE r //"])
def test_store_refuses_output_types_outside_the_allow_list(store, bad):
    with pytest.raises(ValueError, match="unknown output relationship type"):
        store.write_output(bad, FakeRecommender().recommend_batch(["U1"]), "v1")
    with pytest.raises(ValueError, match="unknown output relationship type"):
        store.remove_other_models("v1", (bad,))


@pytest.mark.parametrize("bad", ["", "  ", None, 3])
def test_model_version_must_be_a_non_empty_string(store, bad):
    with pytest.raises(ValueError, match="model version must be a non-empty string"):
        store.write_recommendations(FakeRecommender().recommend_batch(["U1"]), bad)


@pytest.mark.parametrize("dims", [0, 5000, 2.5, "8"])
def test_store_rejects_absurd_dimensions_before_sending_anything(store, driver, dims):
    with pytest.raises(ValueError, match="vector dimensions must be"):
        store.ensure_vector_index(dims)
    assert driver.calls == []


def test_relations_files_cannot_create_output_relationships(tmp_path):
    files = write_files(tmp_path)
    (tmp_path / "rel.csv").write_text("product_id,other_id,relation\nB0001,B0002,recommended\n"
                                      "B0001,B0003,similar_to\n", encoding="utf-8")
    graph = kg.KnowledgeGraph()
    with pytest.raises(kg.InputError, match="unknown relation") as e:
        kg.merge_files(graph, files["products"], relations=tmp_path / "rel.csv", show_progress=False)
    assert len(e.value.problems) == 2
    assert kg.schema.relation_type("RECOMMENDED") is None and "RECOMMENDED" not in kg.REL_TYPES


# --- dry run and CSV -----------------------------------------------------------------------------------
def test_dry_run_prints_every_statement_the_neo4j_export_sends(store, driver):
    out = io.StringIO()
    dry = DryRunWriter(batch_size=2, out=out)
    export_results(FakeRecommender("v1"), [dry], ["U1", "U2"], chunk_size=2, show_progress=False)
    printed = out.getvalue()
    assert "nothing is written" in printed
    assert "6 row(s) in 3 batch(es) of <= 2" in printed  # SIMILAR_TO: chunks of 2 + 1 products -> 4 + 2 rows
    _export(store, FakeRecommender("v1"))
    _export(store, FakeRecommender("v2"))  # a version change also sends the deletes
    sent = {c.query for c in driver.calls}
    assert sent <= set(dry.report["statements"])
    assert set(dry.report["statements"]) - sent == {cypher.DROP_VECTOR_INDEX}  # sent on a dimension change only
    for statement in sent:
        assert statement + ";" in printed


def test_csv_writer_writes_the_same_rows_as_neo4j(tmp_path, store, driver):
    _export(store, FakeRecommender("v1"))
    out = tmp_path / "results"
    export_results(FakeRecommender("v1"), [CsvResultWriter(out)], ["U1", "U2"], show_progress=False)
    recs = pd.read_csv(out / "recommendations.csv")
    assert list(recs.columns) == ["user_id", "product_id", "rank", "score", "model"]
    assert {(u, p, r, m) for u, p, r, m in recs[["user_id", "product_id", "rank", "model"]].values} == \
        {(k[0], k[1], v["rank"], k[2]) for k, v in driver.rels["RECOMMENDED"].items()}
    sim = pd.read_csv(out / "similar.csv")
    assert list(sim.columns)[:2] == ["source_id", "product_id"] and len(sim) == len(driver.rels["SIMILAR_TO"])
    emb = pq.read_table(out / "embeddings.parquet").to_pandas()
    assert emb["product_id"].tolist() == ["B0001", "B0002", "B0003"] and set(emb["model"]) == {"v1"}
    assert np.allclose(np.stack(emb["embedding"].to_numpy()), FakeRecommender().product_vectors)
    meta = json.loads((out / "export.json").read_text())
    assert meta["model"] == "v1" and meta["dimensions"] == 4 and meta["rows"]["RECOMMENDED"] == 2
    # a re-run gives the same files; a new model replaces them; no temporary files stay
    first = (out / "recommendations.csv").read_bytes()
    export_results(FakeRecommender("v1"), [CsvResultWriter(out)], ["U1", "U2"], show_progress=False)
    assert (out / "recommendations.csv").read_bytes() == first
    export_results(FakeRecommender("v2"), [CsvResultWriter(out)], ["U1", "U2"], show_progress=False)
    assert set(pd.read_csv(out / "similar.csv")["model"]) == {"v2"}
    assert sorted(p.name for p in out.iterdir()) == ["embeddings.parquet", "export.json", "recommendations.csv",
                                                    "similar.csv"]


def test_a_failed_export_leaves_the_previous_files(tmp_path):
    out = tmp_path / "results"
    export_results(FakeRecommender("v1"), [CsvResultWriter(out)], ["U1", "U2"], show_progress=False)
    rec = FakeRecommender("v2")
    rec.recommend_batch = lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("model broke"))
    with pytest.raises(RuntimeError, match="model broke"):
        export_results(rec, [CsvResultWriter(out)], ["U1", "U2"], show_progress=False)
    assert set(pd.read_csv(out / "recommendations.csv")["model"]) == {"v1"}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# --- the script ----------------------------------------------------------------------------------------
@pytest.fixture
def script(monkeypatch):
    spec = importlib.util.spec_from_file_location("export_to_neo4j", ROOT / "scripts" / "export_to_neo4j.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "load_recommender", lambda model, store: FakeRecommender("fake-v1"))
    return module


def test_script_csv_and_dry_run_need_no_server(script, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NEO4J_URI", raising=False)
    assert script.main(["--model", str(tmp_path), "--csv", str(tmp_path / "out"), "--users", "1", "--quiet",
                        "--json", str(tmp_path / "summary.json")]) == 0
    recs = pd.read_csv(tmp_path / "out" / "recommendations.csv")
    assert recs["user_id"].tolist() == ["U1"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model"] == "fake-v1" and summary["rows"] == {"SIMILAR_TO": 6, "RECOMMENDED": 1}
    assert script.main(["--model", str(tmp_path), "--dry-run", "--quiet", "--batch", "500", "--k", "5"]) == 0
    printed = capsys.readouterr().out
    assert "CREATE VECTOR INDEX product_embedding IF NOT EXISTS" in printed and "`vector.dimensions`: 4" in printed
    assert cypher.merge_output("RECOMMENDED") + ";" in printed and "2 row(s) in 1 batch(es) of <= 500" in printed


def test_script_without_csv_or_dry_run_needs_the_neo4j_settings(script, tmp_path, monkeypatch):
    monkeypatch.delenv("NEO4J_URI", raising=False)
    with pytest.raises(ValueError, match="no Neo4j URI: set NEO4J_URI"):
        script.main(["--model", str(tmp_path), "--quiet"])


@pytest.mark.parametrize("args, match", [(["--users", "0"], "--users takes 'all' or a positive number"),
                                         (["--users", "some"], "--users takes"),
                                         (["--k", "-1"], "--k and --similar-k must be >= 0")])
def test_script_validates_its_arguments(script, tmp_path, capsys, args, match):
    with pytest.raises(SystemExit):
        script.main(["--model", str(tmp_path), "--dry-run", *args])
    assert match in capsys.readouterr().err
