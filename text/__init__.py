"""Product and query text -> vectors (issue 3, "Description encoder").

``import text`` is cheap: torch, transformers and pandas load on first use of a name.

Public API::

    from text import EncoderConfig, TextEncoder, product_text, encode_products, cache_dir_for_store
    enc = TextEncoder(EncoderConfig())                          # bundled all-MiniLM-L6-v2, offline
    ids, vecs = encode_products(enc, products_df, cache_dir_for_store(store_dir))   # [n, 384]
    q = enc.encode_query("digital caliper")                   # [384]
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "CACHE_SUBDIR",
    "EmbeddingCache",
    "EncoderConfig",
    "HeadConfig",
    "Int8Linear",
    "PRODUCT_COLUMNS",
    "ProjectionHead",
    "TEMPLATE",
    "TextEncoder",
    "TrainableTextTower",
    "cache_dir_for_store",
    "cls_pool",
    "default_model_path",
    "encode_products",
    "mean_pool",
    "pool",
    "product_text",
    "quantize_linears",
    "text_key",
]

_WHERE = {
    "EncoderConfig": "config",
    "default_model_path": "config",
    "PRODUCT_COLUMNS": "templates",
    "TEMPLATE": "templates",
    "product_text": "templates",
    "TextEncoder": "encoder",
    "pool": "encoder",
    "mean_pool": "encoder",
    "cls_pool": "encoder",
    "CACHE_SUBDIR": "cache",
    "EmbeddingCache": "cache",
    "cache_dir_for_store": "cache",
    "encode_products": "cache",
    "text_key": "cache",
    "HeadConfig": "head",
    "ProjectionHead": "head",
    "TrainableTextTower": "head",
    "Int8Linear": "quantize",
    "quantize_linears": "quantize",
}

if TYPE_CHECKING:
    from .cache import CACHE_SUBDIR, EmbeddingCache, cache_dir_for_store, encode_products, text_key
    from .config import EncoderConfig, default_model_path
    from .encoder import TextEncoder, cls_pool, mean_pool, pool
    from .head import HeadConfig, ProjectionHead, TrainableTextTower
    from .quantize import Int8Linear, quantize_linears
    from .templates import PRODUCT_COLUMNS, TEMPLATE, product_text


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'text' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
