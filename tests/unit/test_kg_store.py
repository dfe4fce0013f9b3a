"""Embedded store: exact round trip, no-op re-save, atomic swap; exports to HeteroData and networkx."""
from __future__ import annotations

import os

import pytest

from kg import EmbeddedStore, KnowledgeGraph, assert_graphs_equal, merge_files


def test_round_trip_is_exact(tmp_path, tiny_graph):
    store = EmbeddedStore(tmp_path / "s")
    assert not store.exists()
    assert_graphs_equal(store.load(), KnowledgeGraph())
    assert store.write(tiny_graph)
    loaded = EmbeddedStore(tmp_path / "s").load()
    assert_graphs_equal(loaded, tiny_graph)
    assert loaded.edges["INTERACTED"]["timestamp"].dtype == "Int64"
    assert store.meta()["counts"] == tiny_graph.counts()


def test_unchanged_build_writes_no_new_version(tmp_path, tiny_files):
    store = EmbeddedStore(tmp_path / "s")
    g = store.load()
    store.write(g, merge_files(g, *tiny_files, show_progress=False).delta)
    v1 = store.version_dir
    g = store.load()
    assert not store.write(g, merge_files(g, *tiny_files, show_progress=False).delta)
    assert store.version_dir == v1


def test_crash_while_writing_keeps_previous_version(tmp_path, tiny_graph, monkeypatch):
    store = EmbeddedStore(tmp_path / "s")
    store.write(tiny_graph)
    v1 = store.version_dir
    import pandas as pd

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(OSError, match="disk full"):
        store.write(tiny_graph)
    monkeypatch.undo()
    assert store.version_dir == v1
    assert not [p for p in os.listdir(store.path) if p.startswith(".tmp")]
    assert_graphs_equal(store.load(), tiny_graph)


def test_hetero_data_has_all_types_and_reverse_edges(tiny_graph):
    from kg import to_hetero_data
    data = to_hetero_data(tiny_graph)
    assert data["Product"].num_nodes == 5 and data["User"].num_nodes == 3
    ei = data["User", "INTERACTED", "Product"].edge_index
    assert ei.shape == (2, 6)
    assert (data["Product", "rev_INTERACTED", "User"].edge_index == ei.flip(0)).all()
    assert data["Product"].in_catalog.tolist() == [True] * 4 + [False]
    assert data["User", "INTERACTED", "Product"].time[3].item() == -1
    assert ("Product", "ALSO_BOUGHT", "Product") in data.edge_types


def test_networkx_paths(tiny_graph):
    import networkx as nx
    from kg import to_networkx
    G = to_networkx(tiny_graph)
    assert G.nodes[("Product", "p1")]["title"] == "Steel staples"
    # u1 bought p1 (Stanley); p2 shares the brand: a 3-hop path User -> Product -> Brand <- Product
    path = nx.shortest_path(G.to_undirected(as_view=True), ("User", "u2"), ("Brand", "acme tools"))
    assert path[0] == ("User", "u2") and path[-1] == ("Brand", "acme tools")
    assert G.number_of_edges() == sum(tiny_graph.counts()["relationships"].values())


def test_large_tables_are_written_in_slices_and_round_trip_exactly(tmp_path, tiny_files, monkeypatch):
    """Tables longer than one slice are written a row group at a time (bounded memory) and read back
    exactly: dtypes, nullable timestamps, empty and repeated strings."""
    import pyarrow.parquet as pq

    import kg.embedded_store as es

    g = KnowledgeGraph()
    merge_files(g, *tiny_files, show_progress=False)
    monkeypatch.setattr(es, "_WRITE_ROWS", 2)
    store = EmbeddedStore(tmp_path / "store")
    store.write(g)
    assert pq.ParquetFile(store.version_dir / "edges" / "INTERACTED.parquet").metadata.num_row_groups == 3
    assert_graphs_equal(store.load(), g)
