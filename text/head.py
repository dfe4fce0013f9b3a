"""The trainable text tower used by the fusion layer's text-similarity loss.

Default (``train_top_n_layers=0``): the encoder is frozen and only a :class:`ProjectionHead`
is trained, on precomputed catalog embeddings (cheap: no transformer in the training loop).
With ``train_top_n_layers=N > 0`` the tower holds its own copy of the transformer whose top
``N`` layers get gradients (the shared inference encoder, and so the embedding cache, are
never modified); texts then go through the transformer at every step.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .config import EncoderConfig
from .encoder import TextEncoder

__all__ = ["HeadConfig", "ProjectionHead", "TrainableTextTower"]

HEAD_CONFIG_NAME = "text_tower_config.json"
HEAD_WEIGHTS_NAME = "text_tower.pt"


@dataclass
class HeadConfig:
    """Shape of the projection head and how much of the encoder trains.

    Args:
        in_dim: encoder dimension ``d`` (384 for all-MiniLM-L6-v2).
        out_dim: output dimension (the fusion layer's embedding size).
        hidden_dim: ``None`` (default) for one linear map, else a 2-layer MLP with GELU.
        dropout: dropout on the input (default 0.0).
        normalize: L2-normalise the output (default ``True``; cosine-based losses want it).
        train_top_n_layers: transformer layers (from the top) that are fine-tuned (default 0).
    """

    in_dim: int = 384
    out_dim: int = 128
    hidden_dim: int | None = None
    dropout: float = 0.0
    normalize: bool = True
    train_top_n_layers: int = 0

    def __post_init__(self) -> None:
        for name in ("in_dim", "out_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"HeadConfig.{name} must be positive, got {getattr(self, name)}")
        if self.train_top_n_layers < 0:
            raise ValueError(f"HeadConfig.train_top_n_layers must be >= 0, got {self.train_top_n_layers}")


class ProjectionHead(nn.Module):
    """Maps encoder vectors ``[b, in_dim]`` to ``[b, out_dim]``: ``normalize(W2 gelu(W1 x))`` or ``normalize(W x)``.

    Args:
        config: :class:`HeadConfig`.
    """

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.dropout = nn.Dropout(c.dropout)
        if c.hidden_dim is None:
            self.net: nn.Module = nn.Linear(c.in_dim, c.out_dim)
        else:
            self.net = nn.Sequential(nn.Linear(c.in_dim, c.hidden_dim), nn.GELU(), nn.Linear(c.hidden_dim, c.out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.config.in_dim:
            raise ValueError(f"ProjectionHead expected [b, {self.config.in_dim}] input, got {tuple(x.shape)}")
        y = self.net(self.dropout(x))
        return F.normalize(y, p=2.0, dim=-1) if self.config.normalize else y

    def __repr__(self) -> str:
        c = self.config
        return f"{type(self).__name__}({c.in_dim}, {c.out_dim}, hidden_dim={c.hidden_dim}, normalize={c.normalize})"


def _transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks of a BERT-family model (BERT, RoBERTa, DistilBERT, ...)."""
    for path in ("encoder.layer", "transformer.layer", "layers", "encoder.layers"):
        try:
            module = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(module, nn.ModuleList):
            return module
    raise ValueError(f"cannot find the transformer layers of {type(model).__name__}; expected e.g. model.encoder.layer")


class TrainableTextTower(nn.Module):
    """``texts -> [b, out_dim]`` (or precomputed rows -> ``[b, out_dim]``) for the text-similarity loss.

    Args:
        encoder: the loaded :class:`TextEncoder` (tokenizer, pooling, max_length); must be fp32.
        head: the :class:`ProjectionHead`; ``head.config.train_top_n_layers`` says how many
            top transformer layers are fine-tuned.
        embeddings: optional precomputed catalog vectors ``[n, d]`` (frozen mode only); then
            ``forward`` also accepts a LongTensor of row indices.

    ``forward`` accepts a list of texts, an index tensor ``[b]`` (into ``embeddings``) or
    encoder vectors ``[b, d]``; the last two are only valid in frozen mode, where the
    encoder output cannot change.
    """

    def __init__(self, encoder: TextEncoder, head: ProjectionHead, embeddings: torch.Tensor | None = None) -> None:
        super().__init__()
        if head.config.in_dim != encoder.dim:
            raise ValueError(f"ProjectionHead in_dim={head.config.in_dim} does not match encoder dim={encoder.dim}")
        self.encoder = encoder
        self.head = head
        self.num_trainable_layers = head.config.train_top_n_layers
        n = self.num_trainable_layers
        if n > 0:
            if encoder.config.quantize or encoder.config.dtype != "float32":
                raise ValueError(
                    "fine-tuning needs an fp32 encoder; got EncoderConfig("
                    f"quantize={encoder.config.quantize}, dtype={encoder.config.dtype!r})"
                )
            if embeddings is not None:
                raise ValueError("precomputed embeddings are stale once encoder layers train; pass embeddings=None")
            self.transformer = copy.deepcopy(encoder.model)  # the shared encoder stays untouched
            layers = _transformer_layers(self.transformer)
            if n > len(layers):
                raise ValueError(f"train_top_n_layers={n} but the encoder has only {len(layers)} layers")
            for param in self.transformer.parameters():
                param.requires_grad_(False)
            for layer in layers[len(layers) - n :]:
                for param in layer.parameters():
                    param.requires_grad_(True)
        else:
            self.transformer = None
        if embeddings is not None:
            if embeddings.dim() != 2 or embeddings.shape[1] != encoder.dim:
                raise ValueError(f"embeddings must be [n, {encoder.dim}], got {tuple(embeddings.shape)}")
            self.register_buffer("embeddings", embeddings.detach().float().clone(), persistent=False)
        else:
            self.embeddings = None

    def train(self, mode: bool = True) -> "TrainableTextTower":
        super().train(mode)
        if self.transformer is not None:  # frozen lower layers stay deterministic (no dropout)
            self.transformer.eval()
            layers = _transformer_layers(self.transformer)
            for layer in layers[len(layers) - self.num_trainable_layers :]:
                layer.train(mode)
        return self

    def trainable_layer_indices(self) -> list[int]:
        """Indices of transformer layers with trainable parameters."""
        if self.transformer is None:
            return []
        layers = _transformer_layers(self.transformer)
        return [i for i, layer in enumerate(layers) if any(p.requires_grad for p in layer.parameters())]

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Encoder vectors ``[b, d]``; differentiable w.r.t. the fine-tuned layers when N > 0."""
        input_ids, mask = self.encoder.tokenize(texts)
        if self.transformer is None:
            with torch.no_grad():
                return self.encoder.embed_tokens(input_ids, mask)
        return self.encoder.embed_tokens(input_ids, mask, model=self.transformer)

    def forward(self, batch: Sequence[str] | torch.Tensor) -> torch.Tensor:
        if isinstance(batch, torch.Tensor):
            if self.transformer is not None:
                raise ValueError("with fine-tuned encoder layers, forward expects a list of texts, got a tensor")
            if batch.dtype in (torch.int64, torch.int32):
                if self.embeddings is None:
                    raise ValueError("forward got row indices but the tower has no precomputed embeddings")
                vectors = self.embeddings[batch]
            else:
                vectors = batch
        else:
            vectors = self.encode(batch)
        return self.head(vectors)

    def save(self, directory: str | Path) -> Path:
        """Write the head config, encoder config and trainable weights into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"head": asdict(self.head.config), "encoder": self.encoder.config.to_dict(), "encoder_model_id": self.encoder.model_id}
        (directory / HEAD_CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        state = {"head": self.head.state_dict()}
        if self.transformer is not None:
            state["transformer"] = {k: v for k, v in self.transformer.state_dict().items() if _in_trainable(self, k)}
        torch.save(state, directory / HEAD_WEIGHTS_NAME)
        return directory

    @classmethod
    def load(cls, directory: str | Path, encoder: TextEncoder | None = None) -> "TrainableTextTower":
        """Rebuild a saved tower; loads its encoder from the saved config unless one is given."""
        directory = Path(directory)
        path = directory / HEAD_CONFIG_NAME
        if not path.is_file():
            raise ValueError(f"expected a text tower config at {path}, found no such file")
        config = json.loads(path.read_text())
        encoder = encoder if encoder is not None else TextEncoder(EncoderConfig.from_dict(config["encoder"]))
        tower = cls(encoder, ProjectionHead(HeadConfig(**config["head"])))
        state = torch.load(directory / HEAD_WEIGHTS_NAME, map_location="cpu", weights_only=True)
        tower.head.load_state_dict(state["head"])
        if tower.transformer is not None:
            tower.transformer.load_state_dict(state["transformer"], strict=False)
        return tower


def _in_trainable(tower: TrainableTextTower, key: str) -> bool:
    layers = _transformer_layers(tower.transformer)
    prefix = next(name for name, module in tower.transformer.named_modules() if module is layers)
    first = len(layers) - tower.num_trainable_layers
    return any(key.startswith(f"{prefix}.{i}.") for i in range(first, len(layers)))
