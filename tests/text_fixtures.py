"""Session-wide text fixtures, imported by the text tests (unit and e2e).

``tests/conftest.py`` belongs to the kg tests, so the shared fixtures live here; the
``lru_cache`` loaders make each model load once per pytest session even though pytest
instantiates an imported fixture per module.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SCIENTIFIC = DATA / "amazon-scientific" / "Scientific.item.json"

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: tests never reach the hub


@functools.lru_cache(maxsize=None)
def load_encoder(quantize: bool = False, dtype: str = "float32"):
    from text import EncoderConfig, TextEncoder

    return TextEncoder(EncoderConfig(quantize=quantize, dtype=dtype))


@pytest.fixture(scope="session")
def text_encoder():
    """The bundled all-MiniLM-L6-v2, fp32, loaded once per session."""
    return load_encoder(False)


@pytest.fixture(scope="session")
def int8_encoder():
    """The same model with int8 linears, loaded once per session."""
    return load_encoder(True)


@pytest.fixture(scope="session")
def bf16_encoder():
    """The same model in bfloat16, loaded once per session."""
    return load_encoder(False, "bfloat16")


def tiny_products():
    """Five products covering the template's edge cases (no description, NaN brand, two paths)."""
    import pandas as pd

    return pd.DataFrame(
        {
            "product_id": ["p0", "p1", "p2", "p3", "p4"],
            "title": ["Stanley Staples 1/2 inch.", "Digital Caliper", "Nitrile Gloves, Large", "Hard Start Kit", "Gaffer Tape"],
            "description": [
                "Heavy-duty staples for insulation and roofing felt.",
                None,
                "Powder-free disposable gloves for labs.",
                "Relay and capacitor kit that increases compressor starting torque.",
                "",
            ],
            "brand": ["Stanley", "ML Tools", float("nan"), "SUPCO", "Hosa"],
            "categories": [
                "Industrial & Scientific > Fasteners > Staples",
                "Industrial & Scientific > Measurement > Calipers",
                "Industrial & Scientific > Lab > Gloves | Health > Safety",
                "Industrial & Scientific > Electrical > Capacitors",
                None,
            ],
        }
    )


def scientific_products(limit: int | None = None):
    """The Amazon Scientific catalog as a products DataFrame, or skip when the data is absent."""
    if not SCIENTIFIC.is_file():
        pytest.skip(f"real data {SCIENTIFIC} not present (expected ../shared/data next to the repo)")
    from kg.convert import amazon_json_products

    products = amazon_json_products(SCIENTIFIC)
    return products.iloc[:limit].reset_index(drop=True) if limit else products
