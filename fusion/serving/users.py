"""Who interacted with what, in time order, over the whole store: for `exclude_seen`, user vectors and
explanations (the query API binds to every known interaction, not only those the model was fitted on)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from kg.graph import KnowledgeGraph
from kg.schema import INTERACTED, USER

from ..data import Histories, csr_indptr, time_ordered
from .results import UnknownIdError

__all__ = ["UserHistory", "compute_user_vectors", "NO_TIME"]

NO_TIME = np.iinfo(np.int64).min  # an interaction without a timestamp sorts first, as in `fusion.data.time_ordered`


@dataclass(frozen=True)
class UserHistory:
    """Users' catalog interactions sorted by (timestamp, seq) like `fusion.data.build_histories`.

    Attributes:
        ids: user ids (index = user index = graph node index).
        indptr, items, events, times: user u's product columns are items[indptr[u]:indptr[u+1]] (oldest
            first), with the event and the timestamp (epoch seconds; NO_TIME where unknown) of each interaction.
        item_indptr, item_users: the same interactions by product column: the users of column j are
            item_users[item_indptr[j]:item_indptr[j+1]] (sorted, distinct).
    """

    ids: pd.Index
    indptr: np.ndarray
    items: np.ndarray
    events: np.ndarray
    item_indptr: np.ndarray
    item_users: np.ndarray
    times: np.ndarray | None = None

    @classmethod
    def from_graph(cls, graph: KnowledgeGraph, column_of: np.ndarray) -> "UserHistory":
        users, cols, rows = time_ordered(graph, column_of)
        e = graph.edges_of(INTERACTED)
        events = e["event"].to_numpy(dtype=object)[rows]
        times = e["timestamp"].astype("float64").fillna(NO_TIME).to_numpy().astype(np.int64)[rows]
        indptr = csr_indptr(users, graph.num_nodes(USER))
        n_items = int(column_of.max(initial=-1)) + 1
        pairs = np.unique(np.stack([cols, users], axis=1), axis=0) if len(cols) else np.zeros((0, 2), np.int64)
        return cls(pd.Index(graph.nodes[USER]["id"].astype(str).to_numpy(dtype=object)), indptr,
                   cols, events, csr_indptr(pairs[:, 0], n_items), pairs[:, 1].astype(np.int64), times)

    @property
    def num_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def max_length(self) -> int:
        """Length of the longest history."""
        return int(np.diff(self.indptr).max(initial=0))

    def find(self, user_id: str) -> int:
        """User index, or -1 when unknown."""
        try:
            return int(self.ids.get_loc(user_id))
        except KeyError:
            return -1

    def user(self, user_id: str) -> int:
        """User index; UnknownIdError naming the id."""
        u = self.find(user_id)
        if u < 0:
            raise UnknownIdError(f"unknown user id {user_id!r}: no interaction of this user is in the store")
        return u

    def items_of(self, u: int) -> np.ndarray:
        """Product columns of user u, oldest first (repeats kept)."""
        return self.items[self.indptr[u]:self.indptr[u + 1]]

    def events_of(self, u: int) -> np.ndarray:
        return self.events[self.indptr[u]:self.indptr[u + 1]]

    def times_of(self, u: int) -> np.ndarray:
        """int64 timestamps of user u's interactions (NO_TIME where unknown), oldest first."""
        if self.times is None:
            return np.full(self.indptr[u + 1] - self.indptr[u], NO_TIME, dtype=np.int64)
        return self.times[self.indptr[u]:self.indptr[u + 1]]

    def id_of(self, u: int) -> str:
        return str(self.ids[u])

    def seen(self, u: int) -> np.ndarray:
        """Distinct product columns of user u."""
        return np.unique(self.items_of(u))

    def users_of(self, col: int) -> np.ndarray:
        """Distinct users of product column `col` (none for columns added after loading)."""
        if col >= len(self.item_indptr) - 1:
            return np.zeros(0, dtype=np.int64)
        return self.item_users[self.item_indptr[col]:self.item_indptr[col + 1]]

    def as_histories(self) -> Histories:
        return Histories(self.indptr, self.items)


@torch.no_grad()
def compute_user_vectors(model, entities: torch.Tensor, items: torch.Tensor, history: UserHistory,
                         batch: int = 4096, model_user: np.ndarray | None = None) -> np.ndarray:
    """float32 [num_users, d]: every user's vector from their graph embedding and last `history_len` items,
    exactly as `fusion.trainer.score_users` builds it. `model_user` [num_users]: each user's index in the model
    (-1: no node, the history alone); default the same index."""
    hist = history.as_histories()
    out = []
    for s in range(0, hist.num_users, batch):
        u = np.arange(s, min(s + batch, hist.num_users))
        h, m = hist.last(u, model.config.history_len)
        mu = u if model_user is None else model_user[u]
        out.append(model.user_vectors(entities, items, torch.from_numpy(np.asarray(mu, dtype=np.int64)), h, m).numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, items.shape[1]), np.float32)
