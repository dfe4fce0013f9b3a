"""Views of a KnowledgeGraph for the other packages: torch_geometric HeteroData and networkx."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .graph import KnowledgeGraph
from .schema import INTERACTED, NODE_LABELS, PRODUCT, REL_SPECS

if TYPE_CHECKING:  # heavy imports stay lazy
    import networkx as nx
    from torch_geometric.data import HeteroData

__all__ = ["to_hetero_data", "to_networkx", "rev_type"]


def rev_type(rel_type: str) -> str:
    """Name of the reverse edge type added for message passing: INTERACTED -> rev_INTERACTED."""
    return f"rev_{rel_type}"


def to_hetero_data(graph: KnowledgeGraph, reverse: bool = True) -> "HeteroData":
    """HeteroData with node types = labels (num_nodes set), one edge type per relationship type
    (`edge_index` [2, E] int64, row 0 = source index, row 1 = destination index), and, if `reverse`,
    the reverse edge types `(dst, rev_TYPE, src)`.

    INTERACTED edges carry `edge_weight` [E] float32 and `time` [E] int64 (-1 where unknown);
    Product nodes carry `in_catalog` [N] bool. Pass the training graph of a split, never the full one.
    """
    import torch
    from torch_geometric.data import HeteroData

    data = HeteroData()
    for label in NODE_LABELS:
        data[label].num_nodes = graph.num_nodes(label)
    data[PRODUCT].in_catalog = torch.from_numpy(graph.catalog_mask.copy())
    for t, spec in REL_SPECS.items():
        e = graph.edges.get(t)
        if e is None or not len(e):
            continue
        ei = torch.from_numpy(np.stack([e["src"].to_numpy(np.int64), e["dst"].to_numpy(np.int64)]))
        data[spec.src, t, spec.dst].edge_index = ei
        if reverse:
            data[spec.dst, rev_type(t), spec.src].edge_index = ei.flip(0)
        if t == INTERACTED:
            w = torch.from_numpy(e["weight"].to_numpy(np.float32))
            ts = torch.from_numpy(e["timestamp"].fillna(-1).to_numpy(np.int64))
            data[spec.src, t, spec.dst].edge_weight = w
            data[spec.src, t, spec.dst].time = ts
            if reverse:
                data[spec.dst, rev_type(t), spec.src].edge_weight = w
                data[spec.dst, rev_type(t), spec.src].time = ts
    return data


def to_networkx(graph: KnowledgeGraph, rel_types: tuple[str, ...] | None = None) -> "nx.MultiDiGraph":
    """MultiDiGraph for path queries: nodes are `(label, external_id)` with their properties,
    edges carry `type` (the relationship type) and their properties; `key` is the type too.

    Example: `nx.shortest_path(G.to_undirected(as_view=True), ("User", "u1"), ("Product", "p9"))`.
    """
    import networkx as nx

    G = nx.MultiDiGraph()
    ids = {label: graph.nodes[label]["id"].to_numpy() for label in NODE_LABELS}
    for label in NODE_LABELS:
        table = graph.nodes[label]
        props = [c for c in table.columns if c != "id"]
        recs = table[props].to_dict("records") if props else [{}] * len(table)
        G.add_nodes_from(((label, i), {"label": label, **r}) for i, r in zip(ids[label], recs))
    for t, spec in REL_SPECS.items():
        if rel_types is not None and t not in rel_types:
            continue
        e = graph.edges.get(t)
        if e is None or not len(e):
            continue
        src = ids[spec.src][e["src"].to_numpy()]
        dst = ids[spec.dst][e["dst"].to_numpy()]
        props = [c for c in e.columns if c not in ("src", "dst")]
        recs = e[props].to_dict("records") if props else [{}] * len(e)
        G.add_edges_from(((spec.src, s), (spec.dst, d), t, {"type": t, **r}) for s, d, r in zip(src, dst, recs))
    return G
