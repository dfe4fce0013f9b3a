"""Shared fixtures: tiny graphs built by the tests, and the path to the real data when present."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def tiny_files(tmp_path):
    from kg_fixtures import tiny_files as make
    return make(tmp_path)


@pytest.fixture
def tiny_graph(tiny_files):
    from kg import KnowledgeGraph, merge_files
    g = KnowledgeGraph()
    merge_files(g, *tiny_files, show_progress=False)
    return g


def data_dir(name: str) -> Path:
    """Real dataset folder under ../shared/data, or skip the test with a clear reason."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"real data {path} not present")
    return path
