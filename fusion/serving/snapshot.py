"""The state a `fusion.Recommender` query reads, and the pieces that keep it safe to share between threads:
an immutable `Snapshot` (catalog, vectors, top-k indexes) that `add_products` replaces as a whole, how the
indexes are made and copied, and a read-write lock for indexes that can only grow in place."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..item_item import history_rows
from ..vectors import unit_rows
from .catalog import Catalog
from .topk import ExactIndex, TopKIndex

__all__ = ["Snapshot", "frozen", "index_factory", "clone_index", "torch_threads", "ReadWriteLock"]


@dataclass(frozen=True)
class Snapshot:
    """Everything a query reads that `add_products` changes; replaced as a whole, never modified."""

    catalog: Catalog
    vectors: np.ndarray           # F  [n, d] float32, read-only
    normed: np.ndarray            # F^ [n, d]
    text: np.ndarray | None       # T  [n, text_dim] (None: model without text)
    rec_index: TopKIndex          # over F
    sim_index: TopKIndex          # over F^
    search_index: TopKIndex | None  # over [F^ | T | F]
    shared: bool = False          # indexes grown in place (not copyable): search them under the lock
    mixed: np.ndarray | None = None     # rec_index's rows when not F: [F' | T' | c], see rec_vectors
    profile: bool = True          # mixed holds the cold text mix's T' block (users get p_u)
    cold_graph: object | None = None  # the cold graph term (`fusion.cold_graph.ColdGraphTerm`) whose per-user
    #                                   offsets o_u make mixed's column after T'
    last_text: float = 0.0        # gamma of the latest product's text term (`fusion.last_text`; 0: none): mixed
    #                               then ends with the unit text of every product with interactions (cold rows
    #                               0), users with gamma * t_last

    @property
    def rec_vectors(self) -> np.ndarray:
        """The rows rec_index ranks by dot product: F, or [F' | T'] under the cold text mix (`fusion.cold_mix`),
        with one more column (-1 on the cold products the cold graph term's offset applies to, `fusion.cold_graph`)
        and, with the latest product's text term, every product's unit text vector (`fusion.last_text`)."""
        return self.vectors if self.mixed is None else self.mixed

    def rec_users(self, users: np.ndarray, seen: list[np.ndarray], last: np.ndarray | None = None) -> np.ndarray:
        """User vectors [B, ...] as rec_index takes them: [u | p_u | o_u | l_u], p_u (under the cold text mix) the
        mean unit text vector of the user's products `seen` (distinct columns) from T, o_u (with the cold graph
        term's offset) what the user's cold products give back of the term (`ColdGraphTerm.offsets`), l_u (with
        the latest product's text term) gamma times the unit text of the user's most recent product `last` [B]
        (-1 or None: zeros)."""
        if self.mixed is None:
            return users
        parts = [np.asarray(users, dtype=np.float32)]
        if self.profile:
            prof = np.zeros((len(users), self.text.shape[1]), dtype=np.float32)
            for r, s in enumerate(seen):
                if len(s):
                    prof[r] = unit_rows(self.text[np.asarray(s, dtype=np.int64)]).mean(axis=0)
            parts.append(prof)
        if self.cold_graph is not None:  # products added after training have no rows in the term
            parts.append(self.cold_graph.offsets(history_rows(seen, self.cold_graph.num_items))[:, None])
        if self.last_text:
            lt = np.zeros((len(users), self.text.shape[1]), dtype=np.float32)
            if last is not None:
                last = np.asarray(last, dtype=np.int64)
                ok = (last >= 0) & (last < len(self.text))
                lt[ok] = np.float32(self.last_text) * unit_rows(self.text[last[ok]])
            parts.append(lt)
        return np.concatenate(parts, axis=1)


def frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float32)
    a.flags.writeable = False
    return a


def index_factory(index) -> Callable[[np.ndarray], TopKIndex] | None:
    """"exact" / "faiss" / a callable vectors -> index; None for an index instance."""
    if isinstance(index, str):
        if index == "exact":
            return ExactIndex
        if index == "faiss":
            try:
                from .ann import FaissIndex
            except ImportError as e:
                raise ValueError(f"index='faiss' needs fusion.serving.ann and the faiss-cpu package: {e}") from e
            return FaissIndex
        raise ValueError(f"index must be 'exact', 'faiss', a TopKIndex or a callable vectors -> TopKIndex, "
                         f"got {index!r}")
    if hasattr(index, "search") and hasattr(index, "add"):
        return None
    if callable(index):
        return index
    raise ValueError(f"index must be 'exact', 'faiss', a TopKIndex or a callable vectors -> TopKIndex, "
                     f"got {type(index).__name__}")


def clone_index(index: TopKIndex) -> TopKIndex | None:
    """A copy of an index that can grow without touching the original (`ExactIndex`, or any index with a
    `copy()` method), or None: such an index is grown in place (see `ReadWriteLock`)."""
    if isinstance(index, ExactIndex):
        return ExactIndex(index.vectors)
    return index.copy() if callable(getattr(index, "copy", None)) else None


@contextmanager
def torch_threads(n: int):
    """Run with `n` torch intra-op threads, then restore the process's setting."""
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if before != n:
            torch.set_num_threads(before)


class ReadWriteLock:
    """Many readers at once or one writer; a waiting writer goes first, so `add_products` is never starved.
    Guards indexes that cannot be copied: searches read them, `add_products` grows them in place."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._waiting = 0

    @contextmanager
    def read(self):
        with self._cond:
            while self._writing or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            self._waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()
