"""The cold products' KG similarity: FastRP-style random projection over the whole training graph, its cold
columns, and how the cold graph term mixes it with the relation paths."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from fusion.cold_graph import COLD_GRAPH_FILE, ColdGraphTerm, combine_cold_graph
from fusion.item_item import save_csr
from fusion.config import ColdMixConfig
from fusion.kg_similarity import kg_adjacency, kg_similarity_columns, random_projection
from kg.schema import REL_SPECS
from kg_fixtures import RELATIONS, graph_with_relations


@pytest.fixture
def graph(tmp_path):
    return graph_with_relations(tmp_path, RELATIONS)


def _catalog(g):
    return np.flatnonzero(g.catalog_mask)


def test_adjacency_puts_the_catalog_first_and_holds_every_relationship_both_ways(graph):
    items = _catalog(graph)[::-1].copy()  # any column order: row j is the product of column j
    a = kg_adjacency(graph, items)
    n_nodes = sum(graph.num_nodes(label) for label in graph.nodes)
    n_edges = sum(len(e) for rel, e in graph.edges.items() if rel in REL_SPECS)
    assert a.shape == (n_nodes, n_nodes)
    assert (a != a.T).nnz == 0 and a.sum() == 2 * n_edges  # undirected, every relationship counted
    pid = graph.nodes["Product"]["id"].to_numpy()
    names = pid[items].tolist()
    # p1 and p2 share their brand (normalised "stanley") and a buyer (u1): a two-step path in A^2
    p1, p2, p4 = names.index("p1"), names.index("p2"), names.index("p4")
    a2 = (a @ a).toarray()
    assert a2[p1, p2] >= 2 and a[p1, p2] == 1  # also_bought p1 -> p2, and brand + buyer paths
    assert a2[p1, p4] >= 1  # u3 bought both


def test_random_projection_is_seeded_and_each_hop_enters_as_unit_rows(graph):
    a = kg_adjacency(graph, _catalog(graph))
    one = random_projection(a, 64, [1.0], seed=3)
    assert one.shape == (a.shape[0], 64) and one.dtype == np.float32
    nonzero = np.asarray(a.sum(axis=1)).ravel() > 0
    assert np.allclose(np.linalg.norm(one[nonzero], axis=1), 1.0, atol=1e-5)
    assert np.array_equal(one, random_projection(a, 64, [1.0], seed=3))
    assert not np.allclose(one, random_projection(a, 64, [1.0], seed=4))
    two = random_projection(a, 64, [1.0, 0.5], seed=3, rows=4)
    assert two.shape == (4, 64) and np.allclose(two - one[:4], 0.5 * _hop2(a, 64, 3)[:4], atol=1e-5)
    assert np.array_equal(one, random_projection(a, 64, [1.0], seed=3, block_rows=2))  # blocks: the same draws
    with pytest.raises(ValueError, match="dim >= 1"):
        random_projection(a, 0, [1.0])


def _hop2(a, dim, seed):
    """E^(2) by hand: the unit rows of A E^(1)."""
    from fusion.vectors import unit_rows
    return unit_rows(a @ random_projection(a, dim, [1.0], seed=seed))


def test_similarity_columns_are_the_positive_cosines_of_cold_products_only():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(9, 5)).astype(np.float32)
    cold = np.array([2, 7])
    m = kg_similarity_columns(emb, cold, top_k=0).toarray()
    u = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    want = np.maximum(u @ u[cold].T, 0)
    want[cold, [0, 1]] = 0
    assert np.allclose(m[:, cold], want, atol=1e-6)
    assert np.all(np.delete(m, cold, axis=1) == 0) and np.all(m >= 0)
    top = kg_similarity_columns(emb, cold, top_k=2, block=1).toarray()
    for j, c in enumerate(cold):
        kept = np.flatnonzero(top[:, c])
        assert set(kept) == set(np.argsort(-want[:, j])[:2][want[np.argsort(-want[:, j])[:2], j] > 0])
    assert np.allclose(kg_similarity_columns(emb, cold, 0, block=1).toarray(), m)  # blocks do not change it
    assert kg_similarity_columns(emb, np.zeros(0, np.int64)).nnz == 0


def test_combine_keeps_the_relation_paths_at_zero_share_and_mixes_unit_norm_parts():
    rel = sp.csr_matrix(np.array([[0, 2.0], [0, 0]], np.float32))
    kg = sp.csr_matrix(np.array([[0, 0], [3.0, 4.0]], np.float32))
    assert combine_cold_graph(rel, kg, 0.0) is rel
    assert combine_cold_graph(rel, None, 0.5) is rel
    assert combine_cold_graph(None, None, 0.5) is None
    assert np.allclose(combine_cold_graph(None, kg, 0.0).toarray(), kg.toarray() / 5)  # no relations: M alone
    assert np.allclose(combine_cold_graph(rel, kg, 1.0).toarray(), kg.toarray() / 5)
    half = combine_cold_graph(rel, kg, 0.25).toarray()
    assert np.allclose(half, 0.75 * rel.toarray() / 2 + 0.25 * kg.toarray() / 5)


def test_the_share_round_trips_with_the_term_and_old_files_read_as_none(tmp_path):
    g = sp.random(6, 6, density=0.3, format="csr", dtype=np.float32, random_state=0)
    ColdGraphTerm(g, 0.7, 2.0, 3.0, "max", np.array([1, 4]), kg_share=0.75).save(tmp_path)
    assert ColdGraphTerm.load(tmp_path).kg_share == 0.75
    (tmp_path / "old").mkdir()  # a file written before the share existed: no kg_share key
    save_csr(tmp_path / "old" / COLD_GRAPH_FILE, g, gamma=0.7, weight=2.0, hop2=3.0, offset="none")
    assert ColdGraphTerm.load(tmp_path / "old").kg_share == 0.0


def test_shares_outside_zero_to_one_are_a_clear_config_error():
    with pytest.raises(ValueError, match="graph_kg_mix"):
        ColdMixConfig(graph_kg_mix=[0.0, 1.5])
    with pytest.raises(ValueError, match="graph_kg_dim"):
        ColdMixConfig(graph_kg_dim=0)


def test_the_dimension_shrinks_to_the_memory_budget_and_the_similarity_is_skipped_below_64():
    from fusion.kg_similarity import MIN_DIM, projection_dim

    assert projection_dim(143_350, 1024, 4.0) == 1024  # beauty: 1.1 GiB for the two arrays
    assert projection_dim(1_433_500, 1024, 4.0) == 4 * 2**30 // (8 * 1_433_500)  # 10x: fewer dimensions
    assert MIN_DIM <= projection_dim(1_433_500, 1024, 4.0) < 1024
    assert projection_dim(14_335_000, 1024, 4.0) == 0  # 100x: 37 would fit, too few: skipped


def test_a_graph_over_the_budget_skips_the_similarity_and_the_term_keeps_its_relation_paths(graph):
    from fusion import FusionConfig, FusionRecommender
    from fusion.data import TrainData

    data = TrainData.from_graph(graph, seed=0)
    cfg = FusionConfig()
    cfg.cold_mix.graph_kg_max_gib = 1e-9
    rec = FusionRecommender(cfg)
    logs: list[str] = []
    rec._log = logs.append
    cold = np.array([0, 2])  # any columns may be scored as cold
    rel, kg = rec._cold_graph_parts(data, cold)
    assert kg is None and any("KG similarity skipped" in m for m in logs)
    cfg.cold_mix.graph_kg_max_gib = 4.0
    rel2, kg2 = FusionRecommender(cfg)._cold_graph_parts(data, cold)
    assert kg2 is not None and kg2.nnz
    assert (rel is None) == (rel2 is None)
