"""Inputs the fusion model needs from a training graph: item columns, entity layout, text embeddings."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kg.graph import KnowledgeGraph
from kg.schema import PRODUCT

__all__ = ["ModelInputs", "build_inputs", "text_embeddings"]


def text_embeddings(graph: KnowledgeGraph, items: np.ndarray, encoder_name: str | None = None,
                    cache_dir: str | Path | None = None, show_progress: bool = True) -> torch.Tensor:
    """Frozen encoder embeddings [len(items), d_text] of the products' text (title, brand, categories,
    description), cached beside the store."""
    from fusion.baselines.side_info import products_frame
    from text import EncoderConfig, TextEncoder, encode_products

    enc = TextEncoder(EncoderConfig(model_name_or_path=encoder_name) if encoder_name else EncoderConfig())
    _, vecs = encode_products(enc, products_frame(graph, items), cache_dir, show_progress=show_progress)
    return vecs.float()


@dataclass
class ModelInputs:
    """What `FusionModel` is built over: the entity index, each item column's entity, and text vectors."""

    index: object  # gnn.EntityIndex
    item_entity: torch.Tensor
    text: torch.Tensor | None


def build_inputs(graph: KnowledgeGraph, items: np.ndarray, relations: list[str] | None,
                 text: torch.Tensor | None) -> ModelInputs:
    """Entity index of `graph` (the training graph) and item -> entity mapping."""
    from gnn import build_entity_index
    from kg.export import to_hetero_data

    index = build_entity_index(to_hetero_data(graph), relations)
    item_entity = torch.from_numpy(np.asarray(items, dtype=np.int64) + index.offsets[PRODUCT])
    return ModelInputs(index, item_entity, text)
