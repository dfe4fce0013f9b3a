"""kg/neo4j_import.py without a server: the CSV files the bulk import writes, read back by a small
RFC 4180 reader that treats fields as `neo4j-admin database import` does (an empty unquoted field is no
property, `""` is the empty string, typed columns by their header), must rebuild the source graph exactly
as `Neo4jStore.load()` would. tests/integration/test_neo4j_bulk_import.py runs the real importer."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from neo4j_fixtures import write_files

import kg
from kg import cypher, neo4j_import
from kg.graph import NODE_DTYPES
from kg.neo4j_import import (META_HEADER, import_arguments, node_header, relationship_header,
                             write_import_files)
from kg.schema import NODE_LABELS, REL_SPECS

TRICKY = ('product_id,title,description,brand,categories,price\n'
          'B0004,"He said ""hi"", twice","line one\nline two \\\\ é ✓ 😀",Acme,Beauty > Gifts,0.1\n'
          'B0005,Plain,,,,1e-07\n')


def _fields(text: str) -> list[list[tuple[str, bool]]]:
    """Rows of (value, quoted) from CSV text (RFC 4180: quotes doubled inside quoted fields, which may span lines)."""
    rows, row, i, n = [], [], 0, len(text)
    while i < n:
        if text[i] == '"':
            j, buf = i + 1, []
            while True:
                k = text.index('"', j)
                buf.append(text[j:k])
                if k + 1 < n and text[k + 1] == '"':
                    buf.append('"')
                    j = k + 2
                    continue
                i = k + 1
                break
            row.append(("".join(buf), True))
        else:
            k = i
            while k < n and text[k] not in ",\n":
                k += 1
            row.append((text[i:k], False))
            i = k
        if i < n and text[i] == ",":
            i += 1
            if i == n or text[i] == "\n":
                row.append(("", False))
        if i < n and text[i] == "\n":
            rows.append(row)
            row = []
            i += 1
    if row:
        rows.append(row)
    return rows


def _value(field: tuple[str, bool], kind: str):
    text, quoted = field
    if not text and not quoted:
        return None  # the importer stores no property
    return {"string": lambda v: v, "long": int, "double": float,
            "boolean": lambda v: {"true": True, "false": False}[v]}[kind](text)


def _read(path: Path) -> tuple[list[str], list[dict]]:
    """Header and rows as the importer would store them: {property: value} without the missing ones."""
    head, *body = _fields(path.read_text(encoding="utf-8"))
    names = [h for h, _ in head]
    out = []
    for fields in body:
        assert len(fields) == len(names), (names, fields)
        rec = {}
        for name, f in zip(names, fields):
            prop, _, kind = name.partition(":")
            kind = {"": "string"}.get(kind, kind)
            if kind.startswith(("ID(", "START_ID(", "END_ID(")):
                kind = "string"
            if kind == "TYPE":
                kind = "string"
            rec[prop or name] = _value(f, kind)
        out.append(rec)
    return names, out


def _graph(tmp_path: Path) -> kg.KnowledgeGraph:
    files = write_files(tmp_path)
    (tmp_path / "tricky.csv").write_text(TRICKY, encoding="utf-8")
    graph = kg.KnowledgeGraph()
    kg.merge_files(graph, show_progress=False, **files)
    kg.merge_files(graph, show_progress=False, products=tmp_path / "tricky.csv")
    return graph


def _rebuild(files: neo4j_import.ImportFiles) -> kg.KnowledgeGraph:
    """What `Neo4jStore.load()` would read from a database imported from `files`."""
    from kg.neo4j_store import _edge_table, _node_table
    g = kg.KnowledgeGraph()
    idx_of = {}
    for label in NODE_LABELS:
        if label not in files.nodes:
            continue
        _, rows = _read(files.nodes[label])
        table = pd.DataFrame([{c: r.get(c) for c in (cypher.NODE_INDEX, *NODE_DTYPES[label])} for r in rows],
                             dtype=object).sort_values(cypher.NODE_INDEX)
        g.set_nodes(label, _node_table(label, table.reset_index(drop=True)))
        idx_of[label] = {r["id"]: r[cypher.NODE_INDEX] for r in rows}
    for t, path in files.relationships.items():
        spec = REL_SPECS[t]
        _, rows = _read(path)
        assert {r[":TYPE"] for r in rows} == {t}
        recs = [{"src": idx_of[spec.src][r[f":START_ID({spec.src})"]],
                 "dst": idx_of[spec.dst][r[f":END_ID({spec.dst})"]],
                 **{p: r.get(p) for p in spec.properties}, "_order": r[cypher.REL_ORDER[t]]} for r in rows]
        table = pd.DataFrame(recs, dtype=object).sort_values("_order").drop(columns="_order")
        g.edges[t] = _edge_table(t, table.reset_index(drop=True))
    return g


def test_headers_name_id_spaces_types_and_typed_columns():
    assert node_header("User") == ["id:ID(User)", "idx:long"]
    assert node_header("Product") == ["id:ID(Product)", "idx:long", "title:string", "description:string",
                                      "price:double", "in_catalog:boolean"]
    assert node_header("Category") == ["id:ID(Category)", "idx:long", "name:string", "level:long"]
    assert relationship_header("INTERACTED") == [":START_ID(User)", ":END_ID(Product)", ":TYPE", "seq:long",
                                                 "timestamp:long", "event:string", "weight:double"]
    assert relationship_header("ALSO_BOUGHT") == [":START_ID(Product)", ":END_ID(Product)", ":TYPE", "ord:long"]
    assert META_HEADER[0] == ":ID(KGMeta)"
    with pytest.raises(ValueError, match="unknown node label"):
        node_header("Product) CREATE (x")
    with pytest.raises(ValueError, match="unknown relationship type"):
        relationship_header("RECOMMENDED")


def test_files_rebuild_the_graph_exactly(tmp_path):
    graph = _graph(tmp_path)
    files = write_import_files(graph, tmp_path / "csv", info={"files": ["a.csv"]}, written_at=123.5)
    kg.assert_graphs_equal(_rebuild(files), graph)
    assert files.node_rows == sum(graph.num_nodes(label) for label in NODE_LABELS) + 1
    assert files.relationship_rows == sum(len(t) for t in graph.edges.values())
    assert set(files.relationships) == set(graph.edges)


def test_missing_values_are_left_out_and_empty_strings_kept(tmp_path):
    graph = _graph(tmp_path)
    files = write_import_files(graph, tmp_path / "csv")
    _, products = _read(files.nodes["Product"])
    by_id = {r["id"]: r for r in products}
    assert by_id["B0002"]["price"] is None                      # NaN: no property, as Neo4jStore.write
    assert by_id["X9"]["title"] == "" and by_id["X9"]["in_catalog"] is False  # "" is stored
    assert by_id["B0004"]["title"] == 'He said "hi", twice'
    assert by_id["B0004"]["description"] == "line one\nline two \\\\ é ✓ 😀"
    assert by_id["B0005"]["price"] == 1e-07 and by_id["B0004"]["price"] == 0.1
    assert files.multiline == [files.nodes["Product"]]          # the importer is told which file spans lines
    raw = files.nodes["Product"].read_text(encoding="utf-8")
    assert '"He said ""hi"", twice"' in raw
    _, inter = _read(files.relationships["INTERACTED"])
    assert [r["seq"] for r in inter] == list(range(len(inter)))
    assert sum(r["timestamp"] is None for r in inter) == int(graph.edges["INTERACTED"]["timestamp"].isna().sum())
    _, brands = _read(files.relationships["HAS_BRAND"])
    assert [r["ord"] for r in brands] == list(range(len(brands)))  # as Neo4jStore.write(graph)


def test_meta_node_matches_what_the_store_writes(tmp_path):
    from kg.neo4j_store import FORMAT_VERSION
    graph = _graph(tmp_path)
    files = write_import_files(graph, tmp_path / "csv", info={"files": ["a, \"b\".csv"]}, written_at=123.5)
    _, (meta,) = _read(files.meta)
    assert meta["format_version"] == FORMAT_VERSION and meta["version"] == 1 and meta["written_at"] == 123.5
    assert json.loads(meta["counts_json"]) == graph.counts()
    assert json.loads(meta["info_json"]) == {"files": ["a, \"b\".csv"]}


@pytest.mark.parametrize("x, text", [(1.0, "1.0"), (-3.0, "-3.0"), (0.1, "0.1"), (12.5, "12.5"), (1e-07, "1e-07"),
                                     (2.0**60, "1.152921504606847e+18"), (math.inf, "Infinity"),
                                     (-math.inf, "-Infinity"), (math.nan, "")])
def test_doubles_round_trip(x, text):
    cell = neo4j_import._floats(pd.Series([x]))[0]
    assert cell == text
    if cell and "Infinity" not in cell:
        assert float(cell) == x


def test_integers_and_nullable_integers():
    assert list(neo4j_import._integers(pd.Series([1, None, -5], dtype="Int64"))) == ["1", "", "-5"]
    assert list(neo4j_import._cells(pd.Series([True, False]), "bool")) == ["true", "false"]
    assert list(neo4j_import._quoted(pd.Series(["a", None, "", np.nan, 'x"y'], dtype=object))) == \
        ['"a"', "", '""', "", '"x""y"']


def test_import_arguments(tmp_path):
    graph = _graph(tmp_path)
    files = write_import_files(graph, tmp_path / "csv")
    args = import_arguments(files, threads=2, max_off_heap_memory="1G")
    assert args[:4] == ["database", "import", "full", "neo4j"]  # the name before the file lists
    assert "--overwrite-destination=true" in args and "--bad-tolerance=0" in args
    assert "--threads=2" in args and "--max-off-heap-memory=1G" in args
    assert f"--nodes=Product={files.nodes['Product']}" in args and f"--nodes=KGMeta={files.meta}" in args
    assert sum(a.startswith("--relationships=") for a in args) == len(files.relationships)
    assert f"--multiline-fields={files.nodes['Product']}" in args and "--multiline-fields-format=v2" in args


def test_an_empty_graph_writes_only_the_meta_node(tmp_path):
    files = write_import_files(kg.KnowledgeGraph(), tmp_path / "csv")
    assert files.nodes == {} and files.relationships == {} and files.meta.exists()
    assert files.node_rows == 1


def test_large_tables_are_written_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(neo4j_import, "_CHUNK", 2)
    graph = _graph(tmp_path)
    files = write_import_files(graph, tmp_path / "csv")
    kg.assert_graphs_equal(_rebuild(files), graph)
