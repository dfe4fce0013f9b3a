"""End-to-end on the real Amazon data in ../shared/data (skipped when absent)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, data_dir

pytestmark = pytest.mark.realdata


def _run(*args):
    out = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out


def test_scientific_convert_build_and_rebuild(tmp_path):
    src = data_dir("amazon-scientific")
    _run("scripts/convert_dataset.py", "amazon-json", "--items", src / "Scientific.item.json",
         "--interactions", src / "Scientific.inter.json", "--out", tmp_path)
    args = ["scripts/build_graph.py", "--products", tmp_path / "products.csv",
            "--interactions", tmp_path / "interactions.csv", "--store", tmp_path / "store", "--quiet"]
    _run(*args, "--json", tmp_path / "a.json")
    first = json.loads((tmp_path / "a.json").read_text())
    assert first["nodes"]["Product"] == 4344 and first["nodes"]["User"] == 8317
    assert first["nodes"]["Category"] == 939
    assert first["relationships"]["INTERACTED"] == 58492
    assert first["changes"]["nodes_created"] > 0
    _run(*args, "--json", tmp_path / "b.json")
    second = json.loads((tmp_path / "b.json").read_text())
    assert second["changes"] == {"nodes_created": 0, "nodes_updated": 0, "relationships_created": 0,
                                 "relationships_deleted": 0}
    assert second["nodes"] == first["nodes"]


@pytest.mark.slow
def test_beauty_convert_and_build(tmp_path):
    src = data_dir("amazon-beauty-kg")
    _run("scripts/convert_dataset.py", "amazon-kg", "--dir", src, "--out", tmp_path)
    _run("scripts/build_graph.py", "--products", tmp_path / "products.csv", "--interactions",
         tmp_path / "interactions.csv", "--relations", tmp_path / "relations.csv", "--store", tmp_path / "store",
         "--quiet", "--json", tmp_path / "a.json")
    c = json.loads((tmp_path / "a.json").read_text())
    assert c["nodes"]["Product"] == 12101 and c["nodes"]["User"] == 22363
    assert c["relationships"]["INTERACTED"] == 149844
    assert sum(1 for _ in open(tmp_path / "test_interactions.csv")) == 48658 + 1
