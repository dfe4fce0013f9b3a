"""Users as they act: the store's histories plus the events `Recommender.record` took since loading, and how a
user's vector follows them without retraining.

A user's vector is u = e_u + h(F[last history_len items]) (`fusion.model.FusionModel.user_vectors`; h the
pooling, plus the sequence tower with `user_tower="attention"`). After an
event both parts are recomputed for that user alone:

- h, the history encoder over the fused product vectors, runs on the new history as it would at load;
- e_u, the user's graph embedding, repeats the GNN's propagation for this one node (`UserGraph`): users have one
  relation (INTERACTED), so E^{l+1}_u = sum over u's interactions e of E^l_{i_e} / sqrt(d_u d_{i_e}) with the
  degrees counting the new interactions, E^0_u the trained free embedding, e_u = mean_l E^l_u. With no new
  event this gives exactly the vector computed at load (a test checks it). The products' own embeddings are
  not re-propagated (a second-order change, left to the warm start).

A user the model was not trained on (a new one, or one the store gained after training) has no free embedding
and no node: its vector is the history encoder alone, exactly `Recommender.recommend_new_user`'s.

Readers never lock: each user's state is one immutable `LiveUser`, swapped in whole under the writer's lock.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .results import UnknownIdError
from ..sequence_tower import NumpyTower
from .users import UserHistory

__all__ = ["LiveUser", "LiveHistory", "UserGraph", "HistoryEncoder"]


@dataclass(frozen=True)
class LiveUser:
    """One user's state after recorded events: product columns, events and timestamps oldest first, vector [d]."""

    items: np.ndarray
    events: np.ndarray
    times: np.ndarray
    vector: np.ndarray
    recorded: int  # how many of the items came from `record`


@dataclass(frozen=True)
class UserGraph:
    """What re-running the propagation for one user needs (see the module docstring).

    Attributes:
        free: float32 [n_model_users, d] E^0 of every trained user.
        item_layers: float32 [L, n_items, d] E^0..E^{L-1} of each trained product column.
        item_degree: float64 [n_items] INTERACTED edges of each column in the graph the model is bound to.
        model_user: int64 [n_users] the model's user index of each history user (-1: none).
    """

    free: np.ndarray
    item_layers: np.ndarray
    item_degree: np.ndarray
    model_user: np.ndarray

    def embedding(self, u: int, cols: np.ndarray, extra_degree: np.ndarray | None = None) -> np.ndarray | None:
        """e_u [d] of history user u from all its product columns `cols` (bound graph's and recorded ones), or
        None for a user without a node. `extra_degree` [n_items]: recorded events per column (all users)."""
        m = int(self.model_user[u]) if u < len(self.model_user) else -1
        if m < 0:
            return None
        L = self.item_layers.shape[0]
        cols = np.asarray(cols, dtype=np.int64)
        cols = cols[cols < self.item_layers.shape[1]]  # products added after training have no node
        x = self.free[m].astype(np.float64)
        total = x.copy()
        if L and len(cols):
            deg = self.item_degree[cols]
            if extra_degree is not None:
                deg = deg + extra_degree[cols]
            norm = 1.0 / np.sqrt(len(cols) * np.maximum(deg, 1.0))
            for l in range(L):
                x = (norm[:, None] * self.item_layers[l, cols]).sum(axis=0)
                total += x
        return (total / (L + 1)).astype(np.float32)


class LiveHistory:
    """`UserHistory` plus recorded events: the same reading interface (find, user, items_of, events_of, seen,
    users_of, id_of), so recommendations, the item-item term and explanations see an event at once."""

    def __init__(self, base: UserHistory) -> None:
        self.base = base
        self._live: dict[int, LiveUser] = {}
        self._new: dict[str, int] = {}           # new user id -> index (after the base users)
        self._new_ids: list[str] = []
        self._item_users: dict[int, frozenset] = {}  # column -> users who recorded it (replaced, never changed)
        self.recorded = 0

    @property
    def num_users(self) -> int:
        return self.base.num_users + len(self._new_ids)

    @property
    def ids(self) -> list[str]:
        return [str(x) for x in self.base.ids] + list(self._new_ids)

    @property
    def max_length(self) -> int:
        return max([self.base.max_length, *(len(v.items) for v in list(self._live.values()))])

    def find(self, user_id: str) -> int:
        u = self.base.find(user_id)
        return u if u >= 0 else self._new.get(user_id, -1)

    def user(self, user_id: str) -> int:
        u = self.find(user_id)
        if u < 0:
            raise UnknownIdError(f"unknown user id {user_id!r}: no interaction of this user is in the store")
        return u

    def id_of(self, u: int) -> str:
        return str(self.base.ids[u]) if u < self.base.num_users else self._new_ids[u - self.base.num_users]

    def state(self, u: int) -> LiveUser | None:
        """The user's recorded state (None: nothing recorded, read the base)."""
        return self._live.get(u)

    def items_of(self, u: int) -> np.ndarray:
        s = self._live.get(u)
        if s is not None:
            return s.items
        return self.base.items_of(u) if u < self.base.num_users else np.zeros(0, np.int64)

    def events_of(self, u: int) -> np.ndarray:
        s = self._live.get(u)
        if s is not None:
            return s.events
        return self.base.events_of(u) if u < self.base.num_users else np.zeros(0, object)

    def times_of(self, u: int) -> np.ndarray:
        s = self._live.get(u)
        if s is not None:
            return s.times
        return self.base.times_of(u) if u < self.base.num_users else np.zeros(0, np.int64)

    def seen(self, u: int) -> np.ndarray:
        return np.unique(self.items_of(u))

    def users_of(self, col: int) -> np.ndarray:
        extra = self._item_users.get(col)
        base = self.base.users_of(col)
        return base if extra is None else np.union1d(base, np.fromiter(extra, dtype=np.int64, count=len(extra)))

    def pinned(self, u: int) -> "PinnedHistory":
        """This history with user u's state fixed as it is now (a reader's consistent view while a writer records)."""
        return PinnedHistory(self, u, self._live.get(u))

    # --- writing (the caller holds the write lock) ---------------------------------------------------
    def index_for(self, user_id: str) -> int:
        """The user's index; for a new user the one `put` will give it (readers do not see it before)."""
        u = self.find(user_id)
        return u if u >= 0 else self.base.num_users + len(self._new_ids)

    def put(self, u: int, user_id: str, state: LiveUser, new_cols: np.ndarray) -> None:
        """Publish user u's new state; a new user becomes visible only now, with its state in place. Call
        `link` afterwards with the (column, user) pairs of the events."""
        self._live[u] = state
        if u >= self.base.num_users + len(self._new_ids):
            self._new_ids.append(user_id)
            self._new[user_id] = u
        self.recorded += len(new_cols)

    def link(self, cols: np.ndarray, users: np.ndarray) -> None:
        """Add recorded (column, user) pairs to `users_of` (after `put`: explanations may name those users)."""
        pairs = np.unique(np.stack([np.asarray(cols, np.int64), np.asarray(users, np.int64)], axis=1), axis=0)
        bounds = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0], True])
        for a, b in zip(bounds[:-1], bounds[1:]):
            c = int(pairs[a, 0])
            cur = self._item_users.get(c)
            new = frozenset(pairs[a:b, 1].tolist())
            self._item_users[c] = new if cur is None else cur | new


class PinnedHistory:
    """`LiveHistory` reads with one user's items and events fixed (see `LiveHistory.pinned`)."""

    def __init__(self, history: LiveHistory, u: int, state: LiveUser | None) -> None:
        self._h, self._u = history, u
        self._items = state.items if state is not None else history.items_of(u)
        self._events = state.events if state is not None else history.events_of(u)

    def items_of(self, u: int) -> np.ndarray:
        return self._items if u == self._u else self._h.items_of(u)

    def events_of(self, u: int) -> np.ndarray:
        return self._events if u == self._u else self._h.events_of(u)

    def __getattr__(self, name):
        return getattr(self._h, name)


class HistoryEncoder:
    """`FusionModel.history_vectors` for one history: the pooling in numpy (a record is then microseconds, not a
    torch call): h = history_scale * softmax(position_logits[-n:]) . F[last n items], then `history_map`
    (n <= history_len; uniform weights for history_order "set"); with `user_tower="attention"` plus the sequence
    tower's term, also in numpy (`fusion.sequence_tower.NumpyTower`)."""

    @torch.no_grad()
    def __init__(self, model) -> None:
        cfg = model.config
        self.length = cfg.history_len
        self.sequence = cfg.history_order == "sequence"
        self.logits = model.position_logits.detach().numpy().astype(np.float32)
        self.scale = np.float32(model.history_scale.item())
        self.map = None if model.history_map is None else model.history_map.weight.detach().numpy().T.copy()
        tower = getattr(model, "tower", None)
        self.tower = None if tower is None else NumpyTower(tower)

    def __call__(self, vectors: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """h [d] from product columns `cols` (oldest first) of fused vectors [n, d]."""
        cols = np.asarray(cols, dtype=np.int64)[-self.length:]
        if not len(cols):
            return np.zeros(vectors.shape[1], dtype=np.float32)
        if self.sequence:
            z = self.logits[-len(cols):]
            w = np.exp(z - z.max())
            w /= w.sum()
        else:
            w = np.full(len(cols), 1.0 / len(cols), dtype=np.float32)
        window = vectors[cols]
        h = self.scale * (w.astype(np.float32) @ window)
        h = h @ self.map if self.map is not None else h
        if self.tower is not None:
            h = h + self.tower(window)
        return h.astype(np.float32)
