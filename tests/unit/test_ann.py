"""FaissIndex against ExactIndex on tiny clustered vectors: recall, exact filters, add, padding, errors."""
from __future__ import annotations

import sys

import numpy as np
import pytest

faiss = pytest.importorskip("faiss", reason="faiss is not installed (pip install faiss-cpu, or the ann extra)")

from fusion.serving.ann import ANNConfig, FaissIndex, recall_at_k  # noqa: E402
from fusion.serving.topk import ExactIndex  # noqa: E402

KINDS = ["hnsw", "ivf_flat", "flat"]
D = 16


def clustered(n: int, num_clusters: int = 20, seed: int = 0) -> np.ndarray:
    """Points around a few centres with varied norms (inner product, not cosine, decides)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_clusters, D)) * 3
    x = centres[rng.integers(0, num_clusters, n)] + rng.standard_normal((n, D))
    return (x * rng.uniform(0.5, 1.5, (n, 1))).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    return clustered(3000), clustered(40, seed=1)


def make(kind: str, vectors: np.ndarray, **kw) -> FaissIndex:
    kw = {"nlist": 16, "nprobe": 8, **kw} if kind == "ivf_flat" else kw
    return FaissIndex(vectors, ANNConfig(kind=kind, **kw))


@pytest.mark.parametrize("kind", KINDS)
def test_recall_against_exact(kind, data):
    x, q = data
    index, exact = make(kind, x), ExactIndex(x)
    assert index.size == 3000
    assert recall_at_k(index, exact, q, 10) >= 0.95
    scores, cols = index.search(q, 10)
    assert scores.shape == cols.shape == (40, 10) and scores.dtype == np.float32 and cols.dtype == np.int64
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    np.testing.assert_allclose(scores, np.einsum("bkd,bd->bk", x[cols], q), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("exact_below", [0, 20_000])  # 0: over-fetch through faiss; 20k: exact over allowed
def test_filters_are_exact(kind, exact_below, data):
    x, q = data
    index, exact = make(kind, x, exact_below=exact_below), ExactIndex(x)
    _, top = exact.search(q, 10)
    exclude = [top[i, :5] for i in range(len(q))]  # the best five are "already bought"
    allowed = np.random.default_rng(2).random(len(x)) < 0.3
    scores, cols = index.search(q, 10, exclude=exclude, allowed=allowed)
    assert np.all(cols >= 0) and allowed[cols].all()
    for i in range(len(q)):
        assert not set(cols[i]) & set(exclude[i])
    assert recall_at_k(index, exact, q, 10, exclude=exclude, allowed=allowed) >= 0.95


@pytest.mark.parametrize("kind", KINDS)
def test_fallback_to_exact_when_few_survive(kind, data):
    x, q = data
    # 40 allowed columns of 3000 and at most 20 fetched: over-fetching cannot find 10, the exact path must
    index = make(kind, x, exact_below=0, max_fetch=20)
    allowed = np.zeros(len(x), bool)
    allowed[np.random.default_rng(3).choice(len(x), 40, replace=False)] = True
    exclude = [np.flatnonzero(allowed)[:3]] * len(q)
    got = index.search(q, 10, exclude=exclude, allowed=allowed)
    want = ExactIndex(x).search(q, 10, exclude=exclude, allowed=allowed)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_padding_when_fewer_than_k_qualify(kind, data):
    x, q = data
    index = make(kind, x)
    allowed = np.zeros(len(x), bool)
    allowed[[5, 17, 900]] = True
    scores, cols = index.search(q[:2], 5, exclude=[[17], []], allowed=allowed)
    assert sorted(cols[0, :2]) == [5, 900] and np.all(cols[0, 2:] == -1) and np.all(np.isneginf(scores[0, 2:]))
    assert sorted(cols[1, :3]) == [5, 17, 900] and np.all(cols[1, 3:] == -1)
    small = make("hnsw" if kind == "ivf_flat" else kind, x[:4])
    scores, cols = small.search(q[:1], 6)
    assert sorted(cols[0, :4]) == [0, 1, 2, 3] and list(cols[0, 4:]) == [-1, -1]
    assert np.isneginf(scores[0, 4:]).all()
    assert index.search(q, 0)[1].shape == (40, 0)
    assert index.search(q, 3, allowed=np.zeros(len(x), bool))[1].tolist() == [[-1, -1, -1]] * 40


@pytest.mark.parametrize("kind", KINDS)
def test_add_appends_columns(kind, data):
    x, q = data
    index = make(kind, x)
    new = np.stack([q[0] * 10, -q[0]]).astype(np.float32)  # the first is the best match of query 0 by far
    index.add(new)
    assert index.size == 3002
    np.testing.assert_allclose(index.vectors[-2:], new)
    scores, cols = index.search(q[:1], 3)
    assert cols[0, 0] == 3000
    np.testing.assert_allclose(scores[0], index.vectors[cols[0]] @ q[0], rtol=1e-5)
    _, cols = index.search(q[:1], 3, exclude=[[3000]])
    assert 3000 not in cols[0]
    index.add(np.zeros((0, D), np.float32))
    assert index.size == 3002
    if kind == "ivf_flat":  # longer than every built vector: kept in the exactly-scored overflow list
        assert index.num_overflow == 1


def test_empty_hnsw_index_grows():
    index = FaissIndex(np.zeros((0, D), np.float32), ANNConfig(kind="hnsw"))
    assert index.size == 0
    assert index.search(np.ones((1, D), np.float32), 2)[1].tolist() == [[-1, -1]]
    index.add(clustered(50))
    assert index.search(np.ones((1, D), np.float32), 2)[1].min() >= 0


def test_errors(data):
    x, q = data
    index = FaissIndex(x)
    with pytest.raises(ValueError, match="queries must have 16 columns, got 3"):
        index.search(np.ones((1, 3), np.float32), 5)
    with pytest.raises(ValueError, match=r"vectors to add must be \[m, 16\], got shape \(2, 4\)"):
        index.add(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"exclude must have one entry per query \(40\), got 1"):
        index.search(q, 5, exclude=[[1]])
    with pytest.raises(ValueError, match="allowed must be a bool mask over the 3000 columns"):
        index.search(q, 5, allowed=np.ones(10, bool))
    with pytest.raises(ValueError, match="k must be >= 0"):
        index.search(q, -1)
    with pytest.raises(ValueError, match=r"vectors must be 2-D \[n, d\]"):
        FaissIndex(np.ones(5, np.float32))
    with pytest.raises(ValueError, match="kind must be one of"):
        ANNConfig(kind="lsh")
    with pytest.raises(ValueError, match="ANNConfig.m must be >= 1"):
        ANNConfig(m=0)
    with pytest.raises(ValueError, match="ivf_flat index trains its lists on the vectors it is built with"):
        FaissIndex(np.zeros((0, D), np.float32), ANNConfig(kind="ivf_flat"))


def test_missing_faiss_says_how_to_install(monkeypatch, data):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` raise ImportError
    with pytest.raises(ImportError, match=r"pip install faiss-cpu"):
        FaissIndex(data[0])


def test_recall_helper_and_exports(data):
    import fusion
    x, q = data
    exact = ExactIndex(x)
    assert recall_at_k(exact, exact, q, 10) == 1.0
    assert fusion.FaissIndex is FaissIndex and fusion.ANNConfig is ANNConfig and fusion.ExactIndex is ExactIndex
    assert "kind='ivf_flat'" in repr(make("ivf_flat", x))
