"""Embedding cache: keyed by model id + sha256(text), encodes only misses, writes atomically."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from text_fixtures import text_encoder, tiny_products  # noqa: F401  (session fixture)

from text import EmbeddingCache, cache_dir_for_store, encode_products, product_text, text_key


class Spy:
    """Wraps an encoder and records the texts it was asked to encode."""

    def __init__(self, encoder):
        self.encoder, self.calls = encoder, []
        self.dim, self.model_id = encoder.dim, encoder.model_id

    def encode_texts(self, texts, **kwargs):
        self.calls.append(list(texts))
        return self.encoder.encode_texts(texts, **kwargs)


def test_reencoding_encodes_only_changed_products(text_encoder, tmp_path):
    cache_dir = cache_dir_for_store(tmp_path / "store")
    products = tiny_products()
    spy = Spy(text_encoder)
    ids, first = encode_products(spy, products, cache_dir, show_progress=False)
    assert ids == ["p0", "p1", "p2", "p3", "p4"] and first.shape == (5, 384)
    assert len(spy.calls) == 1 and len(spy.calls[0]) == 5
    assert (cache_dir / f"{text_encoder.model_id}.npz").is_file()
    assert [p.name for p in cache_dir.iterdir()] == [f"{text_encoder.model_id}.npz"]  # no temp files left

    products.loc[2, "description"] = "Powder-free nitrile gloves, now in extra large."
    cache = EmbeddingCache(cache_dir)
    spy.calls.clear()
    ids, second = encode_products(spy, products, cache, show_progress=False)
    assert (cache.hits, cache.misses) == (4, 1)
    assert spy.calls == [[product_text(products.iloc[2])]]
    direct = text_encoder.encode_texts(product_text(products).tolist())
    assert (second - direct).abs().max() < 1e-5
    assert torch.equal(second[[0, 1, 3, 4]], first[[0, 1, 3, 4]])

    spy.calls.clear()
    encode_products(spy, products, cache, show_progress=False)
    assert spy.calls == [] and (cache.hits, cache.misses) == (9, 1)


def test_duplicate_texts_encoded_once_and_no_cache_mode(text_encoder):
    products = tiny_products()
    products.loc[1, ["title", "description", "brand", "categories"]] = products.loc[0, ["title", "description", "brand", "categories"]]
    spy = Spy(text_encoder)
    _, vecs = encode_products(spy, products, None, show_progress=False)
    assert len(spy.calls[0]) == 4
    assert torch.equal(vecs[0], vecs[1])


def test_model_ids_do_not_mix(tmp_path):
    cache = EmbeddingCache(tmp_path)
    keys = [text_key("a"), text_key("b")]
    cache.put("model-a", keys, np.ones((2, 3), dtype=np.float32))
    found, _ = cache.lookup("model-b", keys)
    assert not found.any()
    found, vecs = cache.lookup("model-a", [text_key("b"), text_key("c")])
    assert found.tolist() == [True, False] and vecs.shape == (1, 3)
    cache.put("model-a", [text_key("b")], np.full((1, 3), 2.0, dtype=np.float32))  # overwrite, not duplicate
    keys_stored, vecs_stored = cache.load("model-a")
    assert len(keys_stored) == 2 and vecs_stored[keys_stored.tolist().index(text_key("b"))].tolist() == [2.0] * 3


def test_failed_write_keeps_previous_cache(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    cache.put("m", [text_key("a")], np.ones((1, 2), dtype=np.float32))

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        cache.put("m", [text_key("b")], np.ones((1, 2), dtype=np.float32))
    keys, _ = cache.load("m")
    assert keys.tolist() == [text_key("a")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_bad_inputs(text_encoder, tmp_path):
    with pytest.raises(ValueError, match="expected a 'product_id' column"):
        encode_products(text_encoder, tiny_products().drop(columns="product_id"), tmp_path)
    with pytest.raises(ValueError, match="expected a pandas DataFrame"):
        encode_products(text_encoder, [{"title": "x"}], tmp_path)
    with pytest.raises(ValueError, match="expected 2 vectors"):
        EmbeddingCache(tmp_path).put("m", [text_key("a"), text_key("b")], np.ones((1, 2)))
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="broken.npz is unreadable"):
        EmbeddingCache(tmp_path).load("broken")
