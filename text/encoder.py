"""BERT-family sentence encoder for product texts and search queries (offline, CPU-first).

A text becomes ``normalize(pool(BERT(tokens)))``: with mean pooling the vector is

.. math::
    \\mathbf{e} = \\frac{\\sum_t m_t \\mathbf{h}_t}{\\sum_t m_t}, \\qquad
    \\hat{\\mathbf{e}} = \\mathbf{e} / \\lVert \\mathbf{e} \\rVert_2

where :math:`\\mathbf{h}_t` is the last hidden state of token :math:`t` and :math:`m_t` the
attention mask. Catalog encoding tokenizes every text once with the fast tokenizer, sorts
by exact token count (longest first) and pads each batch only to its own longest text; a
batch with no padding at all runs without an attention mask, so SDPA takes its unmasked
kernel. ``transformers`` and ``torch`` are imported lazily so ``import text`` stays cheap.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .config import EncoderConfig

if TYPE_CHECKING:
    import torch

__all__ = ["TextEncoder", "pool", "mean_pool", "cls_pool"]

BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"


def mean_pool(hidden: "torch.Tensor", attention_mask: "torch.Tensor | None") -> "torch.Tensor":
    """Masked mean over tokens: ``hidden [b, s, d]``, ``attention_mask [b, s]`` -> ``[b, d]``."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def cls_pool(hidden: "torch.Tensor", attention_mask: "torch.Tensor | None" = None) -> "torch.Tensor":
    """First-token state: ``hidden [b, s, d]`` -> ``[b, d]``."""
    return hidden[:, 0]


def pool(hidden: "torch.Tensor", attention_mask: "torch.Tensor | None", pooling: str) -> "torch.Tensor":
    """``mean_pool`` or ``cls_pool`` by name."""
    if pooling == "mean":
        return mean_pool(hidden, attention_mask)
    if pooling == "cls":
        return cls_pool(hidden, attention_mask)
    raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")


def _load_offline(path: str):
    """AutoTokenizer + AutoModel from local files only; never touches the network."""
    from transformers import AutoModel, AutoTokenizer

    hint = (
        f"could not load text model {path!r} offline (local_files_only=True; the network is never "
        "tried): expected a local model directory or a model name already in the local Hugging Face "
        "cache; leave EncoderConfig.model_name_or_path=None for the bundled all-MiniLM-L6-v2"
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(f"text model {path!r} has no fast (Rust) tokenizer; tokenizer.json is required")
        try:
            model = AutoModel.from_pretrained(path, local_files_only=True, attn_implementation="sdpa")
        except ValueError as exc:  # architecture without SDPA support
            if "sdpa" not in str(exc).lower():
                raise
            model = AutoModel.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, EnvironmentError) as exc:
        if isinstance(exc, ValueError) and "fast (Rust) tokenizer" in str(exc):
            raise
        raise ValueError(f"{hint}. Cause: {exc}") from exc
    return tokenizer, model.eval()


def _fingerprint(model) -> str:
    """Short hash of a model's weights (shapes, sums and a strided sample of every tensor)."""
    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            flat = tensor.detach().reshape(-1).float()
            digest.update(f"{name}{tuple(tensor.shape)}{float(flat.sum()):.6e}".encode())
            digest.update(flat[:: max(1, flat.numel() // 257)].numpy().tobytes())
    return digest.hexdigest()[:12]


class TextEncoder:
    """Encodes product texts and queries into ``[d]`` float32 vectors (``d`` = hidden size).

    Args:
        config: :class:`EncoderConfig` (default: bundled all-MiniLM-L6-v2, mean pooling,
            ``max_length=128``, normalised, fp32, every core).

    Example::

        enc = TextEncoder()
        vecs = enc.encode_texts(["Stanley staples. Brand: Stanley."])   # [1, 384]
        q = enc.encode_query("heavy duty staples")                      # [384]
    """

    def __init__(self, config: EncoderConfig | None = None) -> None:
        import torch

        self.config = config if config is not None else EncoderConfig()
        torch.set_num_threads(self.config.resolved_num_threads)
        path = self.config.resolved_model_path
        self.tokenizer, model = _load_offline(path)
        for param in model.parameters():
            param.requires_grad_(False)
        self._weights_hash = _fingerprint(model)
        if getattr(model, "pooler", None) is not None:
            model.pooler = None  # BERT's pooler output is never used; skip its matmul
        if self.config.quantize:
            model = _quantize(model)
        elif self.config.dtype == "bfloat16":
            model = model.to(torch.bfloat16)
        self.model = model
        self._name = BUNDLED_MODEL_NAME if self.config.model_name_or_path is None else path
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """Output dimension ``d``."""
        return int(self.model.config.hidden_size)

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def model_id(self) -> str:
        """Stable id of everything that changes the vectors; the embedding cache is keyed by it."""
        c = self.config
        name = "_".join(p for p in str(self._name).replace("\\", "/").split("/")[-2:] if p)
        precision = "int8" if c.quantize else {"float32": "fp32", "bfloat16": "bf16"}[c.dtype]
        norm = "-norm" if c.normalize else ""
        return f"{name}-{self._weights_hash}-{c.pooling}-len{c.max_length}-{precision}{norm}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, dim={self.dim}, batch_size={self.config.batch_size})"

    # ------------------------------------------------------------------ tokenization
    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        texts = _check_texts(texts)
        if not texts:
            return []
        out = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.config.max_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return out["input_ids"]

    def _pad(self, ids: Sequence[Sequence[int]], lengths: np.ndarray) -> tuple["torch.Tensor", "torch.Tensor"]:
        import torch

        width = int(lengths.max())
        input_ids = np.full((len(ids), width), self._pad_id, dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
        mask = np.arange(width)[None, :] < lengths[:, None]
        return torch.from_numpy(input_ids), torch.from_numpy(mask.astype(np.int64))

    def tokenize(self, texts: Sequence[str]) -> tuple["torch.Tensor", "torch.Tensor"]:
        """Padded ``input_ids [b, s]`` and ``attention_mask [b, s]`` (s = longest text, <= max_length)."""
        ids = self._token_ids(texts)
        if not ids:
            raise ValueError("tokenize expected at least one text, got an empty list")
        return self._pad(ids, np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)))

    # ------------------------------------------------------------------ forward
    def embed_tokens(self, input_ids: "torch.Tensor", attention_mask: "torch.Tensor", model=None) -> "torch.Tensor":
        """``[b, s]`` tokens -> pooled (and, if configured, normalised) ``[b, d]``.

        Runs under whatever grad mode the caller set; ``model`` overrides ``self.model``
        (the trainable tower passes its fine-tuned copy).
        """
        import torch.nn.functional as F

        model = self.model if model is None else model
        # No padding in the batch: drop the mask so SDPA uses its unmasked (faster) kernel.
        unpadded = bool(attention_mask.all())
        hidden = model(input_ids=input_ids, attention_mask=None if unpadded else attention_mask).last_hidden_state
        vectors = pool(hidden.float(), None if unpadded else attention_mask, self.config.pooling)
        if self.config.normalize:
            vectors = F.normalize(vectors, p=2.0, dim=-1)
        return vectors

    def encode_texts(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        show_progress: bool = False,
    ) -> "torch.Tensor":
        """Encode many texts: ``list[str]`` of length ``n`` -> float32 ``[n, d]`` in input order.

        Args:
            texts: the texts (e.g. :func:`text.product_text` of a catalog).
            batch_size: texts per forward pass (default ``config.batch_size``).
            show_progress: show a tqdm progress bar counting texts.
        """
        import torch
        from tqdm.auto import tqdm

        batch_size = self.config.batch_size if batch_size is None else batch_size
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        ids = self._token_ids(texts)
        n = len(ids)
        out = torch.empty(n, self.dim, dtype=torch.float32)
        if n == 0:
            return out
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=n)
        order = np.argsort(-lengths, kind="stable")  # longest first: peak memory shows up at once
        with tqdm(total=n, desc="encoding texts", unit="text", disable=not show_progress) as bar:
            with torch.inference_mode():
                for start in range(0, n, batch_size):
                    rows = order[start : start + batch_size]
                    input_ids, mask = self._pad([ids[i] for i in rows], lengths[rows])
                    out[torch.from_numpy(rows)] = self.embed_tokens(input_ids, mask)
                    bar.update(len(rows))
        return out

    def encode_query(self, query: str) -> "torch.Tensor":
        """Encode one search query -> float32 ``[d]`` (one forward pass, no padding)."""
        import torch

        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"encode_query expected a non-empty string, got {query!r}")
        ids = self._token_ids([query])[0]
        input_ids = torch.tensor([ids], dtype=torch.long)
        with torch.inference_mode():
            vector = self.embed_tokens(input_ids, torch.ones_like(input_ids))[0]
        return vector.clone()  # a normal tensor, usable outside inference mode


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise ValueError("expected a list of strings, got a single str; wrap it in a list or use encode_query")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"expected a list of strings, got {type(t).__name__} at position {i}: {t!r}")
    return texts


def _quantize(model):
    """int8 W8A8 linears with per-token activation scales (see :mod:`text.quantize`)."""
    from .quantize import quantize_linears

    return quantize_linears(model)
