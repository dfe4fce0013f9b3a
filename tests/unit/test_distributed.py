"""Training in two processes (torchrun, gloo) on a tiny graph: the ranks end with the same weights, rank 0
writes a model directory that loads, and one batch split in two gives the gradient of the whole batch."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fusion import Recommender
from query_fixtures import trained_model

ROOT = Path(__file__).resolve().parents[2]


def test_two_processes_agree_and_write_a_model_that_loads(tmp_path):
    _, store = trained_model()
    shutil.copytree(store, tmp_path / "store")
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip(f"no torchrun beside {sys.executable}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([str(torchrun), "--nproc_per_node=2", "--standalone",
                          str(ROOT / "scripts" / "train.py"), "--store", str(tmp_path / "store"), "--out",
                          str(tmp_path / "model"), "--split", "loo", "--cold-items", "0", "--variant", "fusion_no_text",
                          "--set", "train.epochs", "3", "--set", "gnn.dim", "16", "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "2 ranks agree: weights digest" in out.stdout
    assert "rank 1: weights agree with rank 0" in out.stderr
    rec = Recommender.load(tmp_path / "model", store=tmp_path / "store", event_log=None)
    assert len(rec.recommend("a3", k=3)) == 3
    import json
    assert json.loads((tmp_path / "model" / "meta.json").read_text())["world_size"] == 2


def test_a_batch_split_between_ranks_averages_to_the_whole_batch_gradient():
    """What DDP relies on: the mean of the shards' loss gradients is the whole batch's (preference and L2 losses
    are per-example means; shards of equal size)."""
    from fusion import FusionConfig
    from fusion.data import TrainData, build_histories, build_path_sampler
    from fusion.features import build_inputs
    from fusion.model import FusionModel
    from fusion.trainer import BatchLoss, _draw_batch, _examples, _shard
    from kg import EmbeddedStore

    _, store = trained_model()
    data = TrainData.from_graph(EmbeddedStore(store).load())
    cfg = FusionConfig().ablation("fusion_no_text")
    cfg.loss.kg_path = 0.0
    cfg.gnn.dim = 8
    inputs = build_inputs(data.graph, data.items, cfg.relations, cfg.external_products)
    torch.manual_seed(0)
    model = FusionModel(cfg, inputs.index, inputs.item_entity)
    hist = build_histories(data.graph, data.column_of)
    users, pos = _examples(hist, need_history=False)
    b = np.arange(0, 40)
    batch = _draw_batch(cfg, hist, build_path_sampler(data.graph, data.column_of), np.random.default_rng(0), b,
                        users, pos, model.item_entity.shape[0], use_text=False)
    model.eval()  # no item or edge dropout: the same graph embeddings in every call
    loss_fn = BatchLoss(model, None, data.user_items)

    def grads(bt):
        model.zero_grad()
        loss_fn(bt)[0].backward()
        return model.gnn.embedding.weight.grad.clone()

    whole = grads(batch)
    halves = (grads(_shard(batch, 0, 2)) + grads(_shard(batch, 1, 2))) / 2
    torch.testing.assert_close(halves, whole, rtol=1e-4, atol=1e-6)
