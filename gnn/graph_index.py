"""One index space over every entity of a HeteroData, with one normalised adjacency per relation.

The GNN propagates over the whole collaborative knowledge graph at once; this module turns the
typed graph from `kg.to_hetero_data` into what that needs, once, before training.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["EntityIndex", "build_entity_index"]


@dataclass
class EntityIndex:
    """Entities of all node types laid out in one range.

    Attributes:
        offsets: first global index of each node type; node i of type T is `offsets[T] + i`.
        num_nodes: per node type.
        relations: relation names, one symmetric adjacency each.
        adjacency: per relation, a sparse COO [N, N] with D^-1/2 (A + A^T) D^-1/2 values (degrees within the relation).
        presence: float [N, R], 1 where a node has at least one edge of relation r (for relation attention).
    """

    offsets: dict[str, int]
    num_nodes: dict[str, int]
    relations: list[str]
    adjacency: list[torch.Tensor]
    presence: torch.Tensor

    @property
    def total(self) -> int:
        return sum(self.num_nodes.values())

    def slice(self, node_type: str) -> slice:
        o = self.offsets[node_type]
        return slice(o, o + self.num_nodes[node_type])


def build_entity_index(data, relations: list[str] | None = None) -> EntityIndex:
    """From a HeteroData: one symmetric, degree-normalised adjacency D^-1/2 (A + A^T) D^-1/2 per relation
    (a relation's `rev_` edge type is folded into it), all in one global index space.

    Args:
        data: `torch_geometric.data.HeteroData` from `kg.to_hetero_data(train_graph)`.
        relations: relation names to keep (e.g. without "ALSO_VIEWED"); None keeps all.
    """
    import warnings

    offsets, num, o = {}, {}, 0
    for nt in data.node_types:
        offsets[nt] = o
        num[nt] = int(data[nt].num_nodes)
        o += num[nt]
    n = o
    rel_names, adjs, pres = [], [], []
    for (src, rel, dst) in data.edge_types:
        if rel.startswith("rev_") or (relations is not None and rel not in relations):
            continue
        ei = data[src, rel, dst].edge_index
        if ei.numel() == 0:
            continue
        a, b = ei[0] + offsets[src], ei[1] + offsets[dst]
        row, col = torch.cat([a, b]), torch.cat([b, a])
        deg = torch.zeros(n).index_add_(0, row, torch.ones(row.numel()))
        val = deg[row].clamp(min=1).rsqrt() * deg[col].clamp(min=1).rsqrt()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adj = torch.sparse_coo_tensor(torch.stack([row, col]), val, (n, n)).coalesce()
        rel_names.append(rel)
        adjs.append(adj)
        pres.append((deg > 0).float())
    presence = torch.stack(pres, dim=1) if pres else torch.zeros(n, 0)
    return EntityIndex(offsets, num, rel_names, adjs, presence)
