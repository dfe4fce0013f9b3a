"""One integer id per node of a knowledge graph, laid out in blocks, and its relationships in those ids.

The KG similarity's adjacency (`fusion.kg_similarity`) and the GDS projection (`gds_fastrp`) both need the
catalog products as the first rows, so that what they read back is a prefix; they differ only in the order
of the other blocks.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .graph import KnowledgeGraph
from .schema import PRODUCT, REL_SPECS

__all__ = ["CATALOG", "OTHER_PRODUCTS", "node_layout", "layout_edges"]

CATALOG = "catalog"  # the products `items`, in their order (the model's item columns)
OTHER_PRODUCTS = "other products"  # the remaining products (outside the catalog), in index order


def node_layout(graph: KnowledgeGraph, items: np.ndarray, blocks: Sequence[str]) -> tuple[dict[str, np.ndarray], int]:
    """(label -> int64 [num_nodes(label)] ids, number of ids) with the blocks in `blocks` order: `CATALOG`,
    `OTHER_PRODUCTS` or a node label. Products need both product blocks; labels not named get no ids."""
    items = np.asarray(items, dtype=np.int64)
    named = set(blocks)
    if (CATALOG in named) != (OTHER_PRODUCTS in named) or PRODUCT in named or len(named) != len(blocks):
        raise ValueError(f"node_layout blocks: each once, products as {CATALOG!r} and {OTHER_PRODUCTS!r} "
                         f"together, got {list(blocks)}")
    ids: dict[str, np.ndarray] = {}
    others = np.setdiff1d(np.arange(graph.num_nodes(PRODUCT)), items)
    if CATALOG in named:
        ids[PRODUCT] = np.empty(graph.num_nodes(PRODUCT), dtype=np.int64)
    at = 0
    for block in blocks:
        if block == CATALOG:
            ids[PRODUCT][items] = at + np.arange(len(items))
            at += len(items)
        elif block == OTHER_PRODUCTS:
            ids[PRODUCT][others] = at + np.arange(len(others))
            at += len(others)
        else:
            ids[block] = at + np.arange(graph.num_nodes(block), dtype=np.int64)
            at += graph.num_nodes(block)
    return ids, at


def layout_edges(graph: KnowledgeGraph, ids: dict[str, np.ndarray]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(relationship type, source ids, target ids) per schema type with edges in `graph` and both labels in
    `ids`, in `REL_SPECS` order; int64 [num_edges] each."""
    for rel, spec in REL_SPECS.items():
        e = graph.edges.get(rel)
        if e is None or not len(e) or spec.src not in ids or spec.dst not in ids:
            continue
        yield rel, ids[spec.src][e["src"].to_numpy(np.int64)], ids[spec.dst][e["dst"].to_numpy(np.int64)]
