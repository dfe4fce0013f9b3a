"""The fit / evaluate loop shared by every model: optional validation tuning, final fit, timing, test metrics.

Protocol (the same for every model, in the same run): tune on validation with models fitted on the training
part; then fit once more on train + validation with the chosen hyper-parameters (timed: `fit_seconds`) and
rank every recommendable product for each test user, excluding the items that final model was fitted on.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kg.graph import KnowledgeGraph

from ..config import FusionConfig
from ..data import TrainData, interaction_matrix
from ..metrics import evaluate_cold, evaluate_model, ndcg_at_k, rank_top_k
from ..recommender import FusionRecommender
from .baselines import GRIDS, available, make_baseline
from .splits import Split

__all__ = ["RunFailure", "RunResult", "check_model_dir", "evaluate_recommender", "run_baselines", "run_fusion", "tune",
           "validation_ndcg"]


@dataclass
class RunResult:
    """One model's outcome on one split."""

    name: str
    params: dict[str, Any]
    metrics: dict[str, float]
    cold_start: dict[str, float]
    fit_seconds: float
    eval_seconds: float
    tuning: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunFailure:
    """A model that raised while tuning, fitting or scoring: its name, the exception and how long it ran."""

    name: str
    error: str
    seconds: float


def _guarded(name: str, body: Callable[[], "RunResult"], failures: list[RunFailure] | None,
             on_result: Callable[[RunResult], None] | None, log: Callable[[str], None]) -> "RunResult | None":
    """Run one model's `body`; with a `failures` list a raise is logged and recorded there and the run goes on
    (the other models' rows are kept), without one it propagates. `on_result` sees each finished row."""
    t0 = time.perf_counter()
    try:
        res = body()
    except Exception as e:  # noqa: BLE001 - one model's failure must not lose the others' rows
        if failures is None:
            raise
        failures.append(RunFailure(name, f"{type(e).__name__}: {e}", time.perf_counter() - t0))
        log(f"FAILED {name} after {failures[-1].seconds:.1f}s: {failures[-1].error} (going on with the others)")
        return None
    if on_result is not None:
        on_result(res)
    return res


def _train_data(graph: KnowledgeGraph, split: Split, final: bool, seed: int, cache_dir: str | None):
    return TrainData.from_graph(split.fit_graph(graph, final), valid=None if final else split.valid,
                                seed=seed, cache_dir=cache_dir, valid_cold=None if final else split.valid_cold)


def validation_ndcg(model, train) -> float:
    """NDCG@10 of a fitted model on all validation users, its training items excluded."""
    users = np.flatnonzero(np.diff(train.valid.indptr) > 0)
    top = rank_top_k(model.score, users, 10, train.user_items)
    return ndcg_at_k(top, train.valid[users], 10)


def tune(make: Callable[..., Any], grid: Sequence[dict[str, Any]], train, log: Callable[[str], None] = print
         ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Fit `make(**point)` on `train` (whose `valid` is set) for each grid point; best by validation NDCG@10.

    Iterative models that stop early report `best_epoch_`, which replaces `epochs` in the chosen point.
    """
    rows = []
    for point in grid:
        t0 = time.perf_counter()
        model = make(**point).fit(train)
        v = validation_ndcg(model, train)
        chosen = dict(point)
        if hasattr(model, "best_epoch_"):
            chosen["epochs"] = int(model.best_epoch_)
        rows.append({"params": chosen, "valid_ndcg@10": v, "seconds": time.perf_counter() - t0})
        log(f"    {chosen}: valid NDCG@10 {v:.4f} ({rows[-1]['seconds']:.1f}s)")
    best = max(rows, key=lambda r: r["valid_ndcg@10"])
    return best["params"], rows


def evaluate_recommender(model, name: str, graph: KnowledgeGraph, split: Split, seed: int = 0,
                         cache_dir: str | None = None, ks: Sequence[int] = (10, 20),
                         train=None) -> RunResult:
    """Fit `model` on train + valid (timed) and score it on the test split."""
    train = train if train is not None else _train_data(graph, split, True, seed, cache_dir)
    test = _test_matrix(split, train)
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    if split.cold is not None:  # held-out cold products: their own slice
        metrics, _ = evaluate_model(model, test, train.user_items, ks)
        cold_rel = _test_matrix(split, train, split.cold)
        cold_cols = train.column_of[split.cold_items]
        cold_start = evaluate_cold(model, cold_rel, cold_cols[cold_cols >= 0], ks)
    else:  # test items that happen to have no training interaction
        cold = np.asarray(train.user_items.sum(axis=0)).ravel() == 0
        metrics, cold_start = evaluate_model(model, test, train.user_items, ks, cold_items=cold)
    return RunResult(name, model.params(), metrics, cold_start, fit_s, time.perf_counter() - t0)


def _round(x: float | None, digits: int = 5) -> float | None:
    return None if x is None else round(float(x), digits)


def _test_matrix(split: Split, train, rows=None):
    m = interaction_matrix(split.test if rows is None else rows, train.num_users, train.column_of)
    m.resize((train.num_users, train.num_items))
    return m


def run_baselines(graph: KnowledgeGraph, split: Split, names: Sequence[str], dataset: str | None = None,
                  do_tune: bool | Sequence[str] = False, seed: int = 0, cache_dir: str | None = None,
                  ks: Sequence[int] = (10, 20), log: Callable[[str], None] = print,
                  failures: list[RunFailure] | None = None, on_result: Callable[[RunResult], None] | None = None
                  ) -> list[RunResult]:
    """Evaluate the named baselines on one split, in order; a baseline that cannot run here is skipped
    with a logged reason. `do_tune`: True (tune all) or the names to tune on validation first. With a
    `failures` list, a baseline that raises is recorded there and the others still run; `on_result` is called
    with each finished row (e.g. to write the JSON as the run goes)."""
    final = _train_data(graph, split, True, seed, cache_dir)
    tune_names = set(names) if do_tune is True else set(do_tune or ())
    tuning_data = _train_data(graph, split, False, seed, cache_dir) if tune_names else None
    results = []
    for name in names:
        why = available(name)
        if why is not None:
            log(f"skip {name}: {why}")
            continue
        def body(name: str = name) -> RunResult:
            rows: list[dict[str, Any]] = []
            overrides: dict[str, Any] = {}
            if name in tune_names and len(GRIDS.get(name, [{}])) > 1:
                log(f"tune {name} on validation ({len(GRIDS[name])} points)")
                overrides, rows = tune(lambda **p: make_baseline(name, dataset, **p), GRIDS[name], tuning_data,
                                       log)
            model = make_baseline(name, dataset, **overrides)
            res = evaluate_recommender(model, name, graph, split, seed, cache_dir, ks, train=final)
            res.tuning = rows
            log(f"{name}: NDCG@10 {res.metrics['ndcg@10']:.4f}  Recall@20 {res.metrics['recall@20']:.4f}  "
                f"fit {res.fit_seconds:.1f}s  eval {res.eval_seconds:.1f}s  {res.params}")
            return res

        res = _guarded(name, body, failures, on_result, log)
        if res is not None:
            results.append(res)
    return results


def check_model_dir(model_dir: str | Path, split: Split, seed: int = 0) -> dict[str, Any]:
    """The meta.json of a model from scripts/train.py, after checking it was trained on this split (kind, seed,
    cold share): ValueError otherwise, since its validation/test rows would differ. Call it before a long run."""
    path = Path(model_dir) / "meta.json"
    if not path.exists():
        raise ValueError(f"{model_dir} holds no trained model ({path} is missing; train one with scripts/train.py)")
    meta = json.loads(path.read_text())
    cold_frac = split.info.get("cold_frac_pct", 0) / 100
    if (meta.get("split") not in (None, split.kind) or meta.get("seed", seed) != seed
            or abs(float(meta.get("cold_items", 0.0)) - cold_frac) > 1e-9):
        raise ValueError(f"{model_dir} was trained on split {meta.get('split')!r} (seed {meta.get('seed')}, "
                         f"cold items {meta.get('cold_items', 0.0)}), not {split.kind!r} (seed {seed}, cold "
                         f"items {cold_frac}): its validation/test rows differ; train it with the same options")
    return meta


def run_fusion(graph: KnowledgeGraph, split: Split, names: Sequence[str], model_dir: str | None = None,
               seed: int = 0, cache_dir: str | None = None, ks: Sequence[int] = (10, 20),
               log: Callable[[str], None] = print, failures: list[RunFailure] | None = None,
               on_result: Callable[[RunResult], None] | None = None) -> list[RunResult]:
    """Evaluate `fusion` and its ablations (`fusion_no_text`, ...) on `split` like every baseline.

    Each variant trains on the training rows with early stopping on validation NDCG@10, then scores the
    test users with train + validation histories and graph (what the baselines are refitted on). With
    `model_dir` (from scripts/train.py on the same store and split), `fusion` is that trained model and the
    ablations start from its config. `failures` and `on_result` as in `run_baselines`.
    """
    tuning = _train_data(graph, split, False, seed, cache_dir)
    final = _train_data(graph, split, True, seed, cache_dir)
    base = FusionConfig()
    trained_seconds = 0.0
    if model_dir is not None:
        meta = check_model_dir(model_dir, split, seed)
        base = FusionConfig.load(model_dir)
        trained_seconds = float(meta.get("train_seconds") or 0.0)
    results = []
    fitted: dict[str, FusionRecommender] = {}  # this run's `fusion`: `fusion_no_item_item` is it without the term

    def trained() -> FusionRecommender:
        return fitted["fusion"] if "fusion" in fitted else FusionRecommender.load(model_dir, tuning)

    def body(name: str) -> RunResult:
        fit_extra = 0.0
        reuse = "fusion" in fitted or model_dir is not None
        if name == "fusion" and model_dir is not None:
            rec = FusionRecommender.load(model_dir, tuning)
            fit_extra = trained_seconds  # training happened in scripts/train.py
        elif name == "fusion_no_item_item" and reuse:
            # the term is added after training: the same network, scored without it (no retraining)
            rec = trained().without_item_item(name)
            fit_extra = rec.network_seconds_  # the network's training (from meta.json when loaded)
        elif name == "fusion_no_cold_mix" and reuse:
            rec = trained().without_cold_mix(name)
            fit_extra = trained_seconds if model_dir is not None else fitted["fusion"].fit_seconds_  # same training
        else:
            rec = FusionRecommender(base.ablation(name), name=name, tuning=tuning)
        res = evaluate_recommender(rec, name, graph, split, seed, cache_dir, ks, train=final)
        res.fit_seconds += fit_extra
        if name == "fusion":
            fitted["fusion"] = rec
        head = rec.item_item_
        res.params = {"best_epoch": int(getattr(rec, "best_epoch_", 0)),
                      "best_valid_ndcg@10": _round(rec.state_.best_ndcg if rec.state_ is not None
                                                   else getattr(rec, "best_valid_", None)),
                      "item_item": None if head is None else {"reg": head.reg, "weight": head.weight,
                                                              "next_weight": head.next_weight,
                                                              "valid_ndcg@10": _round(rec.item_item_valid_)},
                      "last_text": None if getattr(rec, "last_text_", None) is None else rec.last_text_.to_dict(),
                      # the text mix and the cold graph term are chosen together: either may be off alone
                      "cold_mix": None if rec.cold_mix_ is None and rec.cold_graph_ is None else {
                          "weight": 0.0 if rec.cold_mix_ is None else rec.cold_mix_.weight,
                          "graph_weight": 0.0 if rec.cold_graph_ is None else rec.cold_graph_.weight,
                          "graph_kg": 0.0 if rec.cold_graph_ is None else rec.cold_graph_.kg_share,
                          "valid_cold_ndcg@10": _round(rec.cold_mix_valid_)},
                      **({"model_dir": str(model_dir)} if name == "fusion" and model_dir else {})}
        log(f"{name}: NDCG@10 {res.metrics['ndcg@10']:.4f}  Recall@20 {res.metrics['recall@20']:.4f}  "
            f"fit {res.fit_seconds:.1f}s  eval {res.eval_seconds:.1f}s  {res.params}")
        return res

    for name in names:
        res = _guarded(name, lambda name=name: body(name), failures, on_result, log)
        if res is not None:
            results.append(res)
    return results
