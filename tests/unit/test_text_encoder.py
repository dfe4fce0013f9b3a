"""TextEncoder on the bundled all-MiniLM-L6-v2 (loaded once per session)."""
from __future__ import annotations

import copy
import dataclasses
import os
import socket

import pytest
import torch
import torch.nn.functional as F
from text_fixtures import bf16_encoder, int8_encoder, text_encoder  # noqa: F401  (session fixtures)

from text import EncoderConfig, Int8Linear, TextEncoder

SHORT = "Nitrile gloves. Brand: Ansell."
LONG = " ".join(["Heavy-duty staples for insulation, carpet underlay and roofing felt."] * 30)
TEXTS = [SHORT, "Digital caliper, stainless steel, inch and metric.", LONG, "Gaffer tape"]


def test_shapes_dtype_and_norm(text_encoder):
    vecs = text_encoder.encode_texts(TEXTS)
    assert vecs.shape == (4, text_encoder.dim) == (4, 384)
    assert vecs.dtype == torch.float32 and not vecs.requires_grad and not vecs.is_inference()
    torch.testing.assert_close(vecs.norm(dim=1), torch.ones(4))
    assert text_encoder.encode_texts([]).shape == (0, 384)


def test_mean_pooling_matches_manual_computation(text_encoder):
    tok = text_encoder.tokenizer(TEXTS[:2], padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        hidden = text_encoder.model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"]).last_hidden_state
    mask = tok["attention_mask"].unsqueeze(-1).float()
    manual = F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    torch.testing.assert_close(text_encoder.encode_texts(TEXTS[:2]), manual, atol=1e-5, rtol=0)


def test_cls_pooling_option(text_encoder):
    cls_encoder = copy.copy(text_encoder)
    cls_encoder.config = dataclasses.replace(text_encoder.config, pooling="cls")
    assert cls_encoder.model_id != text_encoder.model_id and "-cls-" in cls_encoder.model_id
    tok = text_encoder.tokenizer([SHORT], return_tensors="pt")
    with torch.no_grad():
        hidden = text_encoder.model(**tok).last_hidden_state
    torch.testing.assert_close(cls_encoder.encode_texts([SHORT])[0], F.normalize(hidden[0, 0], dim=0), atol=1e-5, rtol=0)


def test_padding_invariant_and_order_preserved(text_encoder):
    alone = text_encoder.encode_texts([SHORT])
    together = text_encoder.encode_texts([LONG, SHORT, "x"], batch_size=3)
    assert (together[1] - alone[0]).abs().max() < 1e-5
    one_by_one = torch.cat([text_encoder.encode_texts([t]) for t in TEXTS])
    assert (text_encoder.encode_texts(TEXTS, batch_size=2) - one_by_one).abs().max() < 1e-5


def test_max_length_truncates(text_encoder):
    ids, mask = text_encoder.tokenize([LONG, SHORT])
    assert ids.shape == mask.shape == (2, 128)
    assert mask[0].all() and mask[1].sum() < 20


def test_query_matches_batch_encoding_and_ranks_sensibly(text_encoder):
    q = text_encoder.encode_query("heavy duty staples")
    assert q.shape == (384,) and not q.is_inference()
    torch.testing.assert_close(q, text_encoder.encode_texts(["heavy duty staples"])[0], atol=1e-5, rtol=0)
    scores = text_encoder.encode_texts(TEXTS) @ q
    assert scores.argmax().item() == 2  # the staples text
    with pytest.raises(ValueError, match="non-empty string, got ''"):
        text_encoder.encode_query("")


def test_bad_inputs(text_encoder):
    with pytest.raises(ValueError, match="got a single str"):
        text_encoder.encode_texts("gloves")
    with pytest.raises(ValueError, match="got int at position 1"):
        text_encoder.encode_texts(["gloves", 3])
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        text_encoder.encode_texts(["gloves"], batch_size=0)


def test_progress_bar(text_encoder, capsys):
    text_encoder.encode_texts(TEXTS, show_progress=True)
    assert "encoding texts" in capsys.readouterr().err


def test_model_id_and_threads(text_encoder, int8_encoder):
    assert text_encoder.model_id.startswith("all-MiniLM-L6-v2-") and text_encoder.model_id.endswith("-mean-len128-fp32-norm")
    assert int8_encoder.model_id == text_encoder.model_id.replace("-fp32-", "-int8-")
    assert torch.get_num_threads() == os.cpu_count()
    assert "all-MiniLM-L6-v2" in repr(text_encoder)


def test_int8_close_to_fp32(text_encoder, int8_encoder):
    assert any(isinstance(m, Int8Linear) for m in int8_encoder.model.modules())
    cos = (text_encoder.encode_texts(TEXTS) * int8_encoder.encode_texts(TEXTS)).sum(1)
    assert cos.min() >= 0.99
    q = int8_encoder.encode_query("gloves")  # one row: the tiny-input path of Int8Linear
    assert float(q @ text_encoder.encode_query("gloves")) >= 0.99


def test_bfloat16_close_to_fp32(text_encoder, bf16_encoder):
    assert bf16_encoder.model_id == text_encoder.model_id.replace("-fp32-", "-bf16-")
    vecs = bf16_encoder.encode_texts(TEXTS)
    assert vecs.dtype == torch.float32
    assert (text_encoder.encode_texts(TEXTS) * vecs).sum(1).min() >= 0.99
    with pytest.raises(ValueError, match="quantize=True runs int8 linears on float32 activations; got dtype='bfloat16'"):
        EncoderConfig(quantize=True, dtype="bfloat16")
    with pytest.raises(ValueError, match="dtype must be one of"):
        EncoderConfig(dtype="float16")


@pytest.mark.parametrize("rows", [1, 16, 17, 300])
def test_int8_linear_matches_fp32(rows):
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    x = torch.randn(rows, 64)
    y, yq = linear(x), Int8Linear(linear)(x)
    assert yq.shape == y.shape
    assert ((yq - y).norm() / y.norm()) < 0.02
    # per-row activation scale: a row's output does not depend on the rest of the batch
    torch.testing.assert_close(Int8Linear(linear)(x[:1]), yq[:1])


def test_missing_model_fails_offline_without_network(monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in tests")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(ValueError, match="offline \\(local_files_only=True"):
        TextEncoder(EncoderConfig(model_name_or_path="no-such-org/no-such-model"))
    with pytest.raises(ValueError, match="local_files_only"):
        TextEncoder(EncoderConfig(model_name_or_path="/nonexistent/model/dir"))
    assert attempts == []
