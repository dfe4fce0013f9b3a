"""Matrix factorisation trained with Bayesian Personalized Ranking (Rendle et al., UAI 2009).

.. math::
    s_{ui} = \\mathbf{p}_u^\\top \\mathbf{q}_i, \\qquad
    \\mathcal{L} = -\\sum_{(u,i,j)} \\ln \\sigma(s_{ui} - s_{uj}) + \\lambda (\\|\\mathbf{p}_u\\|^2 +
    \\|\\mathbf{q}_i\\|^2 + \\|\\mathbf{q}_j\\|^2)

with one uniformly sampled negative :math:`j` per training pair per epoch, Adam, mini-batches.
"""
from __future__ import annotations

import numpy as np

from ...data import TrainData
from ...ranking_model import RankingModel
from .sampling import early_stopping, run_epochs, sample_triples

__all__ = ["BPRMF"]


class BPRMF(RankingModel):
    """BPR matrix factorisation in torch (CPU).

    Args:
        dim: embedding size (default 64).
        lr: Adam learning rate (default 0.005).
        reg: L2 weight on the batch's embeddings, per example (default 1e-4).
        epochs: passes over the training pairs (default 40; with `TrainData.valid` set, the maximum, and
            training stops early on validation NDCG@10, the best epoch kept in `best_epoch_`).
        batch_size: triples per step (default 4096).
    """

    name = "bpr_mf"

    def __init__(self, dim: int = 64, lr: float = 0.005, reg: float = 1e-4, epochs: int = 40,
                 batch_size: int = 4096) -> None:
        self.dim, self.lr, self.reg, self.epochs, self.batch_size = dim, lr, reg, epochs, batch_size

    def fit(self, train: TrainData) -> "BPRMF":
        import torch

        self.__dict__.pop("_u", None)
        torch.manual_seed(train.seed)
        rng = np.random.default_rng(train.seed)
        self.user_emb_ = torch.nn.Embedding(train.num_users, self.dim)
        self.item_emb_ = torch.nn.Embedding(train.num_items, self.dim)
        for e in (self.user_emb_, self.item_emb_):
            torch.nn.init.normal_(e.weight, std=0.1)
        opt = torch.optim.Adam([self.user_emb_.weight, self.item_emb_.weight], lr=self.lr)
        stop = early_stopping(self.score, train)

        def epoch(_: int) -> None:
            u, p, n = (torch.from_numpy(a) for a in sample_triples(train.user_items, rng))
            for a in range(0, len(u), self.batch_size):
                bu, bp, bn = u[a:a + self.batch_size], p[a:a + self.batch_size], n[a:a + self.batch_size]
                eu, ep, en = self.user_emb_(bu), self.item_emb_(bp), self.item_emb_(bn)
                x = (eu * (ep - en)).sum(-1)
                loss = -torch.nn.functional.logsigmoid(x).mean() + self.reg * (
                    eu.pow(2).sum() + ep.pow(2).sum() + en.pow(2).sum()) / len(bu)
                opt.zero_grad()
                loss.backward()
                opt.step()

        best = run_epochs(self.epochs, epoch, stop,
                          lambda: (self.user_emb_.weight.detach().clone(), self.item_emb_.weight.detach().clone()))
        if best is not None:
            self.user_emb_.weight.data, self.item_emb_.weight.data = best
            self.best_epoch_ = stop.best_epoch
        self._u = self.user_emb_.weight.detach().numpy()
        self._i = self.item_emb_.weight.detach().numpy()
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        if hasattr(self, "_u"):
            return self._u[user_idx] @ self._i.T
        return (self.user_emb_.weight[user_idx] @ self.item_emb_.weight.T).detach().numpy()
