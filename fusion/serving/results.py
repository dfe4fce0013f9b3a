"""What the query API (`fusion.Recommender`) returns and raises: result frames, explanations, id errors."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kg.idmap import UnknownIdError as _KgUnknownIdError

__all__ = ["Explanation", "UnknownIdError", "RESULT_COLUMNS", "result_frame", "batch_frame", "check_k", "check_id",
           "check_id_list"]

# Columns of every ranked result, in order (batch results put `user_id` / `source_id` first).
RESULT_COLUMNS = ("rank", "product_id", "title", "score", "brand", "category", "source")


class UnknownIdError(_KgUnknownIdError, ValueError):
    """A user or product id the recommender does not know; the message names the kind and the id.

    A `KeyError` (and `kg.UnknownIdError`) for lookups, and a `ValueError` for argument checking, so that
    either `except` catches it.
    """


@dataclass(frozen=True)
class Explanation:
    """One knowledge-graph path from something in the user's history to a recommended product.

    Attributes:
        text: the path in words ("You bought <X>, which has the same brand (Acme) as this.").
        score: how strongly the path supports the product (higher first; see `fusion.serving.explain`).
        nodes: the path's nodes from the user to the product, each `(label, id, name)`.
        relations: relationship type of each hop (`len(nodes) - 1` of them), e.g.
            `["INTERACTED", "HAS_BRAND", "HAS_BRAND"]`.
        kind: "brand", "category", "related" or "co_interaction".
        via: product id of the history item the path starts from.
    """

    text: str
    score: float
    nodes: list[tuple[str, str, str]] = field(default_factory=list)
    relations: list[str] = field(default_factory=list)
    kind: str = ""
    via: str = ""

    def __str__(self) -> str:
        return self.text


def check_k(k: object, name: str = "k") -> int:
    """`k` as a positive int, or ValueError saying what arrived."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise ValueError(f"{name} must be a positive int, got {k!r}")
    return int(k)


def check_id(value: object, kind: str) -> str:
    """An external id must be a str (ids are strings in the graph, also numeric-looking ones)."""
    if isinstance(value, str):
        return value
    hint = f" (ids are strings: did you mean {str(value)!r}?)" if isinstance(value, (int, np.integer)) else ""
    raise ValueError(f"{kind} id must be a str, got {type(value).__name__} {value!r}{hint}")


def check_id_list(values, kind: str, allow_empty: bool = False) -> list[str]:
    """A list of external ids (not a single str), each a str."""
    if isinstance(values, str):
        raise ValueError(f"{kind}_ids must be a list of ids, got a single str {values!r}")
    try:
        out = list(values)
    except TypeError:
        raise ValueError(f"{kind}_ids must be a list of ids, got {type(values).__name__}") from None
    if not out and not allow_empty:
        raise ValueError(f"{kind}_ids is empty")
    return [check_id(v, kind) for v in out]


def result_frame(ids: np.ndarray, titles: np.ndarray, brands: np.ndarray, categories: np.ndarray,
                 cols: np.ndarray, scores: np.ndarray, source: str | np.ndarray) -> pd.DataFrame:
    """One ranked list as a DataFrame with `RESULT_COLUMNS`; `cols` < 0 (padding) are dropped.

    Args:
        ids, titles, brands, categories: per-product object arrays (catalog column order).
        cols: int [k] product columns, best first; scores: float [k].
        source: "model" or "popular" (or one per row).
    """
    keep = cols >= 0
    c = cols[keep]
    src = source if isinstance(source, str) else np.asarray(source)[keep]
    return pd.DataFrame({
        "rank": np.arange(1, len(c) + 1, dtype=np.int64),
        "product_id": ids[c], "title": titles[c], "score": scores[keep].astype(np.float64),
        "brand": brands[c], "category": categories[c], "source": src,
    })


def batch_frame(key: str, keys: list[str], ids: np.ndarray, titles: np.ndarray, brands: np.ndarray,
                categories: np.ndarray, cols: np.ndarray, scores: np.ndarray, sources: list[str]) -> pd.DataFrame:
    """Ranked lists of many users / source products as one long frame: `key` column first, then
    `RESULT_COLUMNS`; cols [B, k] (-1 = padding, dropped), scores [B, k], one source per row of cols."""
    keep = cols >= 0
    per_row = keep.sum(axis=1)
    c = cols[keep]
    ranks = np.cumsum(keep, axis=1)[keep]
    return pd.DataFrame({
        key: np.repeat(np.asarray(keys, dtype=object), per_row),
        "rank": ranks.astype(np.int64),
        "product_id": ids[c], "title": titles[c], "score": scores[keep].astype(np.float64),
        "brand": brands[c], "category": categories[c],
        "source": np.repeat(np.asarray(sources, dtype=object), per_row),
    })
