"""Embedding cache kept beside the graph store, keyed by model id and sha256 of the product text.

Layout: ``<store_dir>/text_cache/<model_id>.npz`` holding ``keys`` (``[n]`` hex sha256 of the
text, ``S64``) and ``vectors`` (``[n, d]`` float32). One file per model id, written to a
temporary file and ``os.replace``-d into place, so a crash never leaves a half-written cache.
Re-encoding a catalog encodes only texts whose hash is not in the file (and each distinct
text once).
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from .encoder import TextEncoder

__all__ = ["CACHE_SUBDIR", "EmbeddingCache", "cache_dir_for_store", "encode_products", "text_key"]

CACHE_SUBDIR = "text_cache"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def cache_dir_for_store(store_dir: str | Path) -> Path:
    """``<store_dir>/text_cache``: where the text cache lives next to the graph store."""
    return Path(store_dir) / CACHE_SUBDIR


def text_key(text: str) -> bytes:
    """Cache key of one text: hex sha256 of its UTF-8 bytes (64 ASCII bytes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest().encode("ascii")


class EmbeddingCache:
    """Text vectors per model id in ``directory`` (created on first write).

    Args:
        directory: the cache directory, usually :func:`cache_dir_for_store` of the graph store.

    ``hits`` and ``misses`` count lookups since construction.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.directory)!r}, hits={self.hits}, misses={self.misses})"

    def path(self, model_id: str) -> Path:
        if not model_id:
            raise ValueError("EmbeddingCache expected a non-empty model_id")
        return self.directory / f"{_UNSAFE.sub('_', model_id)}.npz"

    def load(self, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """All cached ``keys [n] S64`` and ``vectors [n, d] float32`` of a model (empty if none)."""
        path = self.path(model_id)
        if not path.is_file():
            return np.empty(0, dtype="S64"), np.empty((0, 0), dtype=np.float32)
        try:
            with np.load(path, allow_pickle=False) as data:
                keys, vectors = data["keys"], data["vectors"]
                stored_id = str(data["model_id"]) if "model_id" in data else model_id
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"text cache file {path} is unreadable ({exc}); delete it to rebuild") from exc
        if stored_id != model_id:
            raise ValueError(f"text cache file {path} holds model {stored_id!r}, expected {model_id!r}")
        if vectors.ndim != 2 or len(keys) != len(vectors):
            raise ValueError(f"text cache file {path} is inconsistent: {len(keys)} keys, vectors of shape {vectors.shape}")
        return keys, vectors

    def lookup(self, model_id: str, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """``found [m] bool`` and ``vectors [found.sum(), d]`` for the given keys, in order."""
        stored_keys, stored = self.load(model_id)
        index = {k: i for i, k in enumerate(stored_keys.tolist())}
        rows = np.fromiter((index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        found = rows >= 0
        self.hits += int(found.sum())
        self.misses += int((~found).sum())
        return found, stored[rows[found]] if len(stored_keys) else np.empty((0, 0), dtype=np.float32)

    def put(self, model_id: str, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Add (or overwrite) ``vectors [m, d]`` under ``keys`` and rewrite the file atomically."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(keys) != len(vectors):
            raise ValueError(f"EmbeddingCache.put expected {len(keys)} vectors of shape [m, d], got {vectors.shape}")
        old_keys, old = self.load(model_id)
        if len(old_keys) and old.shape[1] != vectors.shape[1]:
            raise ValueError(f"text cache {self.path(model_id)} holds d={old.shape[1]} vectors, got d={vectors.shape[1]}")
        new_keys = np.asarray(list(keys), dtype="S64")
        keep = ~np.isin(old_keys, new_keys) if len(old_keys) else np.zeros(0, dtype=bool)
        all_keys = np.concatenate([old_keys[keep], new_keys])
        all_vectors = np.concatenate([old[keep], vectors]) if len(old_keys) else vectors
        self._write(model_id, all_keys, all_vectors)

    def _write(self, model_id: str, keys: np.ndarray, vectors: np.ndarray) -> None:
        path = self.path(model_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, keys=keys, vectors=vectors, model_id=np.array(model_id))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def encode_products(
    encoder: "TextEncoder",
    products: "pd.DataFrame",
    cache_dir: "str | Path | EmbeddingCache | None" = None,
    show_progress: bool = True,
) -> tuple[list[str], "torch.Tensor"]:
    """Encode a catalog with :func:`text.product_text`, reusing cached vectors.

    Args:
        encoder: the :class:`text.TextEncoder`; its ``model_id`` selects the cache file.
        products: DataFrame with ``product_id`` and the text columns (see :mod:`text.templates`).
        cache_dir: a cache directory (e.g. ``cache_dir_for_store(store)``), an
            :class:`EmbeddingCache`, or ``None`` for no cache.
        show_progress: tqdm bar over the texts actually encoded.

    Returns:
        ``product_ids`` (``list[str]``, frame order) and float32 vectors ``[n, d]`` in that order.
    """
    import pandas as pd
    import torch

    from .templates import product_text

    if not isinstance(products, pd.DataFrame):
        raise ValueError(f"encode_products expected a pandas DataFrame of products, got {type(products).__name__}")
    if "product_id" not in products.columns:
        raise ValueError(f"encode_products expected a 'product_id' column, got columns {list(products.columns)}")
    ids = products["product_id"]
    if ids.isna().any():
        raise ValueError(f"encode_products: product_id is missing in row(s) {list(products.index[ids.isna()][:5])}")
    product_ids = [str(x) for x in ids.tolist()]
    texts = product_text(products).tolist()
    keys = [text_key(t) for t in texts]
    # each distinct text once
    unique: dict[bytes, int] = {}
    for i, k in enumerate(keys):
        unique.setdefault(k, i)
    unique_keys = list(unique)
    cache = cache_dir if isinstance(cache_dir, EmbeddingCache) else (EmbeddingCache(cache_dir) if cache_dir is not None else None)

    vectors = np.empty((len(unique_keys), encoder.dim), dtype=np.float32)
    found = np.zeros(len(unique_keys), dtype=bool)
    if cache is not None:
        found, cached = cache.lookup(encoder.model_id, unique_keys)
        if found.any():
            vectors[found] = cached
    missing = np.flatnonzero(~found)
    if len(missing):
        fresh = encoder.encode_texts([texts[unique[unique_keys[j]]] for j in missing], show_progress=show_progress)
        vectors[missing] = fresh.numpy()
        if cache is not None:
            cache.put(encoder.model_id, [unique_keys[j] for j in missing], vectors[missing])
    position = {k: j for j, k in enumerate(unique_keys)}
    order = np.fromiter((position[k] for k in keys), dtype=np.int64, count=len(keys))
    return product_ids, torch.from_numpy(vectors[order])
