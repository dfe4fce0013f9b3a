"""External id <-> contiguous index, one map per node type; the only place ids become indices."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = ["IdMap", "UnknownIdError"]


class UnknownIdError(KeyError):
    """An external id that the map does not hold; the message names the label and the id."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class IdMap:
    """Append-only map of one label's external ids (strings) to indices 0..n-1.

    Index i is row i of the label's node table, of its embedding matrix and of its HeteroData store.
    """

    def __init__(self, label: str, ids: Iterable[str] = ()) -> None:
        self.label = label
        self._index = pd.Index(list(ids) if not isinstance(ids, pd.Index) else ids, dtype=object)
        if not self._index.is_unique:
            dup = self._index[self._index.duplicated()][0]
            raise ValueError(f"{label} ids must be unique; {dup!r} appears twice")

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._index

    def __repr__(self) -> str:
        return f"IdMap({self.label!r}, num_ids={len(self)})"

    @property
    def ids(self) -> pd.Index:
        """External ids in index order."""
        return self._index

    def index(self, external_id: str) -> int:
        """Index of one id; raises UnknownIdError naming the label and the id."""
        try:
            return int(self._index.get_loc(external_id))
        except KeyError:
            raise UnknownIdError(f"unknown {self.label} id {external_id!r}") from None

    def indices(self, external_ids: Sequence[str] | pd.Series, missing: str = "raise") -> np.ndarray:
        """Vectorised lookup -> int64 array; `missing="raise"` raises on the first unknown id, "-1" returns -1."""
        idx = self._index.get_indexer(pd.Index(external_ids, dtype=object))
        if missing == "raise" and (idx < 0).any():
            bad = list(external_ids)[int(np.flatnonzero(idx < 0)[0])]
            raise UnknownIdError(f"unknown {self.label} id {bad!r}")
        return idx.astype(np.int64)

    def external(self, index: int | Sequence[int] | np.ndarray) -> str | list[str]:
        """External id(s) of index/indices."""
        if np.isscalar(index):
            return str(self._index[int(index)])
        return [str(x) for x in self._index[np.asarray(index, dtype=np.int64)]]

    def extend(self, new_ids: Iterable[str]) -> np.ndarray:
        """Add ids not yet present (in first-seen order); return the indices of all `new_ids`."""
        new = pd.Index(list(new_ids), dtype=object)
        fresh = new[~new.isin(self._index)].unique()
        if len(fresh):
            self._index = self._index.append(fresh)
        return self.indices(new)
