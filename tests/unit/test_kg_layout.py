"""node_layout / layout_edges: the shared id layout of the KG similarity and the GDS projection."""
import numpy as np
import pytest

from kg import BRAND, CATALOG, CATEGORY, OTHER_PRODUCTS, PRODUCT, USER, KnowledgeGraph, layout_edges, node_layout
from kg_fixtures import RELATIONS, graph_with_relations


def _graph(tmp_path) -> KnowledgeGraph:
    return graph_with_relations(tmp_path, RELATIONS)


def test_blocks_follow_the_order_asked_with_the_catalog_first(tmp_path):
    g = _graph(tmp_path)
    items = np.array([3, 0], dtype=np.int64)  # a catalog of two products, in this column order
    assert g.num_nodes(PRODUCT) > 4 and g.num_nodes(USER) and g.num_nodes(BRAND) and g.num_nodes(CATEGORY)
    ids, n = node_layout(g, items, [CATALOG, USER, OTHER_PRODUCTS, BRAND, CATEGORY])
    n_p, n_u, n_b, n_c = (g.num_nodes(x) for x in (PRODUCT, USER, BRAND, CATEGORY))
    assert n == n_p + n_u + n_b + n_c
    assert ids[PRODUCT][items].tolist() == [0, 1]
    assert ids[USER].tolist() == list(range(2, 2 + n_u))
    others = np.setdiff1d(np.arange(n_p), items)
    assert ids[PRODUCT][others].tolist() == list(range(2 + n_u, 2 + n_u + len(others)))
    assert ids[CATEGORY].max() == n - 1
    every = np.concatenate(list(ids.values()))
    assert sorted(every.tolist()) == list(range(n))  # a bijection onto 0 .. n-1


def test_edges_are_mapped_and_labels_left_out_drop_their_types(tmp_path):
    g = _graph(tmp_path)
    items = np.arange(g.num_nodes(PRODUCT))
    ids, _ = node_layout(g, items, [CATALOG, OTHER_PRODUCTS, BRAND])
    got = {rel: (s, t) for rel, s, t in layout_edges(g, ids)}
    assert "HAS_BRAND" in got and "INTERACTED" not in got and "IN_CATEGORY" not in got
    s, t = got["HAS_BRAND"]
    e = g.edges["HAS_BRAND"]
    assert s.tolist() == ids[PRODUCT][e["src"].to_numpy()].tolist()
    assert t.tolist() == ids[BRAND][e["dst"].to_numpy()].tolist()


@pytest.mark.parametrize("blocks", [[CATALOG, USER], [PRODUCT, USER], [CATALOG, OTHER_PRODUCTS, USER, USER]])
def test_bad_blocks_are_a_clear_error(tmp_path, blocks):
    with pytest.raises(ValueError, match="node_layout blocks"):
        node_layout(_graph(tmp_path), np.arange(2), blocks)
