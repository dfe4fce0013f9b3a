"""Inputs the fusion model needs from a training graph: item columns, entity layout, text embeddings."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kg.export import products_frame
from kg.graph import KnowledgeGraph
from kg.schema import PRODUCT

__all__ = ["ModelInputs", "build_inputs", "entity_ids", "text_embeddings"]


def text_embeddings(graph: KnowledgeGraph, items: np.ndarray, encoder_name: str | None = None,
                    cache_dir: str | Path | None = None, show_progress: bool = True) -> torch.Tensor:
    """Frozen encoder embeddings [len(items), d_text] of the products' text (title, brand, categories,
    description), cached beside the store."""
    from text import EncoderConfig, TextEncoder, encode_products

    enc = TextEncoder(EncoderConfig(model_name_or_path=encoder_name) if encoder_name else EncoderConfig())
    _, vecs = encode_products(enc, products_frame(graph, items), cache_dir, show_progress=show_progress)
    return vecs.float()


@dataclass
class ModelInputs:
    """What `FusionModel` is built over: the entity index and each item column's entity."""

    index: object  # gnn.EntityIndex
    item_entity: torch.Tensor


def build_inputs(graph: KnowledgeGraph, items: np.ndarray, relations: list[str] | None,
                 external_products: bool = True) -> ModelInputs:
    """Entity index of `graph` (the training graph) and item -> entity mapping.

    With `external_products=False`, products outside the catalog and their edges are left out of the
    propagation graph (far less work on catalogs where they outnumber the catalog)."""
    from gnn import build_entity_index
    from kg.export import to_hetero_data

    product_index = np.asarray(items, dtype=np.int64)
    if not external_products:
        graph, new_index = _catalog_only(graph)
        product_index = new_index[product_index]
    index = build_entity_index(to_hetero_data(graph), relations)
    item_entity = torch.from_numpy(product_index + index.offsets[PRODUCT])
    return ModelInputs(index, item_entity)


def entity_ids(graph: KnowledgeGraph, external_products: bool = True) -> dict[str, list[str]]:
    """External ids of the entities `build_inputs` lays out, per node type in entity order: what a saved
    model's embedding rows belong to (entities.json), so that a warm start or a grown store can map them by id."""
    from kg.schema import NODE_LABELS

    out = {}
    for label in NODE_LABELS:
        ids = graph.nodes[label]["id"]
        if label == PRODUCT and not external_products:
            ids = ids[graph.catalog_mask]
        out[label] = ids.astype(str).tolist()
    return out


def _catalog_only(graph: KnowledgeGraph) -> tuple[KnowledgeGraph, np.ndarray]:
    """The graph without products outside the catalog (and their edges); returns it and, for each old
    product index, its new index (-1 for dropped products)."""
    from kg.schema import REL_SPECS

    cat = graph.catalog_mask
    new_index = np.where(cat, np.cumsum(cat) - 1, -1)
    nodes = dict(graph.nodes)
    nodes[PRODUCT] = graph.nodes[PRODUCT][cat].reset_index(drop=True)
    out = KnowledgeGraph(nodes=nodes, edges={})
    for rel, e in graph.edges.items():
        spec = REL_SPECS[rel]
        src, dst = e["src"].to_numpy(), e["dst"].to_numpy()
        if spec.src == PRODUCT:
            src = new_index[src]
        if spec.dst == PRODUCT:
            dst = new_index[dst]
        keep = (src >= 0) & (dst >= 0)
        out.edges[rel] = e[keep].assign(src=src[keep], dst=dst[keep]).reset_index(drop=True)
    return out, new_index
