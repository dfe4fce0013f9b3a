"""Train / validation / test splits of a graph's INTERACTED table, leak-free and reproducible.

Every split works on index-space interaction rows (the INTERACTED table's `src`, `dst`, `timestamp`, `seq`,
...). Time order is (timestamp, seq): rows without a timestamp sort first, then by arrival `seq`; with no
timestamps at all that is arrival order. Repeated (user, item) pairs are kept once (the first), so a test
item is always new to its user; a model is fitted on `Split.fit_graph(graph)`, whose INTERACTED table holds
no validation (while tuning) or test pair.

Kinds:
    loo: each user's last item is test, the second-to-last validation; users with < 3 items stay in train.
    time: per user, the last 20% (round, at least 1) by time is test, the last 10% of the rest validation;
        users with < 3 items stay in train.
    file: the store holds the training interactions; test rows come from a file of external ids
        (user_id, product_id[, timestamp]). Validation mirrors how the test file relates to training: when
        the test rows are mostly each user's future (at or after their last training row), validation is
        each user's last training item; when they are not (e.g. amazon-beauty-kg's `time_test.csv`, where
        76% of test rows predate the user's last training row: a per-user random holdout with dates), it is
        a seeded random holdout of the same per-user fraction as the test file. Users with >= 3 items only.

Cold products (`cold_frac` > 0): before any of the above, a seeded random share of the catalog products that
have interactions is chosen, and every interaction with them (and every test-file row) moves to `cold`: no
model sees a single interaction with them, only their brand, categories, related products and text. The
cold-start slice ranks them for the users who did interact with them (see `evaluate_cold`).

Validation cold products (`valid_cold_frac` > 0, by default the same share as `cold_frac`): the same again
within what is left after the test rows, for tuning only. Their training and validation rows move to
`valid_cold`: the tuning graph (`fit_graph(final=False)`) never sees them, so that a model can choose how it
ranks cold products on them (the fusion model's cold text mix, `fusion.cold_mix`); the final fit graph has
them back (train + valid + valid_cold), so the test run and the test rows do not change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kg.graph import EDGE_DTYPES, KnowledgeGraph
from kg.schema import INTERACTED, PRODUCT, USER

__all__ = ["Split", "SPLIT_KINDS", "make_split", "pick_cold_items", "time_order", "read_test_file", "assert_no_leak"]

SPLIT_KINDS = ("loo", "time", "file")
MIN_ITEMS = 3


@dataclass
class Split:
    """Interaction rows (INTERACTED columns, product/user indices) of each part, plus what was dropped."""

    kind: str
    seed: int
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)
    cold: pd.DataFrame | None = None
    cold_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    valid_cold: pd.DataFrame | None = None
    valid_cold_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def fit_interactions(self, final: bool) -> pd.DataFrame:
        """Rows a model may train on: train only while tuning; train + valid (+ valid_cold) for the final test run."""
        if not final:
            return self.train
        parts = [self.train, self.valid] + ([self.valid_cold] if self.valid_cold is not None else [])
        return pd.concat(parts, ignore_index=True).sort_values("seq", kind="stable")

    def fit_graph(self, graph: KnowledgeGraph, final: bool) -> KnowledgeGraph:
        """`graph` with only the fitting interactions (the leak guard); checked against the held-out part."""
        rows = self.fit_interactions(final)
        held = [self.test] if final else [self.valid, self.test]
        if not final and self.valid_cold is not None:
            held.append(self.valid_cold)
        assert_no_leak(rows, pd.concat(held + ([self.cold] if self.cold is not None else [])))
        if len(self.cold_items) and rows["dst"].isin(self.cold_items).any():
            raise AssertionError("leak: a cold product has an interaction among the fitting rows")
        if not final and len(self.valid_cold_items) and rows["dst"].isin(self.valid_cold_items).any():
            raise AssertionError("leak: a validation cold product has an interaction among the tuning rows")
        return graph.with_interactions(rows)

    def summary(self) -> str:
        parts = ", ".join(f"{k}={len(getattr(self, k)):,}" for k in ("train", "valid", "test"))
        if self.cold is not None:
            parts += f", cold={len(self.cold):,} ({len(self.cold_items):,} cold products)"
        if self.valid_cold is not None:
            parts += f", valid_cold={len(self.valid_cold):,} ({len(self.valid_cold_items):,} products)"
        users = self.test["src"].nunique()
        extra = "".join(f", {k}={v:,}" if isinstance(v, int) else "" for k, v in self.info.items())
        return f"split {self.kind} (seed {self.seed}): {parts} interactions, {users:,} test users{extra}"


def assert_no_leak(fit_rows: pd.DataFrame, held_out: pd.DataFrame) -> None:
    """Raise AssertionError if any held-out (user, item) pair is among the rows a model is fitted on."""
    a = pd.MultiIndex.from_arrays([fit_rows["src"].to_numpy(), fit_rows["dst"].to_numpy()])
    b = pd.MultiIndex.from_arrays([held_out["src"].to_numpy(), held_out["dst"].to_numpy()])
    leaked = b.isin(a)
    if leaked.any():
        u, i = b[int(np.flatnonzero(leaked)[0])]
        raise AssertionError(f"leak: held-out pair (user {u}, product {i}) is in the training interactions "
                             f"({int(leaked.sum())} such pairs)")


def time_order(inter: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by user, then (timestamp, seq); missing timestamps first, ties by seq."""
    ts = inter["timestamp"].astype("float64").fillna(-np.inf)
    order = np.lexsort((inter["seq"].to_numpy(), ts.to_numpy(), inter["src"].to_numpy()))
    return inter.iloc[order].reset_index(drop=True)


def _dedupe(inter: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """First occurrence (in time order) of each (user, item) pair; returns rows and how many were dropped."""
    s = time_order(inter)
    keep = ~s.duplicated(["src", "dst"], keep="first")
    return s[keep].reset_index(drop=True), int((~keep).sum())


def _tail_mask(sorted_rows: pd.DataFrame, n_tail: np.ndarray) -> np.ndarray:
    """bool per row (sorted by user then time): row is among its user's last `n_tail[user_row]` rows."""
    pos_from_end = sorted_rows.groupby("src", sort=False).cumcount(ascending=False).to_numpy()
    return pos_from_end < n_tail


def _per_user_count(sorted_rows: pd.DataFrame) -> np.ndarray:
    return sorted_rows.groupby("src", sort=False)["dst"].transform("size").to_numpy()


def _last_k(sorted_rows: pd.DataFrame, frac: float | None) -> np.ndarray:
    """Tail mask: last 1 (frac None) or round(frac * n), at least 1, of users with >= MIN_ITEMS rows."""
    n = _per_user_count(sorted_rows)
    k = np.ones_like(n) if frac is None else np.maximum(1, np.round(frac * n).astype(np.int64))
    k = np.where(n >= MIN_ITEMS, k, 0)
    return _tail_mask(sorted_rows, k)


def _future_fraction(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """Share of test rows at or after their user's last training row (1.0 when nothing is dated)."""
    tt = test["timestamp"].astype("float64")
    last = train.assign(ts=train["timestamp"].astype("float64")).groupby("src")["ts"].max()
    ref = last.reindex(test["src"].to_numpy()).to_numpy()
    dated = np.isfinite(tt.to_numpy()) & np.isfinite(ref)
    if not dated.any():
        return 1.0
    return float((tt.to_numpy()[dated] >= ref[dated]).mean())


def _random_k(sorted_rows: pd.DataFrame, frac: float, seed: int) -> np.ndarray:
    """Mask of a seeded random round(frac * n) (at least 1) rows of each user with >= MIN_ITEMS rows."""
    n = _per_user_count(sorted_rows)
    k = np.where(n >= MIN_ITEMS, np.maximum(1, np.round(frac * n).astype(np.int64)), 0)
    key = np.random.default_rng(seed).random(len(sorted_rows))
    rank = pd.Series(key).groupby(sorted_rows["src"].to_numpy()).rank(method="first").to_numpy() - 1
    return rank < k


def pick_cold_items(inter: pd.DataFrame, frac: float, seed: int, stream: int = 1729) -> np.ndarray:
    """Seeded random `frac` of the products that have interactions (sorted product indices); `stream` keeps
    the validation cold products' draw apart from the test cold products'."""
    if not 0.0 <= frac < 1.0:
        raise ValueError(f"cold_frac must be in [0, 1), got {frac}")
    items = np.unique(inter["dst"].to_numpy(np.int64))
    n = int(round(frac * len(items)))
    if n == 0:
        return np.zeros(0, np.int64)
    return np.sort(np.random.default_rng([seed, stream]).choice(items, n, replace=False))


def make_split(graph: KnowledgeGraph, kind: str, seed: int = 0, test_file: str | Path | None = None,
               cold_frac: float = 0.0, valid_cold_frac: float | None = None) -> Split:
    """Split `graph`'s INTERACTED table; see the module docstring for the kinds and (validation) cold products;
    `valid_cold_frac` None = `cold_frac`."""
    if kind not in SPLIT_KINDS:
        raise ValueError(f"split kind must be one of {', '.join(SPLIT_KINDS)}, got {kind!r}")
    if kind == "file" and test_file is None:
        raise ValueError("split 'file' needs a test file (--test-interactions)")
    if kind != "file" and test_file is not None:
        raise ValueError(f"a test file is only used by split 'file', not {kind!r}")
    inter, dup = _dedupe(graph.edges_of(INTERACTED))
    info: dict[str, Any] = {"duplicates_dropped": dup}
    cold_items = pick_cold_items(inter, cold_frac, seed)
    cold_parts = [inter[inter["dst"].isin(cold_items)]]
    inter = inter[~inter["dst"].isin(cold_items)].reset_index(drop=True)
    if kind == "file":
        train = inter
        test, finfo = read_test_file(graph, test_file)
        info.update(finfo)
        cold_parts.append(test[test["dst"].isin(cold_items)])
        test = test[~test["dst"].isin(cold_items)].reset_index(drop=True)
        repeat = pd.MultiIndex.from_frame(test[["src", "dst"]]).isin(pd.MultiIndex.from_frame(train[["src", "dst"]]))
        info["test_repeats_dropped"] = int(repeat.sum())
        test = test[~repeat].reset_index(drop=True)
    else:
        is_test = _last_k(inter, None if kind == "loo" else 0.2)
        test = inter[is_test].reset_index(drop=True)
        train = inter[~is_test].reset_index(drop=True)
    if kind == "file":
        future = _future_fraction(train, test)
        info["test_future_pct"] = int(round(100 * future))
        if future >= 0.5:
            is_valid = _last_k(train, None)
        else:
            frac = len(test) / max(1, len(test) + len(train))
            is_valid = _random_k(train, frac, seed)
        info["valid_random"] = int(future < 0.5)
    else:
        is_valid = _last_k(train, None if kind == "loo" else 0.1)
    valid = train[is_valid].reset_index(drop=True)
    train = train[~is_valid].reset_index(drop=True)
    cold = None
    if cold_frac > 0:
        cold, _ = _dedupe(pd.concat(cold_parts, ignore_index=True))
        info["cold_frac_pct"] = int(round(100 * cold_frac))
    vfrac = cold_frac if valid_cold_frac is None else valid_cold_frac
    valid_cold, valid_cold_items = None, pick_cold_items(pd.concat([train, valid]), vfrac, seed, stream=1730)
    if len(valid_cold_items):
        in_t, in_v = train["dst"].isin(valid_cold_items), valid["dst"].isin(valid_cold_items)
        valid_cold = pd.concat([train[in_t], valid[in_v]], ignore_index=True).sort_values(
            "seq", kind="stable").reset_index(drop=True)
        train, valid = train[~in_t].reset_index(drop=True), valid[~in_v].reset_index(drop=True)
        info["valid_cold_pct"] = int(round(100 * vfrac))
    split = Split(kind, seed, train, valid, test, info, cold, cold_items, valid_cold, valid_cold_items)
    assert_no_leak(train, pd.concat([valid, test]))
    assert_no_leak(valid, test)
    return split


def read_test_file(graph: KnowledgeGraph, path: str | Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """Test interactions from a file of external ids -> (INTERACTED-shaped rows, counts of dropped rows).

    Rows whose product is not in the store's catalog (or otherwise invalid) and rows of users unknown to the
    store (personalised models cannot rank them) are dropped and counted; duplicate pairs are kept once.
    """
    from kg.readers import read_table
    from kg.validate import INTERACTION_COLUMNS, check_interactions

    df = read_table(path, *INTERACTION_COLUMNS)
    prod = graph.nodes[PRODUCT]
    known = pd.Index(prod.loc[prod["in_catalog"], "id"], dtype=object)
    rows, problems = check_interactions(df, str(path), known)
    uidx = graph.id_map(USER).indices(rows["user_id"], missing="-1")
    unknown_user = uidx < 0
    info = {"test_rows_read": len(df), "test_rows_invalid": len(problems),
            "test_rows_unknown_user": int(unknown_user.sum()),
            "test_users_unknown": int(rows.loc[unknown_user, "user_id"].nunique())}
    rows = rows[~unknown_user]
    seq0 = int(graph.edges_of(INTERACTED)["seq"].max()) + 1 if len(graph.edges_of(INTERACTED)) else 0
    out = pd.DataFrame({
        "src": uidx[~unknown_user], "dst": graph.id_map(PRODUCT).indices(rows["product_id"]),
        "timestamp": rows["timestamp"].to_numpy(), "seq": np.arange(seq0, seq0 + len(rows), dtype=np.int64),
        "event": rows["event"].to_numpy(), "weight": rows["weight"].to_numpy(),
    })
    out = out.astype({c: d for c, d in EDGE_DTYPES[INTERACTED].items() if d != "object"})
    out, dup = _dedupe(out)
    info["test_duplicates_dropped"] = dup
    return out, info
