"""The order-aware user tower: a small transformer over the fused vectors of a user's recent products.

    x_k = LN(F[h_k]) + P_k                          k = 1..L, most recent last; padding masked out
    z   = Blocks(x)_L                               pre-norm self-attention blocks over the window
    t   = W_o LN(z)                                 W_o = 0 at start: training begins at the pooled model

`FusionModel.history_vectors` adds t to the pooled history vector (`user_tower="attention"`). Only the last
position is read, so every window is one example (as the trainer already draws them), no causal mask is
needed (a window holds only items before its target), and the last block computes its query, attention
output and feed-forward for that position alone (the earlier blocks for every position, as keys and values):
with 2 blocks about half the work of a full encoder, the same result. SASRec
(`fusion.evaluation.baselines.sasrec`) has the same blocks over free or text-projected item embeddings; here the
items are the graph+text fused vectors.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import erf
from torch import nn

__all__ = ["TowerConfig", "SequenceTower", "NumpyTower"]


@dataclass
class TowerConfig:
    """The transformer of `user_tower="attention"`.

    Args:
        layers: self-attention blocks.
        heads: attention heads (must divide the embedding size).
        dropout: on inputs, attention and feed-forward, while training.
        ff_mult: feed-forward width as a multiple of the embedding size.
    """

    layers: int = 2
    heads: int = 2
    dropout: float = 0.2
    ff_mult: int = 2


class _Block(nn.Module):
    """Pre-norm block: x + Attn(LN x), then + FF(LN x); `last_only` returns the last position only [B, 1, d]."""

    def __init__(self, dim: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor, last_only: bool) -> torch.Tensor:
        h = self.ln1(x)
        q = h[:, -1:] if last_only else h
        a = self.attn(q, h, h, key_padding_mask=pad, need_weights=False)[0]
        x = (x[:, -1:] if last_only else x) + self.drop(a)
        return x + self.drop(self.ff(self.ln2(x)))


class SequenceTower(nn.Module):
    """forward(seq [B, L, d], mask [B, L] bool) -> [B, d]: the order-aware history term (zeros if empty)."""

    def __init__(self, dim: int, max_len: int, config: TowerConfig) -> None:
        super().__init__()
        if dim % config.heads:
            raise ValueError(f"tower.heads={config.heads} must divide the embedding size {dim}")
        self.config = config
        self.inp = nn.LayerNorm(dim)
        self.pos = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(dim, config.heads, dim * config.ff_mult, config.dropout)
                                    for _ in range(config.layers))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, dim, bias=False)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.pos.weight, std=0.02)
        nn.init.zeros_(self.out.weight)

    def forward(self, seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        L = seq.shape[1]
        has = mask.any(dim=1)
        # an empty window keeps its last slot open so that no softmax is over nothing; its output is zeroed
        keep = mask.clone()
        keep[:, -1] |= ~has
        x = self.drop(self.inp(seq) + self.pos.weight[-L:][None]) * keep[..., None]
        for k, block in enumerate(self.blocks):
            x = block(x, ~keep, last_only=k == len(self.blocks) - 1)
        return self.out(self.norm(x[:, -1])) * has[:, None]


class NumpyTower:
    """The eval-mode forward of a `SequenceTower` for one window [n, d] (every slot a product), in numpy: what
    the query API runs after `record`, about 0.1 ms where a torch call costs a millisecond or more on a busy
    CPU. Equal to `SequenceTower.forward` within float32 rounding (a test checks it)."""

    @torch.no_grad()
    def __init__(self, tower: SequenceTower) -> None:
        a = lambda t: t.detach().cpu().numpy().astype(np.float32)
        ln = lambda m: (a(m.weight), a(m.bias), m.eps)
        self.heads = tower.config.heads
        self.inp, self.norm, self.pos, self.out = ln(tower.inp), ln(tower.norm), a(tower.pos.weight), a(tower.out.weight).T
        self.blocks = [dict(ln1=ln(b.ln1), ln2=ln(b.ln2), w_in=a(b.attn.in_proj_weight).T, b_in=a(b.attn.in_proj_bias),
                            w_o=a(b.attn.out_proj.weight).T, b_o=a(b.attn.out_proj.bias),
                            w1=a(b.ff[0].weight).T, b1=a(b.ff[0].bias), w2=a(b.ff[3].weight).T, b2=a(b.ff[3].bias))
                       for b in tower.blocks]

    @staticmethod
    def _ln(x: np.ndarray, p) -> np.ndarray:
        w, b, eps = p
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w + b

    def __call__(self, window: np.ndarray) -> np.ndarray:
        """[d] tower term of a window [n, d] of fused product vectors, oldest first (zeros when n = 0)."""
        n, d = window.shape
        if n == 0:
            return np.zeros(self.out.shape[1], dtype=np.float32)
        x = self._ln(window.astype(np.float32), self.inp) + self.pos[-n:]
        H, dh = self.heads, d // self.heads
        for k, b in enumerate(self.blocks):
            h = self._ln(x, b["ln1"])
            qkv = h @ b["w_in"] + b["b_in"]
            q, key, v = qkv[:, :d], qkv[:, d:2 * d], qkv[:, 2 * d:]
            if k == len(self.blocks) - 1:
                q, x = q[-1:], x[-1:]
            q, key, v = (t.reshape(len(t), H, dh).transpose(1, 0, 2) for t in (q, key, v))  # [H, m, dh]
            s = q @ key.transpose(0, 2, 1) / np.sqrt(dh)
            s = np.exp(s - s.max(-1, keepdims=True))
            att = (s / s.sum(-1, keepdims=True)) @ v                                        # [H, m, dh]
            x = x + att.transpose(1, 0, 2).reshape(len(x), d) @ b["w_o"] + b["b_o"]
            f = self._ln(x, b["ln2"]) @ b["w1"] + b["b1"]
            f = 0.5 * f * (1.0 + erf(f / np.sqrt(2.0)))                                    # exact GELU
            x = x + f @ b["w2"] + b["b2"]
        return (self._ln(x[-1], self.norm) @ self.out).astype(np.float32)
