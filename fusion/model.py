"""The fusion model: graph embeddings + text embeddings -> gated product vectors; users from graph + history.

    G = KGEncoder()[products]                      graph side         [n_items, d]
    T = W_t x_text                                 text side          [n_items, d]
    g = sigmoid(W_g [G; T] + b)                    per-dimension gate [n_items, d]
    F = g * G + (1 - g) * T                        fused products     [n_items, d]
    u = e_u + W_h sum_k a_k F[h_k]                 user (graph + recency-weighted history), a = softmax(w_pos)
                                                   (history_order "set": a uniform over the other items)
        [+ W_o Transformer(LN(F[h_1..L]) + P)_L]   user_tower "attention": an order-aware term next to the
                                                   pooling (`fusion.sequence_tower`, W_o = 0 at start)
    score(u, i) = <u, F_i>                         so ranking all products is one matrix product
                                                   (plus the sparse item-item term fitted after training,
                                                   `fusion.item_item`, added by FusionRecommender.score)

Queries (search) map through their own head into the same space: q = normalize(W_q x_query).
"""
from __future__ import annotations

import torch
from torch import nn

from gnn import EntityIndex, KGEncoder
from kg.schema import INTERACTED
from text.head import HeadConfig, ProjectionHead

from .config import FusionConfig
from .sequence_tower import SequenceTower

__all__ = ["FusionModel"]


class FusionModel(nn.Module):
    """Scores users x products. Parts are built from `config` over an `EntityIndex` of the training graph.

    Args:
        config: the model configuration.
        index: entity layout and adjacency of the training graph (see `gnn.build_entity_index`).
        item_entity: int64 [n_items]: global entity index of each item column.
        text_dim: size of the frozen text embeddings (ignored when `config.use_text` is False).
    """

    def __init__(self, config: FusionConfig, index: EntityIndex, item_entity: torch.Tensor, text_dim: int = 384) -> None:
        super().__init__()
        self.config = config
        gcfg = config.gnn if config.use_gnn else type(config.gnn)(**{**config.gnn.to_dict(), "num_layers": 0})
        self.gnn = KGEncoder(index, gcfg)
        self.register_buffer("item_entity", item_entity.long(), persistent=False)
        self.user_offset = index.offsets.get("User", 0)
        d = config.gnn.dim
        self.text_dim = text_dim
        if config.use_text:
            self.text_head = ProjectionHead(HeadConfig(in_dim=text_dim, out_dim=d, normalize=False))
            self.query_head = ProjectionHead(HeadConfig(in_dim=text_dim, out_dim=d, normalize=True))
            self.gate = nn.Linear(2 * d, d)
        self.position_logits = nn.Parameter(torch.zeros(config.history_len))
        self.history_map = nn.Linear(d, d, bias=False) if config.history_transform else None
        self.history_scale = nn.Parameter(torch.ones(()))
        self.tower = SequenceTower(d, config.history_len, config.tower) if config.user_tower == "attention" else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.gnn.reset_parameters()
        with torch.no_grad():
            # start by favouring recent items a little; the training decides how much
            self.position_logits.copy_(torch.linspace(0.0, 1.0, self.config.history_len))
            self.history_scale.fill_(1.0)
            if self.history_map is not None:
                self.history_map.weight.copy_(torch.eye(self.history_map.weight.shape[0]))
        if self.tower is not None:
            self.tower.reset_parameters()
        if self.config.use_text:
            nn.init.zeros_(self.gate.weight)
            nn.init.zeros_(self.gate.bias)

    # --- parts -----------------------------------------------------------------------------------
    def content_only_entities(self) -> torch.Tensor | None:
        """bool [num_entities]: products whose free embedding is left out (None: none): the cold ones (no
        interaction in the bound graph) and, while training, a random `item_dropout` share."""
        items, index = self.item_entity, self.gnn.index
        drop = torch.zeros(index.total, dtype=torch.bool)
        if self.config.cold_content_only and INTERACTED in index.relations:
            cold = index.presence[items, index.relations.index(INTERACTED)] == 0
            drop[items[cold]] = True
        if self.training and self.config.item_dropout > 0:
            drop[items[torch.rand(len(items)) < self.config.item_dropout]] = True
        return drop if bool(drop.any()) else None

    def entity_embeddings(self) -> torch.Tensor:
        """[num_entities, d] graph embeddings of every user, product, brand and category."""
        return self.gnn(self.content_only_entities())

    def item_vectors(self, entities: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        """Fused product vectors [n_items, d] from entity embeddings and text embeddings [n_items, text_dim]."""
        return self.fuse(entities[self.item_entity], text)

    def fuse(self, graph: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        """Gate graph vectors [m, d] with frozen text embeddings [m, text_dim] -> fused vectors [m, d] (the graph
        vectors alone without text); also serves products added after training (`fusion.serving.cold_start`)."""
        if not self.config.use_text or text is None:
            return graph
        t = self.text_head(text)
        gate = torch.sigmoid(self.gate(torch.cat([graph, t], dim=-1)))
        return gate * graph + (1 - gate) * t

    def history_vectors(self, items: torch.Tensor, history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Recency-weighted (`history_order="set"`: plain) mean of history item vectors, plus the sequence
        tower's term with `user_tower="attention"`: history/mask [B, L] -> [B, d] (zeros if empty)."""
        L = history.shape[1]
        pos = self.position_logits[-L:] if self.config.history_order == "sequence" else self.position_logits[-L:] * 0
        logits = pos.expand_as(mask).masked_fill(~mask, float("-inf"))
        w = torch.softmax(logits, dim=1).nan_to_num(0.0)
        seq = items[history]
        h = self.history_scale * torch.einsum("bl,bld->bd", w, seq)
        h = self.history_map(h) if self.history_map is not None else h
        return h if self.tower is None else h + self.tower(seq, mask)

    def user_vectors(self, entities: torch.Tensor, items: torch.Tensor, users: torch.Tensor | None,
                     history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, d] user vectors; `users` None (or -1 entries) = a user without a graph node (new user)."""
        u = self.history_vectors(items, history, mask)
        if self.config.use_user_embedding and users is not None:
            known = users >= 0
            e = entities[self.user_offset + users.clamp(min=0)] * known[:, None]
            u = u + e
        return u

    def query_vectors(self, text: torch.Tensor) -> torch.Tensor:
        """Text-side vectors [B, d] (unit length) for queries or history text [B, text_dim]."""
        if not self.config.use_text:
            raise ValueError("this model was trained without text (use_text=False): it cannot embed queries")
        return self.query_head(text)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(gnn={self.gnn!r}, use_text={self.config.use_text}, "
                f"history_len={self.config.history_len})")
