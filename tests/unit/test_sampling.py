"""Neighbour-sampled training (`gnn.sampling`, `train.sampler="neighbor"`) on the tiny graph the tests build.

Tests that sample need torch_geometric with pyg-lib or torch-sparse and skip with the reason where it is
missing; the configuration checks and the clear error without a backend run everywhere."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fusion import FusionConfig, FusionRecommender
from fusion.data import TrainData


def _data(graph):
    return TrainData.from_graph(graph, seed=0)


def _fake_text(monkeypatch):
    import fusion.recommender as rec_mod
    monkeypatch.setattr(rec_mod, "text_embeddings", lambda g, items, *a, **k: torch.randn(
        len(items), 16, generator=torch.Generator().manual_seed(0)))


def _cfg(epochs=2, sampler="full", num_neighbors=(-1,)):
    cfg = FusionConfig()
    cfg.gnn.dim, cfg.train.epochs, cfg.train.batch_size = 8, epochs, 4
    cfg.loss.num_negatives = 2  # a sampled softmax: the batch reads only some products
    cfg.train.sampler, cfg.train.num_neighbors = sampler, list(num_neighbors)
    return cfg


def _require_sampling():
    from gnn.sampling import sampling_available
    reason = sampling_available()
    if reason is not None:
        pytest.skip(f"neighbour sampling unavailable here: {reason}")


def _encoder(graph, num_layers=2):
    from gnn import GNNConfig, KGEncoder, build_entity_index
    from kg import to_hetero_data
    torch.manual_seed(0)
    return KGEncoder(build_entity_index(to_hetero_data(graph)), GNNConfig(dim=8, num_layers=num_layers))


def test_sampler_settings_are_validated():
    from fusion.config import TrainConfig
    with pytest.raises(ValueError, match="train.sampler must be one of full, neighbor"):
        TrainConfig(sampler="neighbour")
    for bad in ([], [0], [2, -2], "10", [1.5]):
        with pytest.raises(ValueError, match="train.num_neighbors must be"):
            TrainConfig(num_neighbors=bad)
    assert TrainConfig(sampler="neighbor", num_neighbors=[-1, 5]).sampler == "neighbor"
    cfg = FusionConfig.from_dict({"train": {"sampler": "neighbor", "num_neighbors": [15, 10]}})
    assert cfg.train.num_neighbors == [15, 10] and FusionConfig().train.sampler == "full"


def test_availability_is_a_reason_or_none():
    from gnn.sampling import sampling_available
    reason = sampling_available()
    assert reason is None or ("torch-sparse" in reason and "pyg-lib" in reason)


def test_neighbor_sampler_without_backend_is_a_clear_error(tiny_graph, monkeypatch):
    import gnn.sampling
    _fake_text(monkeypatch)
    monkeypatch.setattr(gnn.sampling, "sampling_available", lambda: "neither pyg-lib nor torch-sparse: "
                        + gnn.sampling.INSTALL_HINT)
    with pytest.raises(RuntimeError, match=r"train.sampler='neighbor'.*"
                       r"pip install --no-build-isolation torch-scatter torch-sparse"):
        FusionRecommender(_cfg(sampler="neighbor")).fit(_data(tiny_graph))


def test_homogeneous_view_holds_every_adjacency_entry(tiny_graph):
    from gnn.sampling import homogeneous_view
    enc = _encoder(tiny_graph)
    idx = enc.index
    edge_index, edge_type, weight, degree = homogeneous_view(idx)
    assert edge_index.shape[1] == len(edge_type) == len(weight) == sum(a._nnz() for a in idx.adjacency)
    assert degree.shape == (idx.total, len(idx.relations))
    assert torch.equal(degree > 0, idx.presence > 0)
    for r, a in enumerate(idx.adjacency):  # the weights are the full-graph normalised values
        sel = edge_type == r
        dense = torch.zeros(idx.total, idx.total).index_put_((edge_index[1, sel], edge_index[0, sel]), weight[sel])
        assert torch.allclose(dense, a.to_dense())


@pytest.mark.parametrize("num_neighbors", [[-1], [1000, 1000]])
def test_sampled_embeddings_equal_full_batch_with_every_neighbour(tiny_graph, num_neighbors):
    _require_sampling()
    from gnn.sampling import NeighborSampledEncoder
    enc = _encoder(tiny_graph)
    idx = enc.index
    users = torch.arange(idx.num_nodes["User"]) + idx.offsets["User"]
    seeds = torch.cat([users[:2], torch.arange(idx.num_nodes["Product"])[:3] + idx.offsets["Product"]]).sort().values
    drop = torch.zeros(idx.total, dtype=torch.bool)
    drop[idx.offsets["Product"]] = True  # a content-only product
    sampler = NeighborSampledEncoder(enc, num_neighbors)
    for d in (None, drop):
        full = enc(d)[seeds]
        got = sampler(seeds, d)
        assert got.shape == (len(seeds), 8)
        assert torch.allclose(got, full, atol=1e-6), (got - full).abs().max()
    # the encoder's own weights get the same gradients as through the full propagation
    probe = torch.randn(len(seeds), 8, generator=torch.Generator().manual_seed(1))
    grads = []
    for f in (lambda: enc(drop)[seeds], lambda: sampler(seeds, drop)):
        enc.zero_grad()
        (f() * probe).sum().backward()
        grads.append((enc.embedding.weight.grad.clone(), enc.relation_logits.grad.clone()))
    (e_full, r_full), (e_smp, r_smp) = grads
    assert e_smp.abs().sum() > 0 and r_smp.abs().sum() > 0
    assert torch.allclose(e_smp, e_full, atol=1e-6) and torch.allclose(r_smp, r_full, atol=1e-6)


def test_partial_sampling_is_finite_and_touches_only_the_subgraph(tiny_graph):
    _require_sampling()
    from gnn.sampling import NeighborSampledEncoder
    enc = _encoder(tiny_graph)
    seeds = torch.tensor([enc.index.offsets["Product"]])
    sampler = NeighborSampledEncoder(enc, [1])
    nodes, src, dst, _ = sampler.sample(seeds)
    assert nodes[0] == seeds[0] and len(nodes) <= 1 + 1 + 1  # one neighbour per hop
    assert torch.isfinite(sampler(seeds)).all()
    with pytest.raises(ValueError, match="one per layer"):
        NeighborSampledEncoder(enc, [2, 2, 2]).hops()


def test_training_batch_with_every_neighbour_sampled_matches_full_batch(tiny_graph, monkeypatch):
    _require_sampling()
    _fake_text(monkeypatch)
    data = _data(tiny_graph)
    runs = []
    for sampler in ("full", "neighbor"):
        cfg = _cfg(epochs=1, sampler=sampler, num_neighbors=[-1])
        cfg.train.batch_size = 256  # one batch: the losses before any step, same draws in both paths
        torch.manual_seed(0)  # the model's initial weights come from the global generator
        runs.append(FusionRecommender(cfg).fit(data).state_.history[0])
    full, sampled = runs
    for k in ("total", "preference", "text", "kg_path", "l2"):
        assert sampled[k] == pytest.approx(full[k], rel=1e-5), k


@pytest.mark.parametrize("num_negatives", [0, 2])
def test_neighbor_sampled_training_trains_and_scores(tiny_graph, tmp_path, monkeypatch, num_negatives):
    _require_sampling()
    _fake_text(monkeypatch)
    data = _data(tiny_graph)
    cfg = _cfg(sampler="neighbor", num_neighbors=[2, 1])
    cfg.loss.num_negatives = num_negatives
    rec = FusionRecommender(cfg).fit(data)
    assert rec.state_.epoch == 2 and all(np.isfinite(r["total"]) for r in rec.state_.history)
    s = rec.score(np.arange(3))
    assert s.shape == (3, 4) and np.isfinite(s).all()
    # the same model as a full-batch one: saved and reloaded with identical (full-batch) scores
    rec.save(tmp_path / "m")
    again = FusionRecommender.load(tmp_path / "m", data)
    assert again.config.train.sampler == "neighbor"
    np.testing.assert_allclose(again.score(np.arange(3)), s, rtol=1e-5, atol=1e-6)
