"""The three training losses of the fusion model, plus L2 regularisation. Each is a plain function.

Shapes: B = batch size, d = embedding size, S = sampled negatives, N = number of catalog items.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["info_nce_loss", "bpr_loss", "softmax_preference_loss", "kg_path_loss", "l2_regularization"]


def info_nce_loss(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor | None = None,
                  temperature: float = 0.1) -> torch.Tensor:
    """Text similarity (InfoNCE, van den Oord et al. 2018) between text-side vectors and fused products.

        L = -1/B sum_b log( exp(s(q_b, p_b)/t) / (sum_j exp(s(q_b, p_j)/t) + sum_k exp(s(q_b, n_k)/t)) )

    with s = cosine similarity; the other positives of the batch are in-batch negatives, `negatives`
    are extra sampled ones. query, positive: [B, d]; negatives: [S, d] or None.
    """
    q = F.normalize(query, dim=-1)
    cands = positive if negatives is None else torch.cat([positive, negatives], dim=0)
    logits = q @ F.normalize(cands, dim=-1).T / temperature  # [B, B+S]
    return F.cross_entropy(logits, torch.arange(q.shape[0], device=q.device))


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Implicit preference, pairwise (BPR, Rendle et al. 2009): L = -mean log sigma(s(u,i+) - s(u,i-)).

    pos_scores: [B]; neg_scores: [B] or [B, S] (each positive against each of its negatives).
    """
    if neg_scores.dim() == 2:
        pos_scores = pos_scores.unsqueeze(1)
    return -F.logsigmoid(pos_scores - neg_scores).mean()


def softmax_preference_loss(scores: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Implicit preference, listwise (softmax over all items, i.e. sampled softmax with every item sampled):

        L = -1/B sum_b log( exp(s(u_b, i_b)) / sum_j exp(s(u_b, j)) )

    scores: [B, N] for all catalog items; target: [B] column of the positive item; mask: optional bool [B, N],
    True where an item is left out of the denominator (e.g. the user's other known items).
    """
    if mask is not None:
        scores = scores.masked_fill(mask & ~F.one_hot(target, scores.shape[1]).bool(), float("-inf"))
    return F.cross_entropy(scores, target)


def kg_path_loss(user: torch.Tensor, path_end: torch.Tensor, corrupted: torch.Tensor) -> torch.Tensor:
    """KG path: for a real path user -> product -> (brand | category | related) -> product', score the path's
    end above a corrupted end (a random product):

        L = -mean log sigma(<u, p'> - <u, p~>)

    user, path_end, corrupted: [B, d] (fused vectors).
    """
    return bpr_loss((user * path_end).sum(-1), (user * corrupted).sum(-1))


def l2_regularization(*tensors: torch.Tensor) -> torch.Tensor:
    """Mean squared L2 norm of the embeddings a batch used: 1/B sum ||x||^2 over the given [B, d] tensors."""
    return sum(t.pow(2).sum() for t in tensors) / max(1, tensors[0].shape[0])
