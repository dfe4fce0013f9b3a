"""Integer codes for id columns (`kg.codes`, `read_table(categorical=True)`): the same answers as plain strings."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from kg import codes
from kg.build import merge_files
from kg.graph import KnowledgeGraph
from kg.readers import _column, read_table
from kg.validate import INTERACTION_COLUMNS, check_interactions


def _pair(values: list[str]) -> tuple[pd.Series, pd.Series]:
    cat = pd.Series(pd.Categorical(values, categories=list(dict.fromkeys(values))))
    return cat, pd.Series(values, dtype=object)


@pytest.mark.parametrize("values", [["b", "a", "b", "c"], ["x"], ["a", "a", "a"], []])
def test_factorize_matches_pandas_on_strings(values):
    cat, obj = _pair(values)
    c1, u1 = codes.factorize(cat)
    c2, u2 = pd.factorize(obj.to_numpy(dtype=object), use_na_sentinel=False)
    np.testing.assert_array_equal(c1, c2)
    assert list(u1) == list(u2) and u1.dtype == object


def test_factorize_after_rows_are_dropped_keeps_first_appearance_order():
    cat, obj = _pair(["a", "b", "c", "b", "a", "d"])
    keep = np.array([False, True, False, True, True, True])  # "a" now first appears after "b"; "c" unused
    c1, u1 = codes.factorize(cat[keep])
    c2, u2 = pd.factorize(obj[keep].to_numpy(dtype=object), use_na_sentinel=False)
    np.testing.assert_array_equal(c1, c2)
    assert list(u1) == list(u2) == ["b", "a", "d"]


def test_categories_out_of_first_appearance_order():
    cat = pd.Series(pd.Categorical(["b", "a", "b"], categories=["a", "b"]))
    c, u = codes.factorize(cat)
    assert list(c) == [0, 1, 0] and list(u) == ["b", "a"]


def test_isin_matches_pandas():
    cat, obj = _pair(["p1", "p2", "p3", "p1", "zz"])
    known = pd.Index(["p1", "p3", "other"], dtype=object)
    np.testing.assert_array_equal(codes.isin(cat, known), obj.isin(known).to_numpy())
    np.testing.assert_array_equal(codes.isin(obj, known), obj.isin(known).to_numpy())


def test_column_strips_and_merges_values_that_become_equal():
    col = pa.chunked_array([pa.array(["a", " a", "b"]), pa.array(["b ", "a", "c", "c", "c", "c", "a"])])
    s = _column(col, strip=True, categorical=True)  # 5 raw values in 10 rows: coded
    assert s.dtype == "category"
    assert s.tolist() == ["a", "a", "b", "b", "a", "c", "c", "c", "c", "a"]
    assert list(s.cat.categories) == ["a", "b", "c"]
    # mostly distinct values stay plain str
    distinct = _column(pa.chunked_array([pa.array(["u1", "u2", "u3"])]), strip=True, categorical=True)
    assert distinct.dtype == object and distinct.tolist() == ["u1", "u2", "u3"]


def test_categorical_read_gives_the_same_rows_and_problems(tmp_path):
    path = tmp_path / "inter.csv"
    rows = ["user_id,product_id,timestamp,event,weight"]
    for i in range(60):
        rows.append(f"u{i % 7}, p{i % 5} ,{1400000000 + i % 3},{'view' if i % 2 else 'PURCHASE'},{i % 2 + 1}")
    rows.append("u1,ghost,1400000000,view,1")  # unknown product
    rows.append("u2,p1,yesterday,view,1")  # bad timestamp
    path.write_text("\n".join(rows) + "\n")
    known = pd.Index([f"p{i}" for i in range(5)], dtype=object)
    plain = read_table(path, *INTERACTION_COLUMNS)
    coded = read_table(path, *INTERACTION_COLUMNS, categorical=True)
    assert coded["user_id"].dtype == "category" and coded["product_id"].dtype == "category"
    pd.testing.assert_frame_equal(coded.astype(object), plain.astype(object))
    out_p, probs_p = check_interactions(plain, str(path), known)
    out_c, probs_c = check_interactions(coded, str(path), known)
    assert [(p.line, p.field, p.value) for p in probs_c] == [(p.line, p.field, p.value) for p in probs_p]
    assert [(p.line, p.field) for p in probs_c] == [(62, "product_id"), (63, "timestamp")]
    pd.testing.assert_frame_equal(out_c.astype({"user_id": object, "product_id": object}), out_p)


def test_build_with_coded_ids_writes_the_same_graph(tmp_path):
    prods = tmp_path / "products.csv"
    prods.write_text("product_id,title,brand,categories\n" +
                     "".join(f"p{i},Item {i},B{i % 3},A|A>X{i % 2}\n" for i in range(6)))
    inter = tmp_path / "inter.csv"
    inter.write_text("user_id,product_id,timestamp\n" +
                     "".join(f"u{(i * 7) % 11},p{i % 6},{1400000000 + i}\n" for i in range(80)))
    g = KnowledgeGraph()
    merge_files(g, prods, inter, show_progress=False)
    users = g.nodes["User"]["id"].tolist()
    # users in order of first appearance, exactly as a plain-string build numbers them
    assert users == list(dict.fromkeys(f"u{(i * 7) % 11}" for i in range(80)))
    e = g.edges_of("INTERACTED")
    got = list(zip(np.asarray(users)[e["src"]], g.nodes["Product"]["id"].to_numpy()[e["dst"]]))
    assert got == [(f"u{(i * 7) % 11}", f"p{i % 6}") for i in range(80)]
    again = merge_files(g, prods, inter, show_progress=False)
    assert again.delta.changes.relationships_created == 0 and again.delta.changes.nodes_created == 0
