"""LightGCN (He et al., SIGIR 2020) via `torch_geometric.nn.models.LightGCN`, trained with BPR.

.. math::
    \\mathbf{e}^{(l+1)} = \\tilde{D}^{-1/2} A \\tilde{D}^{-1/2} \\mathbf{e}^{(l)}, \\qquad
    \\mathbf{e} = \\frac{1}{L+1} \\sum_{l=0}^{L} \\mathbf{e}^{(l)}, \\qquad s_{ui} = \\mathbf{e}_u^\\top \\mathbf{e}_i

on the bipartite user-item graph of the training interactions only. The normalised adjacency is built once
as a sparse tensor, so each step costs L sparse-dense products.
"""
from __future__ import annotations

import warnings

import numpy as np

from ...data import TrainData
from ...ranking_model import RankingModel
from .sampling import early_stopping, run_epochs, sample_triples

__all__ = ["LightGCN"]


class LightGCN(RankingModel):
    """LightGCN baseline.

    Args:
        num_layers: propagation layers (default 2).
        dim: embedding size (default 64).
        lr: Adam learning rate (default 0.005).
        reg: L2 weight of PyG's BPR loss on the layer-0 embeddings (default 1e-4).
        epochs: passes over the training pairs (default 60; with `TrainData.valid` set, the maximum and
            training stops early on validation NDCG@10, the best epoch kept in `best_epoch_`).
        batch_size: triples per step (default 8192; large batches keep CPU epochs cheap).
    """

    name = "lightgcn"

    def __init__(self, num_layers: int = 2, dim: int = 64, lr: float = 0.005, reg: float = 1e-4,
                 epochs: int = 60, batch_size: int = 8192) -> None:
        self.num_layers, self.dim, self.lr, self.reg = num_layers, dim, lr, reg
        self.epochs, self.batch_size = epochs, batch_size

    def fit(self, train: TrainData) -> "LightGCN":
        import torch
        from torch_geometric.nn.models import LightGCN as PygLightGCN

        torch.manual_seed(train.seed)
        rng = np.random.default_rng(train.seed)
        nu, ni = train.num_users, train.num_items
        coo = train.user_items.tocoo()
        src = np.concatenate([coo.row, coo.col + nu])
        dst = np.concatenate([coo.col + nu, coo.row])
        deg = np.bincount(src, minlength=nu + ni).astype(np.float32)
        w = 1.0 / np.sqrt(deg[src] * deg[dst])
        # pre-normalised adjacency: the convs then skip gcn_norm on every step
        with warnings.catch_warnings():  # "sparse CSR is beta": it is what spmm is fastest with on CPU
            warnings.simplefilter("ignore", UserWarning)
            adj = torch.sparse_coo_tensor(torch.from_numpy(np.stack([dst, src])), torch.from_numpy(w),
                                          (nu + ni, nu + ni), check_invariants=False).coalesce().to_sparse_csr()
        self.model_ = PygLightGCN(nu + ni, self.dim, self.num_layers)
        for conv in self.model_.convs:
            conv.normalize = False
        opt = torch.optim.Adam(self.model_.parameters(), lr=self.lr)
        self._adj, self._nu, self._final = adj, nu, None
        stop = early_stopping(self.score, train)

        def epoch(_: int) -> None:
            self._final = None
            u, p, n = (torch.from_numpy(a) for a in sample_triples(train.user_items, rng))
            for a in range(0, len(u), self.batch_size):
                bu, bp, bn = u[a:a + self.batch_size], p[a:a + self.batch_size] + nu, n[a:a + self.batch_size] + nu
                emb = self.model_.get_embedding(adj)
                pos = (emb[bu] * emb[bp]).sum(-1)
                neg = (emb[bu] * emb[bn]).sum(-1)
                node_id = torch.cat([bu, bp, bn])
                loss = self.model_.recommendation_loss(pos, neg, node_id=node_id, lambda_reg=self.reg)
                opt.zero_grad()
                loss.backward()
                opt.step()

        best = run_epochs(self.epochs, epoch, stop, lambda: self.model_.embedding.weight.detach().clone())
        if best is not None:
            self.model_.embedding.weight.data = best
            self.best_epoch_ = stop.best_epoch
        self._final = None
        return self

    def _embeddings(self) -> np.ndarray:
        if self._final is None:
            import torch

            with torch.no_grad():
                self._final = self.model_.get_embedding(self._adj).numpy()
        return self._final

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        e = self._embeddings()
        return e[user_idx] @ e[self._nu:].T
