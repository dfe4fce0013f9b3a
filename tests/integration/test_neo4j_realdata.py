"""The real catalogs through a live Neo4j server: the build equals the embedded store's, a rebuild creates
nothing and a new file adds only what is new; training from Neo4j sees exactly the training data of the
embedded store and reaches the same validation NDCG@10; the export's vector index answers like
`Recommender.similar`; and every exploration query of cypher/explore.cypher, and every read query that a
documentation page (README.md, docs/*.md) shows in a ```cypher block, returns rows on the Scientific graph
with its recommendations written back, rows that say what the query promises.

The tests of this module run in file order and share one database state (built once, mutated last).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from live_neo4j import db_state, empty_store, neo4j_config, require_server  # noqa: F401

require_server()

import doc_pages  # noqa: E402
import kg  # noqa: E402
from conftest import data_dir  # noqa: E402
from kg import cypher  # noqa: E402
from scripts_loader import script  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.realdata]
build_graph, train, export = script("build_graph"), script("train"), script("export_to_neo4j")
EPOCHS = "2"  # enough to compare two trainings epoch by epoch; the full run is in the closing note


def _conn(store) -> list[str]:
    c = store.config
    return ["--neo4j", "--neo4j-uri", c.uri, "--neo4j-user", c.user, "--neo4j-password", c.password]


def _q(store, statement: str, **params) -> list[dict]:
    return [r.data() for r in store.connect().execute_query(statement, params, database_=store.config.database).records]


@pytest.fixture(scope="module")
def sci(tmp_path_factory, neo4j_config):
    """Scientific converted, built into an embedded store and (through build_graph.py --neo4j) into Neo4j."""
    src = data_dir("amazon-scientific")
    d = tmp_path_factory.mktemp("scientific")
    assert script("convert_dataset").main(["amazon-json", "--items", str(src / "Scientific.item.json"),
                                           "--interactions", str(src / "Scientific.inter.json"), "--out", str(d)]) == 0
    files = ["--products", str(d / "products.csv"), "--interactions", str(d / "interactions.csv")]
    assert build_graph.main([*files, "--store", str(d / "embedded"), "--quiet"]) == 0
    store = empty_store(kg.Neo4jConfig.from_env(batch_size=5000))
    assert build_graph.main([*files, "--store", str(d / "local"), "--quiet", "--json", str(d / "neo4j.json"),
                             *_conn(store)]) == 0
    yield {"dir": d, "files": files, "store": store, "embedded": kg.EmbeddedStore(d / "embedded").load()}
    store.clear()
    store.drop_vector_index()
    store.close()


def _cypher_counts(store) -> dict[str, dict[str, int]]:
    nodes = {label: _q(store, f"MATCH (n:{label}) RETURN count(n) AS n")[0]["n"] for label in kg.NODE_LABELS}
    rels = {t: _q(store, f"MATCH ()-[r:{t}]->() RETURN count(r) AS n")[0]["n"] for t in kg.REL_TYPES}
    rels.update({t: _q(store, f"MATCH ()-[r:{t}]->() RETURN count(r) AS n")[0]["n"] for t in kg.OUTPUT_REL_TYPES})
    return {"nodes": nodes, "relationships": {t: n for t, n in rels.items() if n}}


def _check_build_matches_embedded(store, embedded: kg.KnowledgeGraph, sample: int = 300) -> None:
    want = embedded.counts()
    got = _cypher_counts(store)
    got["relationships"] = {t: n for t, n in got["relationships"].items() if t in kg.REL_TYPES}
    # counts() splits Product into catalog products and RelatedProduct (known only from a relation)
    assert got["nodes"] == {**{label: want["nodes"][label] for label in kg.NODE_LABELS},
                            "Product": want["nodes"]["Product"] + want["nodes"]["RelatedProduct"]}
    assert (_q(store, "MATCH (p:Product) WHERE NOT p.in_catalog RETURN count(p) AS n")[0]["n"]
            == want["nodes"]["RelatedProduct"])  # products known only from a relation
    assert got["relationships"] == {t: n for t, n in want["relationships"].items() if n}
    rng = np.random.default_rng(0)
    for label in kg.NODE_LABELS:  # property by property for a sample of each label
        table = embedded.nodes[label]
        rows = table.iloc[np.sort(rng.choice(len(table), min(sample, len(table)), replace=False))]
        stored = {r["id"]: r["p"] for r in _q(store, f"MATCH (n:{label}) WHERE n.id IN $ids RETURN n.id AS id, "
                                                     f"properties(n) AS p", ids=rows["id"].tolist())}
        assert len(stored) == len(rows)
        for row in rows.to_dict("records"):
            props = stored[row["id"]]
            for col, value in row.items():
                if pd.isna(value):
                    assert col not in props, (label, row["id"], col)  # Neo4j stores no nulls
                else:
                    assert props[col] == (value.item() if hasattr(value, "item") else value), (label, row["id"], col)
    kg.assert_graphs_equal(store.load(), embedded)


def test_scientific_build_matches_the_embedded_store(sci):
    _check_build_matches_embedded(sci["store"], sci["embedded"])
    made = json.loads((sci["dir"] / "neo4j.json").read_text())
    assert made["nodes"] == sci["embedded"].counts()["nodes"] and made["changes"]["nodes_created"] > 0
    kg.assert_graphs_equal(kg.EmbeddedStore(sci["dir"] / "local").load(), sci["embedded"])  # the local copy


def test_second_identical_build_creates_nothing(sci):
    before = db_state(sci["store"])
    out = sci["dir"] / "again.json"
    assert build_graph.main([*sci["files"], "--store", str(sci["dir"] / "local"), "--quiet", "--json", str(out),
                             *_conn(sci["store"])]) == 0
    assert json.loads(out.read_text())["changes"] == {"nodes_created": 0, "nodes_updated": 0,
                                                      "relationships_created": 0, "relationships_deleted": 0}
    assert db_state(sci["store"]) == before


def _history(model: Path) -> list[float]:
    return [round(e["valid_ndcg@10"], 12) for e in json.loads((model / "history.json").read_text())["history"]]


def test_training_from_neo4j_sees_the_same_data_and_reaches_the_same_ndcg(sci):
    from fusion.data import TrainData
    from fusion.evaluation.splits import make_split

    from_neo4j = sci["store"].load()
    kg.assert_graphs_equal(from_neo4j, sci["embedded"])  # identical id maps (node tables) and edge sets
    split_a = make_split(from_neo4j, "loo", seed=0, cold_frac=0.05)
    split_b = make_split(sci["embedded"], "loo", seed=0, cold_frac=0.05)
    a = TrainData.from_graph(split_a.fit_graph(from_neo4j, final=False), valid=split_a.valid, seed=0)
    b = TrainData.from_graph(split_b.fit_graph(sci["embedded"], final=False), valid=split_b.valid, seed=0)
    assert np.array_equal(a.items, b.items)
    assert (a.user_items != b.user_items).nnz == 0 and (a.valid != b.valid).nnz == 0
    for t in kg.REL_TYPES:
        pd.testing.assert_frame_equal(a.graph.edges_of(t).reset_index(drop=True), b.graph.edges_of(t).reset_index(drop=True))

    common = ["--store", str(sci["dir"] / "embedded"), "--split", "loo", "--set", "train.epochs", EPOCHS,
              "--set", "item_item.enabled", "false", "--no-refit", "--quiet"]
    assert train.main([*common, "--out", str(sci["dir"] / "model_neo4j"), *_conn(sci["store"])]) == 0
    assert train.main([*common, "--out", str(sci["dir"] / "model_embedded")]) == 0
    via_neo4j, via_embedded = _history(sci["dir"] / "model_neo4j"), _history(sci["dir"] / "model_embedded")
    assert len(via_neo4j) == int(EPOCHS) and via_neo4j == via_embedded, (via_neo4j, via_embedded)
    meta = json.loads((sci["dir"] / "model_neo4j" / "meta.json").read_text())
    assert meta["graph_source"].startswith("neo4j bolt://")
    print(f"validation NDCG@10 per epoch, from Neo4j {via_neo4j} = from the embedded store {via_embedded}")


@pytest.fixture(scope="module")
def exported(sci):
    """The Neo4j-trained model's results written back with scripts/export_to_neo4j.py."""
    from fusion import Recommender
    model = sci["dir"] / "model_neo4j"
    if not (model / "model.pt").exists():
        pytest.fail("the training test did not leave a model")
    args = ["--model", str(model), "--store", str(sci["dir"] / "embedded"), "--k", "10", "--similar-k", "10",
            "--batch", "2000", "--users", "all", "--quiet", *_conn(sci["store"])]
    assert export.main([*args, "--json", str(sci["dir"] / "export.json")]) == 0
    rec = Recommender.load(model, store=sci["dir"] / "embedded")
    return {"rec": rec, "args": args, "model": model}


def _vector_top(store, product_ids: list[str], k: int) -> dict[str, list[str]]:
    rows = _q(store, "UNWIND $ids AS pid MATCH (p:Product {id: pid}) "
                     "CALL db.index.vector.queryNodes('product_embedding', $k1, p.embedding) YIELD node, score "
                     "WITH pid, node, score WHERE node.id <> pid "
                     "RETURN pid, collect(node.id)[..$k] AS top", ids=product_ids, k1=k + 1, k=k)
    return {r["pid"]: r["top"] for r in rows}


def test_export_vector_index_agrees_with_similar(sci, exported):
    store, rec = sci["store"], exported["rec"]
    index = [r for r in _q(store, "SHOW INDEXES YIELD name, state, type") if r["name"] == cypher.VECTOR_INDEX]
    assert index == [{"name": "product_embedding", "state": "ONLINE", "type": "VECTOR"}]
    rng = np.random.default_rng(0)
    products = [str(p) for p in rng.choice(rec.product_ids, 100, replace=False)]
    from_index = _vector_top(store, products, 10)
    overlaps = [len(set(from_index[p]) & set(rec.similar(p, k=10)["product_id"])) / 10 for p in products]
    print(f"vector index vs Recommender.similar, 100 products: mean top-10 overlap {np.mean(overlaps):.3f}, "
          f"min {min(overlaps):.1f}")
    assert np.mean(overlaps) >= 0.95

    users = rec.user_ids
    recs = rec.recommend_batch(users, k=10)
    counts = _cypher_counts(store)["relationships"]
    assert counts["RECOMMENDED"] == len(recs)
    assert counts["SIMILAR_TO"] == len(rec.similar_batch(rec.product_ids, k=10))
    assert store.output_models() == {"RECOMMENDED": {rec.model_version: len(recs)},
                                     "SIMILAR_TO": {rec.model_version: counts["SIMILAR_TO"]}}
    stored = _q(store, "MATCH (p:Product) WHERE p.embedding IS NOT NULL RETURN count(p) AS n, "
                       "collect(DISTINCT p.embedding_model) AS models")[0]
    assert stored == {"n": len(rec.product_ids), "models": [rec.model_version]}


def test_reexport_changes_nothing_and_a_new_model_version_replaces_the_old(sci, exported, tmp_path):
    import torch

    store = sci["store"]
    before = db_state(store)
    assert export.main(exported["args"]) == 0
    assert db_state(store) == before

    # a second model version: the same network with its weights nudged (a retrain would take minutes)
    model2 = tmp_path / "model_v2"
    shutil.copytree(exported["model"], model2)
    state = torch.load(model2 / "model.pt")
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[name] = state[name] * 1.01
    torch.save(state, model2 / "model.pt")
    args = [str(model2) if a == str(exported["model"]) else a for a in exported["args"]]
    assert export.main(args) == 0
    from fusion import Recommender
    v2 = Recommender.load(model2, store=sci["dir"] / "embedded").model_version
    assert v2 != exported["rec"].model_version
    models = store.output_models()
    assert set(models["RECOMMENDED"]) == {v2} and set(models["SIMILAR_TO"]) == {v2}
    assert _q(store, "MATCH (p:Product) WHERE p.embedding IS NOT NULL RETURN collect(DISTINCT p.embedding_model) AS m"
              )[0]["m"] == [v2]
    assert export.main(exported["args"]) == 0  # back to the first version for the exploration tests
    assert set(store.output_models()["RECOMMENDED"]) == {exported["rec"].model_version}


# --- every exploration query on the real graph ------------------------------------------------------------
def _queries() -> list[tuple[str, dict, str]]:
    """(where, params, statement) of each read query: explore.cypher's blocks, then every ```cypher block of
    every documentation page (found by tests/doc_pages.py). Schema, listing and write statements a page
    shows are left to tests/unit/test_cypher.py: this test only reads."""
    sources = [doc_pages.explore_blocks()] + [doc_pages.blocks(page) for page in doc_pages.pages()]
    return [(block.where, block.param_values(), statement)
            for blocks in sources for block in blocks for statement in block.statements
            if doc_pages.is_read_query(statement)]


def _pick_user(store, rec) -> tuple[str, str]:
    """A user whose recommendations share a brand with the history and have a path that explains them."""
    for user in rec.user_ids[:500]:
        if not _q(store, cypher.EXPLORE_RESULTS["recommendations_sharing_brand"], user_id=user):
            continue
        for product in rec.recommend(user, k=10)["product_id"]:
            if _q(store, cypher.EXPLORE_RESULTS["why_recommended"], user_id=user, product_id=product, k=1):
                return user, product
    pytest.fail("no user among the first 500 has an explained recommendation sharing a brand")


def test_every_exploration_query_returns_rows_that_mean_what_they_say(sci, exported):
    store, rec, g = sci["store"], exported["rec"], sci["embedded"]
    user, product = _pick_user(store, rec)
    real = {"user_id": user, "product_id": product}
    ran = {}
    assert doc_pages.NEO4J_PAGE in doc_pages.pages()
    for where, params, statement in _queries():
        args = {**params, **{k: v for k, v in real.items() if k in params}}
        rows = _q(store, statement, **args)
        assert rows, f"{where}: no rows for {args}:\n{statement}"
        ran[" ".join(statement.split())] = (args, rows)
    by_name = {name: ran.get(" ".join(q.split())) for name, q in {**cypher.EXPLORE, **cypher.EXPLORE_RESULTS}.items()}
    assert all(v is not None for v in by_name.values()), [n for n, v in by_name.items() if v is None]

    users, products = g.nodes["User"]["id"].to_numpy(), g.nodes["Product"]["id"].to_numpy()
    inter = g.edges_of("INTERACTED")
    u_idx = int(np.flatnonzero(users == user)[0])
    history = inter[inter["src"] == u_idx].sort_values("seq")
    seen_ids = products[history["dst"].to_numpy()].tolist()

    top = rec.recommend(user, k=10)["product_id"].tolist()
    side = by_name["history_and_recommendations"][1]
    assert [r["product"] for r in side if r["side"] == "INTERACTED"] == seen_ids  # the user's own history
    assert [r["product"] for r in side if r["side"] == "RECOMMENDED"] == top
    assert [r["product"] for r in by_name["user_history"][1]] == seen_ids[:50]

    brand_of = dict(zip(products[g.edges_of("HAS_BRAND")["src"]], g.nodes["Brand"]["name"].to_numpy()[g.edges_of("HAS_BRAND")["dst"]]))
    cats = g.edges_of("IN_CATEGORY")
    cat_names = g.nodes["Category"]["name"].to_numpy()
    p_idx = int(np.flatnonzero(products == product)[0])
    shared = {brand_of.get(product), *cat_names[cats[cats["src"] == p_idx]["dst"]]} - {None}
    for r in by_name["why_recommended"][1]:
        path = r["path"]  # Record.data(): [node, relationship, node, ...], nodes as property dicts
        assert path[0]["id"] == user and path[2]["id"] == r["seen"] and r["seen"] in seen_ids and r["seen"] != product
        end = path[-1]
        assert end.get("id") == product or end.get("name") in shared, (r["seen"], r["link"], r["via"])
        assert r["rec"][1] == "RECOMMENDED"  # Record.data() of a relationship: (start, type, end)
        assert r["rank"] == top.index(product) + 1  # the rank the model gave it

    similar = rec.similar(product, k=10)["product_id"].tolist()
    assert [r["product"] for r in by_name["similar_products"][1]] == similar
    near = [r["product"] for r in by_name["vector_neighbours"][1]]
    assert product not in near and len(set(near) & set(similar)) >= 8
    scores = [r["score"] for r in by_name["vector_neighbours"][1]]
    assert scores == sorted(scores, reverse=True)
    history_brands = {brand_of.get(p) for p in seen_ids} - {None}
    for r in by_name["recommendations_sharing_brand"][1]:
        assert r["brand"] in history_brands and r["brand_in_history"] >= 1
    assert [r["model"] for r in by_name["model_versions"][1]] == [rec.model_version] * 2
    assert by_name["embedding_models"][1] == [{"model": rec.model_version, "products": len(rec.product_ids),
                                              "dimensions": rec.product_vectors.shape[1]}]
    ctx = by_name["product_context"][1]
    assert {r["brand"] for r in ctx} == {brand_of.get(product)}
    for r in by_name["brands_sharing_customers"][1]:
        assert r["shared_customers"] >= 2
    assert all(r["level"] <= 2 for r in by_name["category_tree"][1])
    for r in by_name["two_hops_from_user"][1]:
        assert r["product"] not in seen_ids
    print(f"explored user {user} / product {product}: {len(ran)} distinct queries returned rows")


def test_adding_a_file_adds_only_what_is_new(sci, tmp_path):
    g = sci["embedded"]
    users, products = g.nodes["User"]["id"].tolist(), g.nodes["Product"]["id"].tolist()
    header, old_row = (sci["dir"] / "interactions.csv").read_text(encoding="utf-8").splitlines()[:2]
    more = tmp_path / "more.csv"  # a new user, a new interaction of a known user, and one already stored
    inter = g.edges_of("INTERACTED")
    unseen = sorted(set(range(len(products))) - set(inter[inter["src"] == 0]["dst"].tolist()))[0]
    more.write_text("user_id,product_id\n" f"NEWUSER1,{products[0]}\n" f"{users[0]},{products[unseen]}\n",
                    encoding="utf-8")
    again = tmp_path / "again.csv"
    again.write_text(header + "\n" + old_row + "\n", encoding="utf-8")
    before = _cypher_counts(sci["store"])
    out = tmp_path / "more.json"
    assert build_graph.main(["--interactions", str(more), "--store", str(sci["dir"] / "local"), "--quiet",
                             "--json", str(out), *_conn(sci["store"])]) == 0
    changes = json.loads(out.read_text())["changes"]
    state = db_state(sci["store"])
    assert build_graph.main(["--interactions", str(again), "--store", str(sci["dir"] / "local"), "--quiet",
                             *_conn(sci["store"])]) == 0
    assert db_state(sci["store"]) == state  # a row that is already stored adds nothing
    assert changes["nodes_created"] == 1 and changes["relationships_created"] == 2
    after = _cypher_counts(sci["store"])
    assert after["nodes"]["User"] == before["nodes"]["User"] + 1
    assert after["relationships"]["INTERACTED"] == before["relationships"]["INTERACTED"] + 2
    assert after["nodes"]["Product"] == before["nodes"]["Product"]
    for f in (more, again):
        assert build_graph.main(["--interactions", str(f), "--store", str(sci["dir"] / "embedded"), "--quiet"]) == 0
    kg.assert_graphs_equal(sci["store"].load(), kg.EmbeddedStore(sci["dir"] / "embedded").load())


@pytest.mark.slow
def test_beauty_build_matches_the_embedded_store(sci, tmp_path):
    src = data_dir("amazon-beauty-kg")
    assert script("convert_dataset").main(["amazon-kg", "--dir", str(src), "--out", str(tmp_path)]) == 0
    files = ["--products", str(tmp_path / "products.csv"), "--interactions", str(tmp_path / "interactions.csv"),
             "--relations", str(tmp_path / "relations.csv")]
    assert build_graph.main([*files, "--store", str(tmp_path / "embedded"), "--quiet"]) == 0
    store = empty_store(kg.Neo4jConfig.from_env(batch_size=10000))
    try:
        assert build_graph.main([*files, "--store", str(tmp_path / "local"), "--quiet", *_conn(store)]) == 0
        _check_build_matches_embedded(store, kg.EmbeddedStore(tmp_path / "embedded").load())
        before = _cypher_counts(store), store.meta()["version"]
        out = tmp_path / "again.json"
        assert build_graph.main([*files, "--store", str(tmp_path / "local"), "--quiet", "--json", str(out),
                                 *_conn(store)]) == 0
        # nothing to write: no statement ran (the write counter did not move) and the counts are the same
        assert not any(json.loads(out.read_text())["changes"].values())
        assert (_cypher_counts(store), store.meta()["version"]) == before
    finally:
        store.clear()
        store.close()
