"""The one training loop of the fusion model: seeded, early stopping on validation NDCG@10, resumable
checkpoints, progress bar, loss/validation curves as PNG."""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch
from tqdm.auto import tqdm

from . import distributed
from .config import FusionConfig
from .data import Histories, PathSampler
from .metrics import ndcg_at_k, top_k
from .losses import bpr_loss, info_nce_loss, kg_path_loss, l2_regularization, softmax_preference_loss
from .model import FusionModel

__all__ = ["TrainState", "train_model", "evaluate_ndcg", "validation_users", "score_users", "plot_curves"]


@dataclass
class TrainState:
    """What the loop records: per-epoch mean losses, validation NDCG@10, best epoch, wall time."""

    epoch: int = 0
    best_epoch: int = 0
    best_ndcg: float = -1.0
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


@torch.no_grad()
def score_users(model: FusionModel, text: torch.Tensor | None, hist: Histories, users: np.ndarray,
                batch: int = 2048, cols: np.ndarray | None = None,
                embedded: tuple[torch.Tensor, torch.Tensor] | None = None) -> np.ndarray:
    """Scores [len(users), n_items] (or only the item columns `cols`) with each user's full history (eval mode);
    `embedded` = (entity embeddings, fused item vectors) the caller already computed in eval mode, so that the
    graph is not propagated again."""
    was = model.training
    model.eval()
    if embedded is None:
        ent = model.entity_embeddings()
        items = model.item_vectors(ent, text)
    else:
        ent, items = embedded
    targets = items if cols is None else items[torch.as_tensor(cols, dtype=torch.long)]
    out = []
    for s in range(0, len(users), batch):
        u = users[s:s + batch]
        h, m = hist.last(u, model.config.history_len)
        out.append((model.user_vectors(ent, items, torch.from_numpy(u), h, m) @ targets.T).numpy())
    model.train(was)
    return np.concatenate(out) if out else np.zeros((0, targets.shape[0]), np.float32)


_SCORE_CELLS = 1 << 26  # users x products scored at once in validation (256 MiB of float32)


def validation_users(valid: sp.csr_matrix, max_users: int = 10000, seed: int = 0) -> np.ndarray:
    """Users with validation items: all of them, or a fixed sample of `max_users` (sorted)."""
    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    return users


def evaluate_ndcg(model: FusionModel, text, hist: Histories, seen: sp.csr_matrix, valid: sp.csr_matrix,
                  k: int = 10, max_users: int = 10000, seed: int = 0) -> float:
    """Validation NDCG@k over users with validation items (a fixed sample of at most `max_users`, so that
    early stopping stays cheap on large catalogs); 0.0 when no user has a validation item."""
    users = validation_users(valid, max_users, seed)
    if not len(users):
        return 0.0
    k = min(k, valid.shape[1])  # tiny catalogs
    tops = []
    step = max(1, min(4096, _SCORE_CELLS // max(valid.shape[1], 1)))  # 4096 users x 434k products = 7 GB
    for s in range(0, len(users), step):
        u = users[s:s + step]
        tops.append(top_k(score_users(model, text, hist, u), k, seen[u]))
    return ndcg_at_k(np.concatenate(tops), valid[users], k)


def _examples(hist: Histories, need_history: bool, as_set: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every (user, flat position) whose item is a target; without a user embedding only those with a history
    (an earlier item, or with `as_set` any other item)."""
    users = np.repeat(np.arange(hist.num_users), hist.lengths())
    pos = np.arange(len(hist.items))
    if need_history:
        keep = hist.lengths()[users] > 1 if as_set else pos > hist.indptr[users]
        users, pos = users[keep], pos[keep]
    return users, pos


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# chosen and fitted after the network is trained (`FusionRecommender`): a checkpoint serves any of their values
_AFTER_TRAINING = ("item_item", "cold_mix")


def _resume_key(cfg: FusionConfig | dict) -> dict:
    """The config a checkpoint must match to be resumed: all of it but the epoch count and time budget (the
    final stage sets the epochs; a longer budget may finish a run that an earlier one stopped) and the terms
    fitted after training (`_AFTER_TRAINING`), so that re-running with another of those redoes only them."""
    d = dict(cfg.to_dict() if isinstance(cfg, FusionConfig) else cfg)
    d["train"] = {k: v for k, v in d["train"].items() if k not in ("epochs", "max_minutes")}
    for k in _AFTER_TRAINING:
        d.pop(k, None)
    return d


def _check_resumable(saved: dict, cfg: FusionConfig, path: Path) -> None:
    """ValueError when checkpoint `path` was written by a run with another config: resuming it would mix two
    models (or fail on the first differing weight shape)."""
    old = saved.get("config")
    if old is None:
        return  # written before checkpoints held their config: the weights' shapes are the only check
    old, new = _resume_key(old), _resume_key(cfg)  # a checkpoint of an earlier version may hold them
    if old != new:
        diff = sorted(_flat(old).items() ^ _flat(new).items())
        keys = sorted({k for k, _ in diff})
        raise ValueError(f"{path} was written by a training run with a different config ({', '.join(keys)} "
                         f"differ): delete it to start afresh, or train into another --out")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v)
    return out


def _neighbor_sampler(model: FusionModel):
    """The neighbour-sampled view of `model.gnn` for `train.sampler == "neighbor"`; a clear error (what to
    install) where torch_geometric has no sampler backend: never a silent fall-back to full batch."""
    from gnn import sampling

    reason = sampling.sampling_available()
    if reason is not None:
        raise RuntimeError(f"train.sampler='neighbor' needs neighbour sampling, which is not available here: "
                           f"{reason}. Or train with train.sampler='full'.")
    sampler = sampling.NeighborSampledEncoder(model.gnn, model.config.train.num_neighbors)
    sampler.hops()  # num_neighbors vs the number of layers: fail before the first epoch
    return sampler


def _sampled_batch(model: FusionModel, sampler, text: torch.Tensor | None, users: torch.Tensor,
                   cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Graph embeddings of one batch from neighbour-sampled subgraphs: the batch's users and the product
    columns `cols` its losses read are the seeds. Returns `entities` (rows of the batch's users filled, and
    only as many rows as the largest user entity needs) and `items` [n_items, d] (rows `cols` filled, others
    zero and never read), shaped like what `entity_embeddings` / `item_vectors` give the full-batch path."""
    item_ent = model.item_entity[cols]
    user_ent = model.user_offset + users.long() if model.config.use_user_embedding else users[:0].long()
    seeds, inverse = torch.unique(torch.cat([item_ent, user_ent]), return_inverse=True)
    emb = sampler(seeds, model.content_only_entities())
    d = emb.shape[1]
    fused = model.fuse(emb[inverse[:len(cols)]], text[cols] if text is not None else None)
    items = torch.zeros(len(model.item_entity), d, dtype=emb.dtype).index_put((cols,), fused)
    entities = torch.zeros(int(user_ent.max()) + 1 if len(user_ent) else 0, d, dtype=emb.dtype)
    entities = entities.index_put((user_ent,), emb[inverse[len(cols):]])
    return entities, items


def _draw_batch(cfg: FusionConfig, hist: Histories, paths: PathSampler, rng: np.random.Generator, b: np.ndarray,
                users_all: np.ndarray, pos_all: np.ndarray, n_items: int, use_text: bool) -> dict:
    """One batch's examples and random draws, in the same order as always (so a seed gives the same run):
    users/positions, target [B], history/mask [B, L], and the negatives each loss needs."""
    lc = cfg.loss
    u_np, p_np = users_all[b], pos_all[b]
    target = torch.from_numpy(hist.items[p_np])
    if cfg.history_order == "set":
        h, m = hist.others(p_np, u_np, cfg.history_len)
    else:
        h, m = hist.window(p_np, u_np, cfg.history_len)
    # the batch's random draws first, so that the sampled path knows which products the losses read
    neg = cand = negs = ends = ok = corrupt = None
    if lc.preference > 0:
        if lc.preference_kind == "bpr":
            neg = torch.from_numpy(rng.integers(0, n_items, len(b)))
        elif lc.num_negatives > 0:
            # sampled softmax: the batch's positives and N shared uniform negatives as candidates
            cand = torch.cat([target.unique(), torch.from_numpy(rng.integers(0, n_items, lc.num_negatives))])
    if use_text and lc.text > 0:
        negs = torch.from_numpy(rng.integers(0, n_items, lc.text_negatives))
    if lc.kg_path > 0 and paths.groups:
        ends, ok = paths.sample(h[:, -1].numpy(), rng)
        ok &= m[:, -1].numpy()
        if ok.any():
            corrupt = np.zeros(len(b), dtype=np.int64)  # one corrupted end per row with a path (others unused)
            corrupt[ok] = rng.integers(0, n_items, int(ok.sum()))
        else:
            ends = ok = None
    return {"u_np": u_np, "users": torch.from_numpy(u_np), "target": target, "h": h, "m": m, "neg": neg,
            "cand": cand, "negs": negs, "ends": ends, "ok": ok, "corrupt": corrupt}


def _shard(batch: dict, r: int, world: int) -> dict:
    """Rank r's share of a batch: every world-th example from r; shared draws (candidates, text negatives)
    stay whole."""
    out = dict(batch)
    for k in ("u_np", "users", "target", "h", "m", "neg", "ends", "ok", "corrupt"):
        if batch[k] is not None:
            out[k] = batch[k][r::world]
    if out["cand"] is not None:  # the positives first, as the loss expects: rebuild from this shard's targets
        n_pos = len(batch["target"].unique())
        out["cand"] = torch.cat([out["target"].unique(), batch["cand"][n_pos:]])
    if out["ok"] is not None and not out["ok"].any():
        out["ends"] = out["ok"] = out["corrupt"] = None
    return out


def _kg_path_softmax(user: torch.Tensor, items: torch.Tensor, ends: torch.Tensor, target: torch.Tensor,
                     cand: torch.Tensor | None, seen: sp.csr_matrix | None, users: np.ndarray) -> torch.Tensor:
    """The KG path loss as a softmax: each path end [P] ranked for its user [P, d] among the preference loss's
    candidates (its shared uniform negatives, `cand` after the batch's positives) or, without them, among
    every product [n_items, d]. With `seen`, the users' own training products [P rows of users] are left out
    of the denominator, as in the preference loss."""
    if cand is None:
        known = None if seen is None else torch.from_numpy(seen[users].toarray() > 0)
        return softmax_preference_loss(user @ items.T, ends, known)
    pool_pos = ends.unique()
    pool = torch.cat([pool_pos, cand[len(target.unique()):]])
    known = None if seen is None else torch.from_numpy(seen[users][:, pool.numpy()].toarray() > 0)
    return softmax_preference_loss(user @ items[pool].T, torch.searchsorted(pool_pos, ends), known)


class BatchLoss(torch.nn.Module):
    """The weighted sum of the losses for one batch (`_draw_batch`): a module, so that DistributedDataParallel
    can wrap it. forward(batch) -> (loss, {name: part})."""

    def __init__(self, model: FusionModel, text: torch.Tensor | None, seen: sp.csr_matrix, sampled=None) -> None:
        super().__init__()
        self.model = model
        self.text = text
        self.seen = seen
        self.sampled = sampled

    def forward(self, batch: dict):
        model, text, seen = self.model, self.text, self.seen
        lc = model.config.loss
        n_items = model.item_entity.shape[0]
        u_np, users, target, h, m = batch["u_np"], batch["users"], batch["target"], batch["h"], batch["m"]
        neg, cand, negs, ends, ok, corrupt = (batch[k] for k in ("neg", "cand", "negs", "ends", "ok", "corrupt"))
        if self.sampled is None:
            ent = model.entity_embeddings()
            items = model.item_vectors(ent, text)
        else:
            # a softmax with no sampled candidates reads every product (the KG path's too, when it is one)
            full_softmax = cand is None and ((lc.preference > 0 and neg is None)
                                             or (ok is not None and lc.kg_path_kind == "softmax"))
            read = [target, h[m]] + [t for t in (neg, cand, negs) if t is not None]
            if ok is not None:
                read += [torch.from_numpy(ends[ok]), torch.from_numpy(corrupt[ok])]
            cols = torch.arange(n_items) if full_softmax else torch.cat(read).unique()
            ent, items = _sampled_batch(model, self.sampled, text, users, cols)
        U = model.user_vectors(ent, items, users, h, m)
        parts: dict[str, torch.Tensor] = {}
        if lc.preference > 0:
            if neg is not None:
                parts["preference"] = bpr_loss((U * items[target]).sum(-1), (U * items[neg]).sum(-1))
            elif cand is not None:
                col = torch.searchsorted(cand[: len(target.unique())], target)
                known = None
                if lc.mask_known:
                    known = torch.from_numpy(seen[u_np][:, cand.numpy()].toarray() > 0)
                parts["preference"] = softmax_preference_loss(U @ items[cand].T, col, known)
            else:
                known = None
                if lc.mask_known:
                    known = torch.from_numpy(seen[u_np].toarray() > 0)
                parts["preference"] = softmax_preference_loss(U @ items.T, target, known)
        if negs is not None:
            negv = items[negs]
            q_item = model.query_vectors(text[target])
            loss_t = info_nce_loss(q_item, items[target], negv, lc.temperature)
            has = m.any(dim=1)
            if has.any():
                w = m[has].float()
                hist_text = (text[h[has]] * w[..., None]).sum(1) / w.sum(1, keepdim=True)
                loss_t = 0.5 * (loss_t + info_nce_loss(model.query_vectors(hist_text), items[target[has]],
                                                       negv, lc.temperature))
            parts["text"] = loss_t
        if ok is not None:
            sel = np.flatnonzero(ok)
            if lc.kg_path_kind == "softmax":
                parts["kg_path"] = _kg_path_softmax(U[torch.from_numpy(sel)], items, torch.from_numpy(ends[sel]),
                                                    target, cand, seen if lc.mask_known else None, u_np[sel])
            else:
                parts["kg_path"] = kg_path_loss(U[torch.from_numpy(sel)], items[torch.from_numpy(ends[sel])],
                                                items[torch.from_numpy(corrupt[sel])])
        weights = {"preference": lc.preference, "text": lc.text, "kg_path": lc.kg_path}
        loss = sum(weights[k] * v for k, v in parts.items())
        if lc.l2 > 0:
            parts["l2"] = l2_regularization(U, items[target])
            loss = loss + lc.l2 * parts["l2"]
        if not torch.is_tensor(loss):
            raise ValueError("every loss is switched off: enable at least one of preference, text, kg_path")
        return loss, parts


def train_model(model: FusionModel, text: torch.Tensor | None, hist: Histories, paths: PathSampler,
                seen: sp.csr_matrix, valid: sp.csr_matrix | None = None, out_dir: str | Path | None = None,
                show_progress: bool = True, log: Callable[[str], None] | None = None) -> TrainState:
    """Train in place. With `valid`, stop early on validation NDCG@10 and keep the best weights; without it,
    run `config.train.epochs` epochs. With `out_dir` (a path prefix), a checkpoint `<out_dir>.pt` is written
    each epoch and training resumes from it after a kill."""
    cfg: FusionConfig = model.config
    tc, lc = cfg.train, cfg.loss
    tc.validate()
    sampled = _neighbor_sampler(model) if tc.sampler == "neighbor" else None
    if log is None:  # progress lines go to stderr so that stdout stays the caller's (e.g. a markdown table)
        def log(msg: str) -> None:
            print(msg, file=sys.stderr, flush=True)
    torch.manual_seed(tc.seed)
    rng = np.random.default_rng(tc.seed)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=tc.lr, weight_decay=tc.weight_decay,
                           **({"fused": True} if tc.fused_adam else {}))
    state = TrainState()
    best_state = None
    ckpt = Path(str(out_dir) + ".pt") if out_dir else None
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
    if ckpt is not None and ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        _check_resumable(saved, cfg, ckpt)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        state = saved["state"]
        best_state = saved["best_model"]
        rng = saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
        log(f"resumed from {ckpt} after epoch {state.epoch}")
    users_all, pos_all = _examples(hist, need_history=not cfg.use_user_embedding, as_set=cfg.history_order == "set")
    n_items = model.item_entity.shape[0]
    use_text = cfg.use_text and text is not None
    # several processes (fusion.distributed): each computes its share of every batch; DDP averages the gradients
    world, dist_rank = distributed.world_size(), distributed.rank()
    runner = BatchLoss(model, text, seen, sampled)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        runner = DistributedDataParallel(runner, find_unused_parameters=True)  # broadcasts rank 0's weights
    t_start = time.perf_counter() - state.seconds
    bad_epochs = state.epoch - state.best_epoch if valid is not None else 0
    while state.epoch < tc.epochs:
        if valid is not None and bad_epochs >= tc.patience:
            break
        if distributed.agree((time.perf_counter() - t_start) / 60 > tc.max_minutes):  # rank 0 decides for all
            log(f"stopping: time budget of {tc.max_minutes} min reached")
            break
        model.train()
        perm = rng.permutation(len(users_all))
        sums: dict[str, float] = {}
        n_batches = 0
        bar = tqdm(range(0, len(perm), tc.batch_size), desc=f"epoch {state.epoch + 1}", unit="batch",
                   disable=not show_progress or not distributed.is_main(), leave=False)
        for s in bar:
            b = perm[s:s + tc.batch_size]
            batch = _draw_batch(cfg, hist, paths, rng, b, users_all, pos_all, n_items, use_text)
            if world > 1:
                batch = _shard(batch, dist_rank, world)
            loss, parts = runner(batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            sums["total"] = sums.get("total", 0.0) + float(loss.detach())
            n_batches += 1
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        bar.close()
        state.epoch += 1
        row = {"epoch": state.epoch, **{k: v / max(1, n_batches) for k, v in sums.items()}}
        if valid is not None and state.epoch % tc.eval_every == 0:
            # rank 0 evaluates (the ranks hold the same weights) and tells the others
            row["valid_ndcg@10"] = distributed.agree(
                evaluate_ndcg(model, text, hist, seen, valid, seed=tc.seed) if distributed.is_main() else None)
            if row["valid_ndcg@10"] > state.best_ndcg:
                state.best_ndcg, state.best_epoch = row["valid_ndcg@10"], state.epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                bad_epochs = 0
            else:
                bad_epochs += 1
        elif valid is None:
            state.best_epoch = state.epoch
        state.seconds = time.perf_counter() - t_start
        row["seconds"] = round(state.seconds, 1)
        state.history.append(row)
        if distributed.is_main():
            log("  " + "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        if ckpt is not None and distributed.is_main():
            _save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "state": state,
                          "config": _resume_key(cfg),
                          "best_model": best_state, "rng": rng, "torch_rng": torch.get_rng_state()}, ckpt)
    if best_state is not None and valid is not None:
        model.load_state_dict(best_state)
    state.seconds = time.perf_counter() - t_start
    return state


def plot_curves(state: TrainState, path: str | Path, title: str = "") -> None:
    """PNG with the training losses per epoch (left) and validation NDCG@10 (right)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    ep = [r["epoch"] for r in state.history]
    for k in ("total", "preference", "text", "kg_path"):
        ys = [r.get(k) for r in state.history]
        if any(y is not None for y in ys):
            a.plot(ep, [np.nan if y is None else y for y in ys], marker=".", label=k)
    a.set_xlabel("epoch"); a.set_ylabel("mean loss"); a.set_yscale("log"); a.legend(); a.set_title("training losses")
    v = [(r["epoch"], r["valid_ndcg@10"]) for r in state.history if "valid_ndcg@10" in r]
    if v:
        b.plot(*zip(*v), marker="o", color="C3")
        b.axvline(state.best_epoch, ls="--", color="grey")
    b.set_xlabel("epoch"); b.set_ylabel("NDCG@10"); b.set_title("validation NDCG@10")
    fig.suptitle(title)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_history(state: TrainState, path: str | Path) -> None:
    Path(path).write_text(json.dumps({"best_epoch": state.best_epoch, "best_valid_ndcg@10": state.best_ndcg,
                                      "seconds": state.seconds, "history": state.history}, indent=2))
