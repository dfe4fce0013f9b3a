"""SASRec (Kang & McAuley, ICDM 2018) trained with cross-entropy over the catalog, and its text form.

.. math::
    \\mathbf{h}_t = \\mathrm{Transformer}_{causal}\\big(\\mathbf{e}_{i_1} + \\mathbf{p}_1, \\ldots,
    \\mathbf{e}_{i_t} + \\mathbf{p}_t\\big)_t, \\qquad s_{u,j} = \\mathbf{h}_{|S_u|}^\\top \\mathbf{e}_j, \\qquad
    \\mathcal{L} = -\\sum_{t} \\log \\mathrm{softmax}_j\\big(\\mathbf{h}_t^\\top \\mathbf{e}_j\\big)_{i_{t+1}}

over each user's time-ordered training history (the last `max_len` + 1 items; learned positions, dropout,
pre-norm blocks). The loss is the full softmax over every catalog item, as "SASRec with cross-entropy"
(Klenitskiy & Vasilev, RecSys 2023) and gSASRec found far stronger than the original's one sampled
negative; above `full_softmax_max_items` items it is a sampled softmax with `num_negatives` uniform
negatives shared by the batch. `SASRecText` (UniSRec-style, Hou et al., KDD 2022, inductive setting) takes
every item embedding from the frozen `text/` vector through a small projection, so a product nobody has
interacted with still gets a meaningful embedding and can be ranked (the cold-start slice).

Histories come from `fusion.data.build_histories` on the training graph: (user, timestamp, seq) order, only
training rows. On a split whose test rows are not each user's future (amazon-beauty-kg's file split), the
model still reads the training rows in time order and scores every catalog item from the user's last
`max_len` of them: the same rows every other model is fitted on; the order is information they could use
too, and the evaluation masks training items for every model alike.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...data import TrainData, build_histories
from ...features import text_embeddings
from ...ranking_model import RankingModel
from .sampling import early_stopping, run_epochs

__all__ = ["SASRec", "SASRecText", "SASRecNet", "training_windows", "last_items"]


def training_windows(indptr: np.ndarray, items: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Per user with at least two items: the last `max_len` + 1 items as (inputs, targets), int64
    [num_sequences, max_len] each, left-padded with 0 (item columns are shifted by +1; 0 = padding)."""
    lengths = np.diff(indptr)
    users = np.flatnonzero(lengths >= 2)
    n = np.minimum(lengths[users], max_len + 1)
    seq = np.zeros((len(users), max_len + 1), dtype=np.int64)
    for r, (u, k) in enumerate(zip(users, n)):
        seq[r, max_len + 1 - k:] = items[indptr[u + 1] - k:indptr[u + 1]] + 1
    inputs, targets = seq[:, :-1].copy(), seq[:, 1:].copy()
    inputs[targets == 0] = 0  # the first item of a short sequence has no input before it
    return inputs, targets


def last_items(indptr: np.ndarray, items: np.ndarray, users: np.ndarray, max_len: int) -> np.ndarray:
    """int64 [len(users), max_len]: each user's last `max_len` item columns + 1, left-padded with 0."""
    seq = np.zeros((len(users), max_len), dtype=np.int64)
    for r, u in enumerate(users):
        a, b = indptr[u], indptr[u + 1]
        k = min(b - a, max_len)
        if k:
            seq[r, max_len - k:] = items[b - k:b] + 1
    return seq


class SASRecNet(nn.Module):
    """The encoder: item embeddings (free, or projected text vectors [num_items, d_text]), learned positions,
    `num_layers` pre-norm causal self-attention blocks, a final LayerNorm."""

    def __init__(self, num_items: int, dim: int, num_layers: int, num_heads: int, max_len: int, dropout: float,
                 text: torch.Tensor | None = None) -> None:
        super().__init__()
        self.dim, self.num_heads, self.num_items = dim, num_heads, num_items
        if text is None:
            self.item = nn.Embedding(num_items + 1, dim, padding_idx=0)
            nn.init.normal_(self.item.weight, std=dim ** -0.5)
            with torch.no_grad():
                self.item.weight[0].zero_()
        else:
            self.register_buffer("text", text)
            self.proj = nn.Sequential(nn.Linear(text.shape[1], dim), nn.LayerNorm(dim))
        self.pos = nn.Embedding(max_len, dim)
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, num_heads, dim_feedforward=dim * 2, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def items(self) -> torch.Tensor:
        """[num_items + 1, dim] item embeddings, row 0 the padding (zeros); elements of scale dim^-1/2."""
        if not hasattr(self, "text"):
            return self.item.weight
        e = self.proj(self.text) * self.dim ** -0.5
        return torch.cat([torch.zeros(1, self.dim, dtype=e.dtype), e])

    def forward(self, seq: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Hidden states [B, L, dim] of left-padded sequences [B, L] (0 = padding)."""
        L = seq.shape[1]
        pad = seq == 0
        x = table[seq] * math.sqrt(self.dim) + self.pos.weight[-L:][None]
        x = self.drop(x) * (~pad)[..., None]
        # causal, and no attention to padding (a padded row attends to itself only: no empty softmax)
        blocked = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)[None] | pad[:, None, :]
        blocked &= ~torch.eye(L, dtype=torch.bool)[None]
        return self.norm(self.blocks(x, mask=blocked.repeat_interleave(self.num_heads, dim=0)))


class SASRec(RankingModel):
    """SASRec with a softmax cross-entropy loss over the catalog.

    Args:
        dim: embedding and hidden size (default 64).
        num_layers: self-attention blocks (default 2).
        num_heads: attention heads (default 1).
        max_len: most recent history items the model reads (default 50).
        dropout: on embeddings, attention and feed-forward (default 0.2).
        lr: Adam learning rate (default 1e-3).
        weight_decay: AdamW weight decay (default 0.0).
        epochs: passes over the users' sequences (default 200; with `TrainData.valid` set, the maximum, and
            training stops early on validation NDCG@10, the best epoch kept in `best_epoch_`).
        batch_size: sequences per step (default 128).
        eval_every / patience: validation check every `eval_every` epochs, stop after `patience` checks without
            a gain (defaults 2 and 4).
        full_softmax_max_items: above this many items the loss is a sampled softmax (default 50,000).
        num_negatives: uniform negatives per batch of the sampled softmax (default 1024).
    """

    name = "sasrec"

    def __init__(self, dim: int = 64, num_layers: int = 2, num_heads: int = 1, max_len: int = 50,
                 dropout: float = 0.2, lr: float = 1e-3, weight_decay: float = 0.0, epochs: int = 200,
                 batch_size: int = 128, eval_every: int = 2, patience: int = 4,
                 full_softmax_max_items: int = 50_000, num_negatives: int = 1024) -> None:
        self.dim, self.num_layers, self.num_heads, self.max_len = dim, num_layers, num_heads, max_len
        self.dropout, self.lr, self.weight_decay, self.epochs = dropout, lr, weight_decay, epochs
        self.batch_size, self.eval_every, self.patience = batch_size, eval_every, patience
        self.full_softmax_max_items, self.num_negatives = full_softmax_max_items, num_negatives

    def _text(self, train: TrainData) -> torch.Tensor | None:
        """Frozen text vectors [num_items, d_text] the item embeddings are projected from (None: free ones)."""
        return None

    def fit(self, train: TrainData) -> "SASRec":
        torch.manual_seed(train.seed)
        rng = np.random.default_rng(train.seed)
        hist = build_histories(train.graph, train.column_of)
        self._indptr, self._items = hist.indptr, hist.items
        n_items = train.num_items
        self.net_ = SASRecNet(n_items, self.dim, self.num_layers, self.num_heads, self.max_len, self.dropout,
                              self._text(train))
        opt = torch.optim.AdamW(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        inputs, targets = (torch.from_numpy(a) for a in training_windows(hist.indptr, hist.items, self.max_len))
        full = n_items <= self.full_softmax_max_items
        self.loss_history_: list[float] = []

        def epoch(_: int) -> None:
            self.net_.train()
            order = torch.from_numpy(rng.permutation(len(inputs)))
            total, count = 0.0, 0
            for a in range(0, len(order), self.batch_size):
                b = order[a:a + self.batch_size]
                seq, tgt = inputs[b], targets[b]
                table = self.net_.items()
                h = self.net_(seq, table)
                keep = tgt > 0
                h, tgt = h[keep], tgt[keep] - 1
                if full:
                    loss = F.cross_entropy(h @ table[1:].T, tgt)
                else:  # sampled softmax: the positive against shared uniform negatives (a hit is masked)
                    neg = torch.from_numpy(rng.integers(0, n_items, self.num_negatives))
                    pos_logit = (h * table[tgt + 1]).sum(-1, keepdim=True)
                    neg_logit = h @ table[neg + 1].T
                    neg_logit = neg_logit.masked_fill(neg[None, :] == tgt[:, None], float("-inf"))
                    loss = F.cross_entropy(torch.cat([pos_logit, neg_logit], 1),
                                           torch.zeros(len(tgt), dtype=torch.long))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total, count = total + float(loss.detach()) * len(tgt), count + len(tgt)
            self.loss_history_.append(total / max(count, 1))

        stop = early_stopping(self.score, train, self.eval_every, self.patience)
        best = run_epochs(self.epochs, epoch, stop,
                          lambda: {k: v.detach().clone() for k, v in self.net_.state_dict().items()})
        if best is not None:
            self.net_.load_state_dict(best)
            self.best_epoch_ = stop.best_epoch
        self.valid_history_ = [] if stop is None else stop.history  # (epoch, validation NDCG@10)
        self.net_.eval()
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        self.net_.eval()
        users = np.asarray(user_idx, dtype=np.int64)
        out = np.empty((len(users), self.net_.num_items), dtype=np.float32)
        with torch.no_grad():
            table = self.net_.items()
            for a in range(0, len(users), 1024):
                seq = torch.from_numpy(last_items(self._indptr, self._items, users[a:a + 1024], self.max_len))
                h = self.net_(seq, table)[:, -1]
                out[a:a + len(seq)] = (h @ table[1:].T).numpy()
        return out


class SASRecText(SASRec):
    """SASRec whose item embeddings are the frozen `text/` vectors (title, brand, categories, description)
    through a linear projection and LayerNorm: no free per-item parameters, so cold products rank by text.

    Args: those of `SASRec`; `encoder`: the text encoder's name or path (default: the bundled
    all-MiniLM-L6-v2, as `text_only` and the fusion model use).
    """

    name = "sasrec_text"

    def __init__(self, encoder: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder

    def _text(self, train: TrainData) -> torch.Tensor:
        t = text_embeddings(train.graph, train.items, self.encoder, train.cache_dir, show_progress=False)
        return torch.nn.functional.normalize(t.float(), dim=1)
