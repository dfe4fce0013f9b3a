"""Ingestion: graph shape, identity rules, idempotence, incremental adds, updates."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kg import KnowledgeGraph, merge_files
from kg_fixtures import write


def _edges(g, rel, src_label, dst_label):
    e = g.edges_of(rel)
    s = g.nodes[src_label]["id"].to_numpy()[e["src"].to_numpy()]
    d = g.nodes[dst_label]["id"].to_numpy()[e["dst"].to_numpy()]
    return set(zip(s, d))


def test_counts_and_structure(tiny_graph):
    c = tiny_graph.counts()
    assert c["nodes"] == {"User": 3, "Product": 4, "Brand": 3, "Category": 8, "RelatedProduct": 1}
    assert c["relationships"] == {"INTERACTED": 6, "HAS_BRAND": 4, "IN_CATEGORY": 5, "SUBCATEGORY_OF": 6,
                                  "ALSO_BOUGHT": 2, "BOUGHT_TOGETHER": 1}


def test_brand_normalisation_merges_case_and_whitespace(tiny_graph):
    brands = tiny_graph.nodes["Brand"]
    assert list(brands["id"]) == ["stanley", "elmer's", "acme tools"]
    assert list(brands["name"]) == ["Stanley", "Elmer's", "ACME Tools"]  # first-seen display form
    assert _edges(tiny_graph, "HAS_BRAND", "Product", "Brand") == {
        ("p1", "stanley"), ("p2", "stanley"), ("p3", "elmer's"), ("p4", "acme tools")}


def test_category_tree_keeps_same_name_under_two_parents_apart(tiny_graph):
    cats = tiny_graph.nodes["Category"].set_index("id")
    assert cats.loc["tools", "level"] == 0 and cats.loc["tools > fasteners > staples", "level"] == 2
    # "Tools" under root and "Tools" under Home are two nodes
    assert cats.loc["home > tools", "name"] == "Tools" and "tools" in cats.index
    sub = _edges(tiny_graph, "SUBCATEGORY_OF", "Category", "Category")
    assert ("tools > fasteners > staples", "tools > fasteners") in sub
    assert ("home > tools", "home") in sub
    leaf = _edges(tiny_graph, "IN_CATEGORY", "Product", "Category")
    assert ("p2", "tools > hand tools") in leaf and ("p2", "home > tools") in leaf
    assert ("p1", "tools") not in leaf  # only the leaf


def test_interaction_properties(tiny_graph):
    e = tiny_graph.edges["INTERACTED"]
    assert list(e["seq"]) == list(range(6))
    assert e["timestamp"].iloc[0] == 1388534400 and e["timestamp"].iloc[2] == 1400000000
    assert pd.isna(e["timestamp"].iloc[3])
    assert e["timestamp"].iloc[4] == 1391250600  # 2014-02-01T10:30:00Z
    assert list(e["event"]) == ["purchase", "view", "purchase", "purchase", "interaction", "interaction"]
    assert list(e["weight"]) == [1.0, 0.5, 1.0, 1.0, 1.0, 1.0]


def test_related_product_outside_catalog_is_kept_but_not_recommendable(tiny_graph):
    prods = tiny_graph.nodes["Product"].set_index("id")
    assert not prods.loc["X9", "in_catalog"] and prods.loc["p1", "in_catalog"]
    assert tiny_graph.catalog_mask.tolist() == [True, True, True, True, False]
    assert ("p1", "X9") in _edges(tiny_graph, "ALSO_BOUGHT", "Product", "Product")


def test_second_identical_build_changes_nothing(tiny_files):
    g = KnowledgeGraph()
    first = merge_files(g, *tiny_files, show_progress=False)
    assert first.delta.changes.nodes_created == 3 + 5 + 3 + 8
    before = {k: v.copy() for k, v in g.edges.items()}
    again = merge_files(g, *tiny_files, show_progress=False)
    assert vars(again.delta.changes) == {"nodes_created": 0, "nodes_updated": 0,
                                         "relationships_created": 0, "relationships_deleted": 0}
    for k, v in before.items():
        pd.testing.assert_frame_equal(v, g.edges[k])


def test_incremental_interactions_add_only_new(tmp_path, tiny_graph):
    more = write(tmp_path, "more.csv", "user_id,product_id,timestamp\nu1,p1,2014-01-01\nu4,p3,2015-01-01\n"
                 "u4,p3,2015-01-01\n")
    res = merge_files(tiny_graph, interactions=more, show_progress=False)
    # u1,p1 on that date already exists (event 'interaction' differs from 'purchase' -> new); u4 twice -> 2 rows
    assert res.delta.changes.nodes_created == 1
    assert res.delta.changes.relationships_created == 3
    assert tiny_graph.edges["INTERACTED"]["seq"].tolist() == list(range(9))
    res = merge_files(tiny_graph, interactions=more, show_progress=False)
    assert res.delta.changes.relationships_created == 0


def test_product_update_replaces_brand_and_categories(tmp_path, tiny_graph):
    upd = write(tmp_path, "upd.csv", "product_id,title,brand,categories\np1,Steel staples v2,Bostitch,"
                "Tools > Fasteners > Staples\n")
    res = merge_files(tiny_graph, products=upd, show_progress=False)
    ch = res.delta.changes
    assert (ch.nodes_created, ch.nodes_updated, ch.relationships_created, ch.relationships_deleted) == (1, 1, 1, 1)
    assert ("p1", "bostitch") in _edges(tiny_graph, "HAS_BRAND", "Product", "Brand")
    assert ("p1", "stanley") not in _edges(tiny_graph, "HAS_BRAND", "Product", "Brand")
    assert tiny_graph.nodes["Product"].set_index("id").loc["p1", "title"] == "Steel staples v2"


def test_related_product_is_promoted_when_it_joins_the_catalog(tmp_path, tiny_graph):
    n = tiny_graph.num_nodes("Product")
    new = write(tmp_path, "new.csv", "product_id,title,brand\nX9,Finally in stock,Stanley\n")
    merge_files(tiny_graph, products=new, show_progress=False)
    prods = tiny_graph.nodes["Product"].set_index("id")
    assert tiny_graph.num_nodes("Product") == n and prods.loc["X9", "in_catalog"]
    assert ("p1", "X9") in _edges(tiny_graph, "ALSO_BOUGHT", "Product", "Product")


def test_identical_duplicate_products_are_merged_silently(tmp_path):
    f = write(tmp_path, "p.csv", "product_id,title\na,x\na,x\n")
    g = KnowledgeGraph()
    res = merge_files(g, products=f, show_progress=False)
    assert g.num_nodes("Product") == 1 and not res.skipped


def test_id_map_round_trip(tiny_graph):
    m = tiny_graph.id_map("Product")
    assert m.index("p3") == 2 and m.external(2) == "p3"
    assert m.indices(["p4", "p1"]).tolist() == [3, 0]
    with pytest.raises(KeyError, match="unknown Product id 'nope'"):
        m.index("nope")
    assert m.indices(["p1", "nope"], missing="-1").tolist() == [0, -1]


def test_jsonl_and_parquet_inputs_give_the_same_graph(tmp_path, tiny_files, tiny_graph):
    from kg import assert_graphs_equal
    prods, inter, rels = (pd.read_csv(f, dtype=str, keep_default_na=False) for f in tiny_files)
    prods.to_json(tmp_path / "p.jsonl", orient="records", lines=True)
    inter.to_parquet(tmp_path / "i.parquet")
    rels.to_json(tmp_path / "r.jsonl", orient="records", lines=True)
    g = KnowledgeGraph()
    merge_files(g, tmp_path / "p.jsonl", tmp_path / "i.parquet", tmp_path / "r.jsonl", show_progress=False)
    assert_graphs_equal(g, tiny_graph)
    assert np.array_equal(g.catalog_mask, tiny_graph.catalog_mask)


def test_dedup_in_parts_by_user_matches_the_whole_table(monkeypatch):
    """Large tables are deduplicated in parts by user; the parts must decide every row exactly as one pass
    does, repeats of the same (user, product, event, timestamp) included."""
    import kg.ingest as ingest

    rng = np.random.default_rng(0)
    n = 400
    cur = pd.DataFrame({"src": rng.integers(0, 9, n), "dst": rng.integers(0, 5, n),
                        "timestamp": pd.array(rng.choice([1, 2, None], n), dtype="Int64"), "seq": np.arange(n),
                        "event": rng.choice(["view", "purchase"], n).astype(object), "weight": 1.0})
    new = pd.concat([cur.sample(frac=0.7, random_state=1), cur.sample(frac=0.5, random_state=2)])
    new = pd.concat([new, cur.assign(dst=cur["dst"] + 10).head(50)], ignore_index=True)
    whole = ingest._unseen_interactions(new, cur)
    monkeypatch.setattr(ingest, "_DEDUP_PART_ROWS", 97)  # 11 parts
    parts = ingest._unseen_interactions(new, cur)
    assert whole.sum() > 50 and not whole.all()  # repeats beyond the stored count, and the 50 new rows
    np.testing.assert_array_equal(parts, whole)
