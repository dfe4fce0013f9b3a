"""Vectors for products added after training (no retraining): graph side from their neighbours, text side from
the encoder, fused by the model's gate.

The graph encoder (`gnn.KGEncoder`) gives node v at layer l+1

    E^{l+1}_v = sum_r alpha_{v,r} sum_{w in N_r(v)} E^l_w / sqrt(d_{v,r} d_{w,r}),   E_v = mean_l E^l_v

with alpha_{v,.} the softmax of the learned relation logits over the relations v has. A new product's
neighbours are its brand (HAS_BRAND), its leaf categories (IN_CATEGORY) and, when given, related products;
the same step runs over the trained per-layer embeddings E^0..E^{L-1} of those nodes, with d_{w,r} + 1 for
the neighbours (the new edge counted). A new product has no trained free embedding: E^0 = 0, as the model
treats its own cold products (`FusionConfig.cold_content_only`), and the graph vector is the mean over
layers 0..L like `KGEncoder.forward`.

Measured with `scripts/eval_cold_start.py --n 400` on the Scientific model trained with item dropout (0.2):
400 catalog products re-added under new ids get fused vectors with mean cosine 0.831 to their trained ones;
`similar(new id)` ranks the original first for 81% of them and in its top 10 for 98% (the text side alone:
cosine 0.668, 58% and 94%). (Before item dropout: 0.819, 65%, 94%. Averaging layers 1..L only, leaving E^0
out rather than counting it as zero, gave cosine 0.845 there, but would put new products on another scale
than the model's own cold products.)

A brand or category that is not in the graph has no embedding: a new category stands in with its deepest
known ancestor, a new brand is left out; a product with no known neighbour gets a zero graph side, so its
vector comes from its text alone (the gate then sees [0; T]).

    F = g * G + (1 - g) * W_t x_text,   g = sigmoid(W_g [G; W_t x_text] + b)    (FusionModel.item_vectors)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from kg.export import column_index
from kg.schema import HAS_BRAND, IN_CATEGORY, USER

__all__ = ["GraphNeighbourhood", "fuse", "product_neighbours"]


@torch.no_grad()
def fuse(model, graph: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
    """Fused product vectors [m, d] from graph vectors [m, d] and frozen text embeddings [m, text_dim]: the
    computation of `FusionModel.item_vectors` for vectors that are not rows of the entity table."""
    return model.fuse(graph, text)


@dataclass(frozen=True)
class GraphNeighbourhood:
    """What one propagation step for a new node needs from the trained encoder, kept as numpy.

    Attributes:
        layers: float32 [L, M, d]: E^0..E^{L-1} of every non-user entity (users are never a product's
            neighbours), row `row_of[entity]`.
        row_of: int64 [num_entities] -> row in `layers` (-1 for users).
        degree: float32 [R, num_entities]: each entity's degree within each relation.
        relations: relation names (index r of `degree` and `logits`).
        logits: float32 [R] learned relation logits.
        offsets: first entity index of each node type.
    """

    layers: np.ndarray
    row_of: np.ndarray
    degree: np.ndarray
    relations: tuple[str, ...]
    logits: np.ndarray
    offsets: dict[str, int]

    @classmethod
    @torch.no_grad()
    def from_encoder(cls, encoder, layers: list[torch.Tensor] | None = None) -> "GraphNeighbourhood":
        """From a trained `gnn.KGEncoder` (bound to its graph); `layers` = `encoder.layers()` if already computed."""
        index = encoder.index
        layers = encoder.layers() if layers is None else layers
        num_layers = len(layers) - 1
        keep = np.ones(index.total, dtype=bool)
        if USER in index.offsets:
            keep[index.slice(USER)] = False
        rows = np.flatnonzero(keep)
        row_of = column_index(index.total, rows)  # entity -> its row in the stack (-1: a user)
        sel = torch.from_numpy(rows)
        stack = (np.stack([layers[l][sel].numpy() for l in range(num_layers)]).astype(np.float32)
                 if num_layers else np.zeros((0, len(rows), layers[0].shape[1]), np.float32))
        degree = np.zeros((len(index.relations), index.total), dtype=np.float32)
        for r, adj in enumerate(index.adjacency):
            degree[r] = np.bincount(adj.indices()[0].numpy(), minlength=index.total)
        return cls(stack, row_of, degree, tuple(index.relations),
                   encoder.relation_logits.detach().numpy().astype(np.float32), dict(index.offsets))

    @property
    def num_layers(self) -> int:
        return self.layers.shape[0]

    @property
    def dim(self) -> int:
        return self.layers.shape[2]

    def vector(self, neighbours: dict[str, list[int]], new_edges: bool = True) -> np.ndarray:
        """Graph vector [d] of a new node from its neighbours' entity indices per relation name (relations the
        encoder does not propagate over, and user entities, are ignored). Zeros with no usable neighbour.
        `new_edges=False` takes the neighbours' degrees as they are (for a node already in the graph)."""
        present = [(self.relations.index(rel), np.unique(np.asarray(ents, dtype=np.int64)))
                   for rel, ents in neighbours.items() if rel in self.relations and len(ents)]
        present = [(r, e[self.row_of[e] >= 0]) for r, e in present]
        present = [(r, e) for r, e in present if len(e)]
        if not present or self.num_layers == 0:
            return np.zeros(self.dim, dtype=np.float32)
        logits = self.logits[[r for r, _ in present]]
        alpha = np.exp(logits - logits.max())
        alpha /= alpha.sum()
        out = np.zeros(self.dim, dtype=np.float64)
        for l in range(self.num_layers):  # E^{l+1} of the new node from E^l of its neighbours
            for a, (r, ents) in zip(alpha, present):
                norm = 1.0 / np.sqrt(len(ents) * (self.degree[r, ents] + float(new_edges)))
                out += a * (norm[:, None] * self.layers[l, self.row_of[ents]]).sum(axis=0)
        return (out / (self.num_layers + 1)).astype(np.float32)  # E^0 = 0 counts in the mean


def product_neighbours(brand: int, leaves: tuple[int, ...], related: list[tuple[int, str]], *,
                       graph_brands: int, graph_categories: int, cat_parent: np.ndarray,
                       brand_offset: int | None, category_offset: int | None) -> dict[str, list[int]]:
    """Entity neighbours of a new product: its brand and leaf categories when they are graph nodes (a new
    category is replaced by its deepest ancestor in the graph), and `related` (entity, relation) pairs."""
    out: dict[str, list[int]] = {}
    if brand_offset is not None and 0 <= brand < graph_brands:
        out[HAS_BRAND] = [brand_offset + brand]
    if category_offset is not None:
        cats = []
        for c in leaves:
            while c >= graph_categories:
                c = int(cat_parent[c])
            if c >= 0:
                cats.append(category_offset + c)
        if cats:
            out[IN_CATEGORY] = cats
    for entity, rel in related:
        out.setdefault(rel, []).append(entity)
    return out

