"""Neighbour-sampled propagation: the `KGEncoder` embeddings of a few seed entities from a sampled L-hop subgraph.

Full-batch propagation (`KGEncoder.forward`) multiplies every relation's adjacency with every entity's
embedding L times per batch. This module computes the same quantity for the entities a batch touches only,
over the subgraph torch_geometric's `NeighborSampler` (the engine of `NeighborLoader`) draws around them in a
homogeneous view of the entity graph: every nonzero A_r[v, u] of the per-relation adjacencies is one edge
u -> v with its relation r and its full-graph value D_r^-1/2 D_r^-1/2 as attributes. On the sampled edges,

    E^{l+1}_v = sum_r alpha'_{v,r} (deg_r(v) / s_r(v)) sum_{u sampled, rel r} A_r[v, u] E^l_u

with deg_r(v) the number of relation-r neighbours of v in the whole graph, s_r(v) the number sampled, and
alpha' the encoder's relation attention over the relations that have a sampled edge at v. So the degree
normalisation is the full-graph one, each relation's neighbour sum is an unbiased estimate of the full sum,
and with every neighbour taken (`num_neighbors=[-1]`, or counts above the largest degree) the result equals
the full-batch embeddings exactly. Nothing here has weights of its own: the embedding table and the
relation logits are the encoder's, so a model trained this way is saved, loaded and evaluated (full-batch)
like any other.

Sampling needs torch_geometric with a sampler backend (`pyg-lib` or `torch-sparse`); `sampling_available()`
says whether it is there. torch_geometric is imported only when sampling is used.
"""
from __future__ import annotations

import warnings

import torch

from .encoder import KGEncoder
from .graph_index import EntityIndex

__all__ = ["INSTALL_HINT", "sampling_available", "NeighborSampledEncoder", "homogeneous_view"]

INSTALL_HINT = ("install a neighbour-sampling backend for torch_geometric: "
                "`pip install --no-build-isolation torch-scatter torch-sparse` (torch-sparse imports torch-scatter; "
                "both build from source against the installed torch, 10-15 min each on one core) "
                "or a `pyg-lib` wheel matching torch " + torch.__version__.split("+")[0])


def sampling_available() -> str | None:
    """None when neighbour sampling can run here; otherwise a one-line reason that names what to install."""
    try:
        import torch_geometric.typing as pyg_typing
    except Exception as e:  # noqa: BLE001 - any failure means: no sampling here
        return f"torch_geometric cannot be imported ({type(e).__name__}: {e}); pip install torch-geometric"
    for flag, namespace in (("WITH_PYG_LIB", "pyg"), ("WITH_TORCH_SPARSE", "torch_sparse")):
        if getattr(pyg_typing, flag, False):
            try:
                getattr(getattr(torch.ops, namespace), "neighbor_sample")
                return None
            except (AttributeError, RuntimeError):
                continue
    return f"neither pyg-lib nor torch-sparse is installed (or loads); {INSTALL_HINT}"


def homogeneous_view(index: EntityIndex) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every nonzero A_r[v, u] of `index.adjacency` as one edge u -> v.

    Returns:
        edge_index: int64 [2, E] (source u, target v).
        edge_type: int64 [E], the relation r (position in `index.relations`).
        edge_weight: float [E], A_r[v, u] (full-graph symmetric degree normalisation).
        degree: int64 [N, R], relation-r neighbours of each entity (nonzeros of row v of A_r).
    """
    n, r_count = index.total, len(index.relations)
    srcs, dsts, types, weights = [], [], [], []
    degree = torch.zeros(n, r_count, dtype=torch.long)
    for r, a in enumerate(index.adjacency):
        a = a.coalesce()
        row, col = a.indices()
        srcs.append(col)
        dsts.append(row)
        types.append(torch.full_like(row, r))
        weights.append(a.values().float())
        degree[:, r] = torch.bincount(row, minlength=n)
    if not srcs:
        empty = torch.zeros(0, dtype=torch.long)
        return torch.zeros(2, 0, dtype=torch.long), empty, torch.zeros(0), degree
    edge_index = torch.stack([torch.cat(srcs), torch.cat(dsts)])
    return edge_index, torch.cat(types), torch.cat(weights), degree


class NeighborSampledEncoder:
    """Embeddings of seed entities by a `KGEncoder` over a neighbour-sampled subgraph.

    Args:
        encoder: the encoder whose weights (embedding table, relation logits, edge dropout, number of layers)
            are used; its current `index` is the graph (rebuilt here when the encoder's index is swapped).
        num_neighbors: neighbours sampled per entity at each hop, one entry per layer or one for all; -1 = all.
    """

    def __init__(self, encoder: KGEncoder, num_neighbors: list[int]) -> None:
        self.encoder = encoder
        self.num_neighbors = list(num_neighbors)
        self._built_for: EntityIndex | None = None

    def hops(self) -> list[int]:
        """Neighbours sampled at each hop, one entry per encoder layer (ValueError if they do not match)."""
        L = self.encoder.config.num_layers
        nn_ = self.num_neighbors
        if L == 0:
            return []
        if len(nn_) == 1:
            return nn_ * L
        if len(nn_) != L:
            raise ValueError(f"num_neighbors has {len(nn_)} entries but the encoder has {L} layers: "
                             f"give one per layer or a single value for all")
        return nn_

    def _build(self) -> None:
        reason = sampling_available()
        if reason is not None:
            raise RuntimeError(f"neighbour sampling is not available: {reason}")
        from torch_geometric.data import Data
        from torch_geometric.sampler import NeighborSampler

        index = self.encoder.index
        edge_index, self.edge_type, self.edge_weight, self.degree = homogeneous_view(index)
        with warnings.catch_warnings():  # "NeighborSampler without pyg-lib is deprecated": torch-sparse works
            warnings.simplefilter("ignore")
            self.sampler = NeighborSampler(Data(edge_index=edge_index, num_nodes=index.total), self.hops())
        self.perm = self.sampler.edge_permutation
        self._built_for = index

    def sample(self, seeds: torch.Tensor):
        """The sampled subgraph around `seeds` (unique global entity ids): (nodes [K] with the seeds first,
        source [E'], target [E'] local indices into nodes, global edge ids [E'] into `homogeneous_view`)."""
        from torch_geometric.sampler import NodeSamplerInput

        if self._built_for is not self.encoder.index:
            self._build()
        self.sampler.num_neighbors = self.hops()  # the encoder's depth may have been changed since
        out = self.sampler.sample_from_nodes(NodeSamplerInput(input_id=None, node=seeds))
        edge = out.edge if self.perm is None else self.perm[out.edge]
        return out.node, out.row, out.col, edge

    def __call__(self, seeds: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        """[len(seeds), dim] embeddings of the global entity ids `seeds` (unique), as `encoder(drop)[seeds]`
        would give them with every neighbour sampled; `drop` (bool [N]) zeroes those entities' free embeddings."""
        enc = self.encoder
        seeds = seeds.long()
        if enc.config.num_layers == 0 or not enc.index.relations:
            return enc.base(drop)[seeds]
        nodes, src, dst, edge = self.sample(seeds)
        if not torch.equal(nodes[:len(seeds)], seeds):
            raise RuntimeError("the sampler did not return the seeds first (are the seeds unique?)")
        x = enc.embedding(nodes)
        if drop is not None:
            x = x * (~drop[nodes]).unsqueeze(1).to(x.dtype)
        rel = self.edge_type[edge]
        k, r_count = len(nodes), len(enc.index.relations)
        # per (target, relation): sampled count -> rescale to the full-graph neighbour sum, and attention over
        # the relations present in the sample
        key = dst * r_count + rel
        sampled = torch.bincount(key, minlength=k * r_count).view(k, r_count)
        full = self.degree[nodes]
        scale = full.to(x.dtype) / sampled.clamp(min=1).to(x.dtype)
        w = torch.exp(enc.relation_logits - enc.relation_logits.max()) * (sampled > 0).to(x.dtype)
        alpha = w / w.sum(dim=1, keepdim=True).clamp(min=1e-12)
        coef = self.edge_weight[edge] * (scale * alpha).view(-1)[key]
        p = enc.config.edge_dropout
        layers = [x]
        for _ in range(enc.config.num_layers):
            s, d, c = src, dst, coef
            if enc.training and p > 0:  # a fresh mask per layer, as `KGEncoder._spmm` draws one per product
                keep = torch.rand(c.numel()) >= p
                s, d, c = s[keep], d[keep], c[keep] / (1 - p)
            x = torch.zeros_like(x).index_add_(0, d, c.unsqueeze(1) * x[s])
            layers.append(x)
        n = len(seeds)  # only the seeds' rows are wanted: average those, not every sampled node's
        return torch.stack([layer[:n] for layer in layers]).mean(dim=0)
