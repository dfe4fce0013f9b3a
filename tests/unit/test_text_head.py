"""Projection head and the trainable text tower (frozen encoder, or top-N fine-tuning)."""
from __future__ import annotations

import pytest
import torch
from text_fixtures import bf16_encoder, text_encoder  # noqa: F401  (session fixtures)

from text import HeadConfig, ProjectionHead, TrainableTextTower

TEXTS = ["Nitrile gloves. Brand: Ansell.", "Digital caliper, stainless steel.", "Gaffer tape, black, 2 inch."]


@pytest.mark.parametrize("hidden_dim", [None, 32])
@pytest.mark.parametrize("normalize", [True, False])
def test_projection_head_shapes_and_gradients(hidden_dim, normalize):
    torch.manual_seed(0)
    head = ProjectionHead(HeadConfig(in_dim=16, out_dim=8, hidden_dim=hidden_dim, normalize=normalize))
    out = head(torch.randn(5, 16))
    assert out.shape == (5, 8)
    if normalize:
        torch.testing.assert_close(out.norm(dim=1), torch.ones(5))
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    with pytest.raises(ValueError, match=r"expected \[b, 16\] input, got \(5, 15\)"):
        head(torch.randn(5, 15))


def test_frozen_tower_trains_head_only(text_encoder):
    embeddings = text_encoder.encode_texts(TEXTS)
    tower = TrainableTextTower(text_encoder, ProjectionHead(HeadConfig(in_dim=384, out_dim=16)), embeddings)
    assert tower.trainable_layer_indices() == []
    assert [n for n, p in tower.named_parameters() if p.requires_grad] == ["head.net.weight", "head.net.bias"]
    from_index = tower(torch.tensor([0, 2]))
    from_text = tower(TEXTS[::2])
    assert (from_index - from_text).abs().max() < 1e-5
    from_text.pow(2).sum().backward()
    assert tower.head.net.weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in text_encoder.model.parameters())


@pytest.mark.parametrize("n", [1, 2])
def test_top_n_finetune_unfreezes_exactly_n_layers(text_encoder, n):
    before = {k: v.clone() for k, v in text_encoder.model.state_dict().items() if "layer.5." in k}
    tower = TrainableTextTower(text_encoder, ProjectionHead(HeadConfig(in_dim=384, out_dim=16, train_top_n_layers=n)))
    assert tower.trainable_layer_indices() == list(range(6 - n, 6))
    tower.train()
    optimizer = torch.optim.SGD([p for p in tower.parameters() if p.requires_grad], lr=0.5)
    out = tower(TEXTS)
    assert out.shape == (3, 16)
    (out[0] @ out[1]).backward()
    layers = tower.transformer.encoder.layer
    for i, layer in enumerate(layers):
        grads = [p.grad for p in layer.parameters()]
        if i >= 6 - n:
            assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
        else:
            assert all(g is None for g in grads)
    assert all(p.grad is None for p in tower.transformer.embeddings.parameters())
    optimizer.step()
    # the shared inference encoder is untouched (its cache keys stay valid)
    after = text_encoder.model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    assert not any(p.requires_grad for p in text_encoder.model.parameters())


def test_tower_validation_and_save_load(text_encoder, bf16_encoder, tmp_path):
    with pytest.raises(ValueError, match="fine-tuning needs an fp32 encoder"):
        TrainableTextTower(bf16_encoder, ProjectionHead(HeadConfig(in_dim=384, train_top_n_layers=1)))
    with pytest.raises(ValueError, match="train_top_n_layers=7 but the encoder has only 6 layers"):
        TrainableTextTower(text_encoder, ProjectionHead(HeadConfig(in_dim=384, train_top_n_layers=7)))
    with pytest.raises(ValueError, match="in_dim=100 does not match encoder dim=384"):
        TrainableTextTower(text_encoder, ProjectionHead(HeadConfig(in_dim=100)))
    with pytest.raises(ValueError, match="stale once encoder layers train"):
        TrainableTextTower(text_encoder, ProjectionHead(HeadConfig(train_top_n_layers=1)), torch.zeros(2, 384))
    tower = TrainableTextTower(text_encoder, ProjectionHead(HeadConfig(in_dim=384, out_dim=8, train_top_n_layers=1)))
    with torch.no_grad():
        tower.transformer.encoder.layer[5].output.dense.bias.add_(0.1)
    tower.eval()
    expected = tower(TEXTS)
    tower.save(tmp_path)
    assert (tmp_path / "text_tower_config.json").is_file()
    loaded = TrainableTextTower.load(tmp_path, encoder=text_encoder).eval()
    torch.testing.assert_close(loaded(TEXTS), expected)
    with pytest.raises(ValueError, match="expects a list of texts"):
        loaded(torch.tensor([0]))
