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
                 external_products: bool = True, external_links: int = 0) -> ModelInputs:
    """Entity index of `graph` (the training graph) and item -> entity mapping.

    With `external_products=False`, products outside the catalog and their edges are left out of the
    propagation graph (far less work on catalogs where they outnumber the catalog); `external_links` > 0
    then keeps what they tied together as direct edges (`shared_external_links`)."""
    from gnn import build_entity_index
    from kg.export import to_hetero_data

    product_index = np.asarray(items, dtype=np.int64)
    if not external_products:
        graph, new_index = _catalog_only(graph, external_links)
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


def shared_external_links(src: np.ndarray, dst: np.ndarray, catalog: np.ndarray, k: int) -> np.ndarray:
    """int64 [2, m] catalog product pairs (i < j, old product indices) that share products outside the catalog
    through one product-product relation (edges `src` -> `dst`, either end external): each catalog product's
    `k` partners of highest cosine |N(i) & N(j)| / sqrt(|N(i)| |N(j)|) over its external neighbours N, the
    union of those top-k lists. Two products bought with the same outside products are tied directly, so that
    dropping the outside products keeps their two-hop signal (a cold product reaches warm ones) at k edges each.
    """
    import scipy.sparse as sp

    a = np.concatenate([src, dst]).astype(np.int64)
    b = np.concatenate([dst, src]).astype(np.int64)
    keep = catalog[a] & ~catalog[b]
    if k <= 0 or not keep.any():
        return np.zeros((2, 0), dtype=np.int64)
    rows, ext = np.unique(np.stack([a[keep], b[keep]]), axis=1)
    ext_ids, ext_col = np.unique(ext, return_inverse=True)
    n = len(catalog)
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, ext_col)), shape=(n, len(ext_ids)))
    deg = np.asarray(m.sum(axis=1)).ravel()
    scale = sp.diags(np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1)), 0.0).astype(np.float32))
    m = scale @ m
    sim = (m @ m.T).tocsr()
    sim.setdiag(0)
    sim.eliminate_zeros()
    pairs = []
    for i in np.flatnonzero(np.diff(sim.indptr) > 0):
        lo, hi = sim.indptr[i], sim.indptr[i + 1]
        cols, vals = sim.indices[lo:hi], sim.data[lo:hi]
        if len(cols) > k:  # the k largest; ties by the smaller index, so the result is deterministic
            order = np.lexsort((cols, -vals))[:k]
            cols = cols[order]
        pairs.append(np.stack([np.full(len(cols), i, dtype=np.int64), cols.astype(np.int64)]))
    both = np.concatenate(pairs, axis=1)
    both = np.sort(both, axis=0)  # (min, max): a pair in both lists is one edge
    return np.unique(both, axis=1)


def _catalog_only(graph: KnowledgeGraph, external_links: int = 0) -> tuple[KnowledgeGraph, np.ndarray]:
    """The graph without products outside the catalog (and their edges); returns it and, for each old
    product index, its new index (-1 for dropped products). With `external_links` = k > 0, each product
    relation gains `shared_external_links` edges between catalog products (not already linked)."""
    import pandas as pd

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
        kept = e[keep].assign(src=src[keep], dst=dst[keep]).reset_index(drop=True)
        if external_links > 0 and spec.src == PRODUCT and spec.dst == PRODUCT and len(e):
            links = new_index[shared_external_links(e["src"].to_numpy(), e["dst"].to_numpy(), cat, external_links)]
            have = set(zip(np.minimum(kept["src"], kept["dst"]).tolist(), np.maximum(kept["src"], kept["dst"]).tolist()))
            new = [j for j in range(links.shape[1]) if (int(links[0, j]), int(links[1, j])) not in have]
            if new:
                extra = pd.DataFrame({"src": links[0, new], "dst": links[1, new]})
                kept = pd.concat([kept, extra.astype(kept[["src", "dst"]].dtypes.to_dict())],
                                 ignore_index=True)
        out.edges[rel] = kept
    return out, new_index
