"""Real-data checks on a slice of the Amazon Scientific catalog (skipped when the data is absent)."""
from __future__ import annotations

import pytest
import torch
from text_fixtures import int8_encoder, scientific_products, text_encoder  # noqa: F401

from text import encode_products, product_text

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def sample():
    return scientific_products(limit=300)


@pytest.fixture(scope="module")
def fp32_vectors(sample, text_encoder):
    return encode_products(text_encoder, sample, show_progress=False)[1]


def test_int8_cosine_on_real_products(sample, fp32_vectors, int8_encoder):
    _, int8 = encode_products(int8_encoder, sample, show_progress=False)
    cos = (fp32_vectors * int8).sum(1)
    assert cos.min() >= 0.99, f"min cosine {cos.min():.4f} at product {sample.product_id.iloc[int(cos.argmin())]}"


def test_product_without_description_still_useful(sample, fp32_vectors, text_encoder):
    no_desc = sample.assign(description=None)
    assert not product_text(no_desc).str.contains("None").any()
    _, short = encode_products(text_encoder, no_desc, show_progress=False)
    # its nearest full-text product is (almost always) itself
    hit = (short @ fp32_vectors.T).argmax(1) == torch.arange(len(sample))
    assert hit.float().mean() >= 0.8


def test_query_finds_matching_products(sample, fp32_vectors, text_encoder):
    titles = sample.title.str.lower()
    for query, word in [("duct tape for repairs", "tape"), ("super glue", "glue"), ("digital thermometer", "thermometer")]:
        top = (fp32_vectors @ text_encoder.encode_query(query)).topk(5).indices
        assert titles.iloc[top.tolist()].str.contains(word).sum() >= 3, query
