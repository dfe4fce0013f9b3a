"""Bad input: each error names the file, line, field and value; skip mode reports instead of failing."""
from __future__ import annotations

import pandas as pd
import pytest

from kg import EmbeddedStore, InputError, KnowledgeGraph, merge_files
from kg_fixtures import PRODUCTS, write


def _fail(**files):
    with pytest.raises(InputError) as exc:
        merge_files(KnowledgeGraph(), show_progress=False, **files)
    return exc.value


def test_missing_required_column(tmp_path):
    f = write(tmp_path, "products.csv", "id,title\n1,a\n")
    err = _fail(products=f)
    assert err.problems[0].field == "product_id"
    assert "products.csv:1: field 'product_id'" in str(err) and "missing required column 'product_id'" in str(err)


def test_duplicate_product_with_conflicting_fields(tmp_path):
    f = write(tmp_path, "products.csv", "product_id,title,brand\na,Hammer,Acme\nb,Saw,Acme\na,Hammer,Bosch\n")
    err = _fail(products=f)
    p = err.problems[0]
    assert (p.line, p.field, p.value) == (4, "brand", "Bosch")
    assert "duplicate product_id 'a' with a different brand than line 2" in str(err)


def test_interaction_for_unknown_product(tmp_path):
    p = write(tmp_path, "products.csv", PRODUCTS)
    i = write(tmp_path, "interactions.csv", "user_id,product_id\nu1,p1\nu1,p404\n")
    err = _fail(products=p, interactions=i)
    assert "interactions.csv:3: field 'product_id' = 'p404': unknown product" in str(err)


def test_unparseable_timestamp(tmp_path):
    p = write(tmp_path, "products.csv", PRODUCTS)
    i = write(tmp_path, "interactions.csv", "user_id,product_id,timestamp\nu1,p1,2014-01-01\nu1,p2,last tuesday\n")
    err = _fail(products=p, interactions=i)
    assert "interactions.csv:3: field 'timestamp' = 'last tuesday': unparseable timestamp" in str(err)


def test_non_utf8_bytes(tmp_path):
    f = tmp_path / "products.csv"
    f.write_bytes(b"product_id,title\na,ok\nb,caf\xe9 latte\n")
    err = _fail(products=f)
    assert "products.csv:3: field 'title' = 'bytes e9': not valid UTF-8" in str(err)


@pytest.mark.parametrize("content", ["", "product_id,title\n"])
def test_empty_file(tmp_path, content):
    f = write(tmp_path, "products.csv", content)
    err = _fail(products=f)
    assert "products.csv: field '-'" in str(err) and "empty file" in str(err)


def test_bad_relation_and_price(tmp_path):
    p = write(tmp_path, "products.csv", "product_id,price\na,12\nb,cheap\n")
    err = _fail(products=p)
    assert "products.csv:3: field 'price' = 'cheap': price is not a number" in str(err)
    p = write(tmp_path, "products.csv", "product_id\na\nb\n")
    r = write(tmp_path, "relations.csv", "product_id,relation,other_id\na,likes,b\na,also_bought,a\n")
    err = _fail(products=p, relations=r)
    assert "relations.csv:2: field 'relation' = 'likes': unknown relation" in str(err)
    assert "relations.csv:3: field 'other_id' = 'a': a product cannot be related to itself" in str(err)


def test_failed_build_leaves_store_intact(tmp_path, tiny_files):
    store = EmbeddedStore(tmp_path / "store")
    g = store.load()
    res = merge_files(g, *tiny_files, show_progress=False)
    store.write(g, res.delta)
    before = store.version_dir
    bad = write(tmp_path, "bad.csv", "user_id,product_id\nu9,p1\nu9,missing\n")
    g2 = store.load()
    with pytest.raises(InputError):
        merge_files(g2, interactions=bad, show_progress=False)
    assert store.version_dir == before
    from kg import assert_graphs_equal
    assert_graphs_equal(store.load(), g)


def test_skip_mode_keeps_good_rows_and_reports_bad_ones(tmp_path):
    from kg import write_skip_report
    p = tmp_path / "products.csv"
    p.write_bytes(b"product_id,title,price\na,ok,1\nb,caf\xe9,2\nc,fine,abc\nd,good,\n")
    i = write(tmp_path, "interactions.csv", "user_id,product_id,timestamp\nu1,a,2014-01-01\nu1,zz,\nu2,d,never\n")
    g = KnowledgeGraph()
    res = merge_files(g, products=p, interactions=i, on_error="skip", show_progress=False)
    assert list(g.nodes["Product"]["id"]) == ["a", "d"]
    assert len(g.edges["INTERACTED"]) == 1
    got = {(pr.file.rsplit("/", 1)[-1], pr.line, pr.field) for pr in res.skipped}
    assert got == {("products.csv", 3, "title"), ("products.csv", 4, "price"),
                   ("interactions.csv", 3, "product_id"), ("interactions.csv", 4, "timestamp")}
    write_skip_report(res.skipped, tmp_path / "report.csv")
    rep = pd.read_csv(tmp_path / "report.csv")
    assert list(rep.columns) == ["file", "line", "field", "value", "reason"] and len(rep) == 4


def test_multiline_csv_field_keeps_true_line_numbers(tmp_path):
    f = write(tmp_path, "products.csv", 'product_id,description,price\na,"two\nlines",1\nb,x,oops\n')
    err = _fail(products=f)
    assert err.problems[0].line == 4
