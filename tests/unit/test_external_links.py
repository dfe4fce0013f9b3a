"""external_links: products outside the catalog are dropped from propagation, what they tied together stays."""
from __future__ import annotations

import numpy as np
import pytest

from fusion.config import FusionConfig
from fusion.features import build_inputs, shared_external_links
from kg_fixtures import graph_with_relations

# p1 and p4 share two outside products (X1, X2), p1 and p3 one (X3); p2 none; p1-p2 are linked directly
RELATIONS = """product_id,relation,other_id
p1,also_bought,p2
p1,also_bought,X1
p1,also_bought,X2
p4,also_bought,X1
p4,also_bought,X2
p1,also_bought,X3
p3,also_bought,X3
p3,bought_together,p2
"""


@pytest.fixture
def graph(tmp_path):
    return graph_with_relations(tmp_path, RELATIONS)


def _pid(g, name):
    return g.id_map("Product").index(name)


def test_pairs_sharing_outside_products_rank_by_cosine_and_k_keeps_the_closest(graph):
    e = graph.edges["ALSO_BOUGHT"]
    src, dst, cat = e["src"].to_numpy(), e["dst"].to_numpy(), graph.catalog_mask
    p1, p3, p4 = _pid(graph, "p1"), _pid(graph, "p3"), _pid(graph, "p4")
    every = {tuple(c) for c in shared_external_links(src, dst, cat, 5).T.tolist()}
    assert every == {tuple(sorted((p1, p4))), tuple(sorted((p1, p3)))}  # p2 shares nothing outside
    # k = 1: p1's closest is p4 (cosine 2/sqrt(3*2) against 1/sqrt(3*1)); p3's only partner is p1
    one = {tuple(c) for c in shared_external_links(src, dst, cat, 1).T.tolist()}
    assert one == every
    assert shared_external_links(src, dst, cat, 0).shape == (2, 0)
    only_catalog = cat[src] & cat[dst]
    assert shared_external_links(src[only_catalog], dst[only_catalog], cat, 5).shape == (2, 0)


def test_build_inputs_adds_the_links_once_to_the_relation_and_keeps_the_layout(graph):
    items = np.flatnonzero(graph.catalog_mask)
    plain = build_inputs(graph, items, None, external_products=False)
    linked = build_inputs(graph, items, None, external_products=False, external_links=5)
    assert linked.index.num_nodes == plain.index.num_nodes  # the same entities: a saved model still fits
    assert (linked.item_entity == plain.item_entity).all()
    nnz = lambda inp: {r: a._nnz() for r, a in zip(inp.index.relations, inp.index.adjacency)}  # noqa: E731
    assert nnz(plain)["ALSO_BOUGHT"] == 2  # p1-p2, both ways
    assert nnz(linked)["ALSO_BOUGHT"] == 2 + 2 * 2  # + p1-p4 and p1-p3
    assert nnz(linked)["BOUGHT_TOGETHER"] == nnz(plain)["BOUGHT_TOGETHER"]
    adj = linked.index.adjacency[linked.index.relations.index("ALSO_BOUGHT")].to_dense()
    off = linked.index.offsets["Product"]
    assert adj[off + _pid(graph, "p4"), off + _pid(graph, "p1")] > 0  # p4 (cold here) reaches p1 in one hop


def test_config_refuses_links_beside_the_outside_products():
    with pytest.raises(ValueError, match="external_links"):
        FusionConfig(external_links=10)  # external_products defaults to True
    with pytest.raises(ValueError, match="external_links"):
        FusionConfig(external_products=False, external_links=-1)
    assert FusionConfig(external_products=False, external_links=10).external_links == 10
