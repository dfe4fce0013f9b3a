"""Relation-aware LightGCN over the collaborative knowledge graph (users, products, brands, categories).

Each layer mixes the per-relation neighbour means with learned relation attention, in the spirit of
KGAT/KGIN but kept linear like LightGCN (He et al., SIGIR 2020):

    E^{l+1}_v = sum_r alpha_{v,r} (A_r E^l)_v,   alpha_{v,.} = softmax_r(w_r | relations present at v)
    E = mean_l E^l   (l = 0..L)

A product with no interactions still gets an embedding from its brand, categories and related products.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .graph_index import EntityIndex

__all__ = ["GNNConfig", "KGEncoder", "sym_spmm"]


class _SymSpmm(torch.autograd.Function):
    """y = A x for a symmetric sparse A (CSR): the backward is A g again, so no transpose is ever built."""

    @staticmethod
    def forward(ctx, adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.adj = adj
        return adj @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return None, ctx.adj @ grad


def sym_spmm(adj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sparse symmetric [N, N] (CSR) times dense [N, d] -> [N, d], differentiable in x."""
    return _SymSpmm.apply(adj, x)


@dataclass
class GNNConfig:
    """Graph encoder hyper-parameters.

    Args:
        dim: embedding size.
        num_layers: propagation layers (0 = plain embeddings, i.e. no graph).
        init_std: std of the initial entity embeddings.
        edge_dropout: fraction of each relation's messages dropped while training (regularises, and keeps
            the model from relying only on memorised user-item edges).
    """

    dim: int = 128
    num_layers: int = 2
    init_std: float = 0.1
    edge_dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class KGEncoder(nn.Module):
    """Embeds every entity of an `EntityIndex`; `forward()` -> [N, dim] propagated embeddings."""

    def __init__(self, index: EntityIndex, config: GNNConfig) -> None:
        super().__init__()
        self.config = config
        self.index = index
        self.embedding = nn.Embedding(index.total, config.dim)
        self.relation_logits = nn.Parameter(torch.zeros(len(index.relations)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.config.init_std)
        nn.init.zeros_(self.relation_logits)

    def relation_weights(self) -> torch.Tensor:
        """[N, R] attention of each node over the relations it has (rows sum to 1, or 0 for isolated nodes)."""
        w = torch.exp(self.relation_logits - self.relation_logits.max()) * self.index.presence
        return w / w.sum(dim=1, keepdim=True).clamp(min=1e-12)

    @property
    def index(self) -> EntityIndex:
        return self._index

    @index.setter
    def index(self, value: EntityIndex) -> None:
        """Swap the graph (same entities, e.g. training + validation edges) and keep the learned weights."""
        import warnings

        self._index = value
        with warnings.catch_warnings():  # "sparse CSR support is in beta": we only multiply with it
            warnings.simplefilter("ignore", UserWarning)
            self._csr = [a.to_sparse_csr() for a in value.adjacency]

    def _spmm(self, r: int, x: torch.Tensor) -> torch.Tensor:
        p = self.config.edge_dropout
        if self.training and p > 0:
            a = self.index.adjacency[r]
            keep = torch.rand(a._nnz()) >= p
            a = torch.sparse_coo_tensor(a.indices()[:, keep], a.values()[keep] / (1 - p), a.shape)
            return torch.sparse.mm(a, x)
        return sym_spmm(self._csr[r], x)

    def base(self, drop: torch.Tensor | None = None) -> torch.Tensor:
        """E^0 [N, dim]: the free embeddings, with the rows in `drop` (bool [N]) zeroed: those entities are then
        known only through their neighbours (content-only products, see `FusionConfig.item_dropout`)."""
        x = self.embedding.weight
        return x if drop is None else x * (~drop).unsqueeze(1).to(x.dtype)

    def forward(self, drop: torch.Tensor | None = None) -> torch.Tensor:
        x = self.base(drop)
        if self.config.num_layers == 0 or not self.index.relations:
            return x
        return torch.stack(self.layers(drop)).mean(dim=0)

    def layers(self, drop: torch.Tensor | None = None) -> list[torch.Tensor]:
        """[E^0, E^1, ..., E^L]: the embeddings after each propagation layer (E^0 = the free embeddings, `drop`
        rows zeroed); `forward()` is their mean. Cold-start products replicate one propagation step from these."""
        x = self.base(drop)
        out = [x]
        if not self.index.relations:
            return out
        alpha = self.relation_weights()
        for _ in range(self.config.num_layers):
            x = sum(alpha[:, r:r + 1] * self._spmm(r, x) for r in range(len(self._csr)))
            out.append(x)
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_entities={self.index.total}, relations={len(self.index.relations)}, "
                f"dim={self.config.dim}, num_layers={self.config.num_layers})")
