"""Warm start: copy a saved model's weights into a `FusionModel` freshly built on a grown graph.

The graph may have gained users, products, brands, categories and interactions since the model was saved.
Rows of tables indexed by entity (the KGEncoder's free embedding [num_entities, d], and any other table of
two or more dims whose leading dim is the number of entities) are matched on (node type, external id)
through the saved `entities.json` and the new layout (`fusion.features.entity_ids`); tables indexed by
product column ([n_items, ...]) through `items.json`. Entities and products the saved model never saw keep
their fresh initialisation. Every other parameter and buffer is copied as it is; its shape must match
(a different `gnn.dim`, `history_len` or text encoder is a config the weights cannot carry).

    model = FusionModel(config, index, item_entity)            # built on the new graph (fresh init)
    report = transfer_weights(model, "work/scientific/model", entity_ids(graph), item_ids)
    print(report)   # warm start from ...: User 8317 kept + 120 new, Product 4344 kept + 15 new, ...

The frozen text embeddings (text.pt [n_items, d_text]) follow the products too (`transfer_text`): only the new
products are encoded (a known product's text is taken to be unchanged), so a warm start on a catalog without
new products never loads the text encoder.

The relation attention logits [R] are matched only when the graph has the same number of relation types;
otherwise they restart at zero (uniform attention), and the report names them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import FusionConfig
from .model import FusionModel
from .recommender import ENTITIES_FILE

__all__ = ["WarmStartReport", "transfer_weights", "transfer_text", "entity_rows", "default_epochs", "WARM_LR_SCALE"]

_RESETTABLE = ("gnn.relation_logits",)  # shape follows the graph's relation types, not the config

# The default schedule, from a replay one step back from the test rows on Scientific (loo: warm start from a model
# of the training rows minus each user's last onto all training rows, scored on the validation rows; the full
# retrain there takes 6 epochs, NDCG@10 0.0974, the stale model 0.0503): 1 epoch at the saved lr (5e-3) gives
# 0.0962 (97% of the full retrain's gain), 2 epochs 0.0974 (100%); lr 2.5e-3 or 1e-3 over 1-4 epochs is no
# better (0.0950-0.0966), nor are batches of 4096 or 8192 (slower per epoch, 0.0961-0.0965).
WARM_LR_SCALE = 1.0


def default_epochs(best_epoch: int) -> int:
    """Warm-start epochs for a model whose from-scratch training stopped at `best_epoch`: ceil(best / 4), >= 1."""
    return max(1, -(-int(best_epoch) // 4))


@dataclass
class WarmStartReport:
    """What `transfer_weights` did. kept / new: per node type (and "items" for product columns), the rows
    copied from the saved model and the rows left at their fresh initialisation; dropped: saved rows the new
    graph no longer has; copied / row_matched / reset: state-dict keys."""

    source: str
    kept: dict[str, int] = field(default_factory=dict)
    new: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    copied: list[str] = field(default_factory=list)
    row_matched: list[str] = field(default_factory=list)
    reset: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"source": self.source, "kept": self.kept, "new": self.new, "dropped": self.dropped,
                "row_matched": self.row_matched, "reset": self.reset}

    def __str__(self) -> str:
        parts = [f"{t} {self.kept.get(t, 0):,} kept + {self.new.get(t, 0):,} new"
                 + (f" ({self.dropped[t]:,} gone)" if self.dropped.get(t) else "") for t in self.new]
        tail = f"; reset {', '.join(self.reset)}" if self.reset else ""
        return f"warm start from {self.source}: {', '.join(parts)}{tail}"


def entity_rows(old: dict[str, list[str]], new: dict[str, list[str]]
                ) -> tuple[np.ndarray, np.ndarray, dict, dict, dict]:
    """Match two entity layouts ({node type: ids in entity order}, types laid out in dict order) on
    (type, id). Returns (new_rows, old_rows) int64 [m] global indices of the matched entities, and per
    type the kept / new / dropped counts."""
    new_rows, old_rows, kept, fresh, dropped = [], [], {}, {}, {}
    old_off, o = {}, 0
    for t, ids in old.items():
        old_off[t], o = o, o + len(ids)
    n = 0
    for t, ids in new.items():
        before = pd.Index(old.get(t, []), dtype=object)
        if not before.is_unique:
            raise ValueError(f"{ENTITIES_FILE}: node type {t} lists an id twice")
        where = before.get_indexer(pd.Index(ids, dtype=object))
        hit = np.flatnonzero(where >= 0)
        new_rows.append(n + hit)
        old_rows.append(old_off.get(t, 0) + where[hit])
        kept[t], fresh[t], dropped[t] = len(hit), len(ids) - len(hit), len(before) - len(hit)
        n += len(ids)
    cat = lambda xs: np.concatenate(xs).astype(np.int64) if xs else np.zeros(0, np.int64)  # noqa: E731
    return cat(new_rows), cat(old_rows), kept, fresh, dropped


def _load_saved(model_dir: Path) -> tuple[FusionConfig, dict[str, torch.Tensor], dict[str, list[str]], list[str]]:
    if not (model_dir / "config.json").exists() or not (model_dir / "model.pt").exists():
        raise FileNotFoundError(f"{model_dir} is not a fusion model directory (no config.json / model.pt)")
    if not (model_dir / ENTITIES_FILE).exists():
        raise FileNotFoundError(f"{model_dir} has no {ENTITIES_FILE}: it was saved before warm starts existed, so "
                                "its embedding rows cannot be matched to entities; retrain it once (scripts/train.py) "
                                "and warm-start from that model")
    entities = json.loads((model_dir / ENTITIES_FILE).read_text())
    items = json.loads((model_dir / "items.json").read_text())
    state = torch.load(model_dir / "model.pt", map_location="cpu")
    return FusionConfig.load(model_dir), state, entities, items


def _check_config(saved: FusionConfig, config: FusionConfig, model_dir: Path) -> None:
    """The settings that fix weight shapes must agree (ValueError naming the first that differs)."""
    for name, a, b in (("gnn.dim", saved.gnn.dim, config.gnn.dim),
                       ("history_len", saved.history_len, config.history_len),
                       ("use_text", saved.use_text, config.use_text),
                       ("history_transform", saved.history_transform, config.history_transform),
                       ("encoder", saved.encoder, config.encoder)):
        if a != b:
            raise ValueError(f"{model_dir} was trained with {name}={a!r}, the model to warm-start has {name}={b!r}: "
                             f"the weights do not carry over; warm-start with the saved config (or train from scratch)")


@torch.no_grad()
def transfer_weights(model: FusionModel, model_dir: str | Path, entities: dict[str, list[str]],
                     item_ids: list[str]) -> WarmStartReport:
    """Copy the weights saved in `model_dir` into `model` (in place) and say what was kept.

    Args:
        model: a `FusionModel` built on the new graph (its fresh initialisation stays where nothing matches).
        model_dir: a directory written by `FusionRecommender.save` (config.json, model.pt, items.json,
            entities.json).
        entities: the new model's entity layout, {node type: external ids in entity order}
            (`fusion.features.entity_ids(graph, config.external_products)`).
        item_ids: the product id of each of the new model's item columns.
    """
    d = Path(model_dir)
    saved_cfg, saved, old_entities, old_items = _load_saved(d)
    _check_config(saved_cfg, model.config, d)
    n_old, n_new = sum(len(v) for v in old_entities.values()), sum(len(v) for v in entities.values())
    if n_new != model.gnn.index.total:
        raise ValueError(f"the entity layout given lists {n_new} entities, the model has {model.gnn.index.total}")
    emb = saved.get("gnn.embedding.weight")
    if emb is not None and emb.shape[0] != n_old:
        raise ValueError(f"{d / ENTITIES_FILE} lists {n_old} entities but {d / 'model.pt'} has {emb.shape[0]} "
                         "embedding rows: the files are from different runs")
    e_new, e_old, kept, fresh, dropped = entity_rows(old_entities, entities)
    i_new, i_old, ik, inew, idrop = entity_rows({"items": [str(x) for x in old_items]},
                                                {"items": [str(x) for x in item_ids]})
    report = WarmStartReport(str(d), {**kept, "items": ik["items"]}, {**fresh, "items": inew["items"]},
                             {**dropped, "items": idrop["items"]})
    target = model.state_dict()
    for key, cur in target.items():
        old = saved.get(key)
        if old is None:
            continue
        rows = None
        if cur.dim() >= 2 and old.shape[1:] == cur.shape[1:]:
            if old.shape[0] == n_old and cur.shape[0] == n_new:
                rows = (e_new, e_old)
            elif old.shape[0] == len(old_items) and cur.shape[0] == len(item_ids):
                rows = (i_new, i_old)
        if rows is not None:
            cur[torch.from_numpy(rows[0])] = old[torch.from_numpy(rows[1])].to(cur.dtype)
            report.row_matched.append(key)
        elif old.shape == cur.shape:
            cur.copy_(old)
            report.copied.append(key)
        elif key in _RESETTABLE:
            report.reset.append(key)  # left at its fresh value
        else:
            raise ValueError(f"{d / 'model.pt'}: {key} has shape {tuple(old.shape)}, the model built on this graph "
                             f"{tuple(cur.shape)}: the saved config differs in shape; train from scratch")
    return report


def transfer_text(model_dir: str | Path, item_ids: list[str], encode) -> tuple[torch.Tensor | None, int]:
    """Text embeddings [len(item_ids), d_text] for the new item columns: the saved rows (text.pt, matched by
    product id through items.json) and `encode(positions)` -> [m, d_text] for the m products the saved model
    did not have. Returns (embeddings, m); (None, len(item_ids)) when the directory has no text.pt."""
    d = Path(model_dir)
    if not (d / "text.pt").exists():
        return None, len(item_ids)
    old = torch.load(d / "text.pt", map_location="cpu")
    old_items = [str(x) for x in json.loads((d / "items.json").read_text())]
    if old.shape[0] != len(old_items):
        raise ValueError(f"{d / 'text.pt'} has {old.shape[0]} rows, {d / 'items.json'} {len(old_items)} products")
    where = pd.Index(old_items, dtype=object).get_indexer(pd.Index([str(x) for x in item_ids], dtype=object))
    out = torch.empty(len(item_ids), old.shape[1], dtype=old.dtype)
    hit = torch.from_numpy(np.flatnonzero(where >= 0))
    out[hit] = old[torch.from_numpy(where[where >= 0])]
    missing = np.flatnonzero(where < 0)
    if len(missing):
        new = torch.as_tensor(encode(missing), dtype=old.dtype)
        if new.shape != (len(missing), old.shape[1]):
            raise ValueError(f"the text encoder gave {tuple(new.shape)} for {len(missing)} new products, the saved "
                             f"embeddings have {old.shape[1]} dims: warm-start with the saved encoder")
        out[torch.from_numpy(missing)] = new
    return out, len(missing)
