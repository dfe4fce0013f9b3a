"""Row-level validation of products, interactions and relations tables (as read by `kg.readers`).

Each `check_*` returns the clean rows (typed) and the problems found; the caller decides whether a
problem fails the build or skips the row.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .codes import factorize, isin
from .errors import RowProblem
from .readers import LINE
from .schema import PRODUCT_RELATIONS, normalize_brand, normalize_name, relation_type

__all__ = [
    "PRODUCT_COLUMNS", "INTERACTION_COLUMNS", "RELATION_COLUMNS", "DEFAULT_EVENT",
    "check_products", "check_interactions", "check_relations", "parse_timestamps",
]

# (required, optional) columns of each input file.
PRODUCT_COLUMNS = (("product_id",), ("title", "description", "brand", "categories", "price"))
INTERACTION_COLUMNS = (("user_id", "product_id"), ("timestamp", "event", "weight"))
RELATION_COLUMNS = (("product_id", "relation", "other_id"), ())
DEFAULT_EVENT = "interaction"

_ISO = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_NUM = re.compile(r"^\d+(\.\d+)?$")


def _problems(file: str, df: pd.DataFrame, mask: np.ndarray, field: str, reason: str) -> list[RowProblem]:
    idx = np.flatnonzero(mask)
    return [RowProblem(file, int(df[LINE].iat[i]), field, str(df[field].iat[i]), reason) for i in idx]


def _per_value(s: pd.Series, fn):
    """Apply the element-wise `fn` (Series -> (Series, mask) or Series) to the distinct values of `s` only and
    spread the result back to every row: interaction files repeat a handful of events, weights and dates."""
    codes, uniq = factorize(s)
    res = fn(pd.Series(uniq, dtype=object))
    spread = lambda r: pd.Series(r.array.take(codes), index=s.index, dtype=r.dtype, name=r.name)  # noqa: E731
    if isinstance(res, tuple):
        return spread(res[0]), res[1][codes]
    return spread(res)


def _bad_float(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parse a str column to float; empty -> NaN; returns (values, mask of unparseable or non-finite)."""
    vals = pd.to_numeric(s.where(s != "", None), errors="coerce").astype("float64")
    bad = ((s != "") & ~np.isfinite(vals.fillna(0.0))) | ((s != "") & vals.isna())
    return vals, bad.to_numpy(dtype=bool).copy()


def check_products(df: pd.DataFrame, file: str) -> tuple[pd.DataFrame, list[RowProblem]]:
    """Validate products -> (rows with product_id, title, description, brand, brand_key, categories, price, _line).

    Problems: empty product_id, unparseable/negative price, and a product_id repeated with conflicting
    fields (the first row wins; identical repeats are dropped silently).
    """
    probs: list[RowProblem] = []
    bad = (df["product_id"] == "").to_numpy().copy()
    probs += _problems(file, df, bad, "product_id", "empty product_id")
    price, bad_price = _bad_float(df["price"])
    bad_price &= ~bad
    probs += _problems(file, df, bad_price, "price", "price is not a number")
    neg = (price < 0).to_numpy(dtype=bool) & ~bad & ~bad_price
    probs += _problems(file, df, neg, "price", "price is negative")
    out = df.assign(price=price)[~(bad | bad_price | neg)]

    fields = ["title", "description", "brand", "categories", "price"]
    dup = out.duplicated("product_id", keep=False)
    if dup.any():
        d = out[dup]
        first = d.drop_duplicates("product_id").set_index("product_id")
        same = d.drop_duplicates(["product_id", *fields])
        conflicting = same[same.duplicated("product_id", keep="first")]
        for _, row in conflicting.iterrows():
            f0 = first.loc[row["product_id"]]
            field = next(f for f in fields if not (row[f] == f0[f] or (pd.isna(row[f]) and pd.isna(f0[f]))))
            probs.append(RowProblem(file, int(row[LINE]), field, str(row[field]),
                                    f"duplicate product_id {row['product_id']!r} with a different {field} "
                                    f"than line {int(f0[LINE])} ({str(f0[field])[:40]!r})"))
        out = out.drop_duplicates("product_id", keep="first")
    out = out.copy()
    names = {b: normalize_name(b) for b in pd.unique(out["brand"])}
    out["brand"] = [names[b] for b in out["brand"]]
    uniq = {b: normalize_brand(b) for b in pd.unique(out["brand"])}
    out["brand_key"] = out["brand"].map(uniq)
    return out.reset_index(drop=True), probs


def parse_timestamps(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """str -> nullable Int64 epoch seconds (UTC). Accepts epoch seconds or ISO dates/times; empty -> <NA>.

    Returns (values, mask of unparseable entries).
    """
    return _per_value(s, _parse_timestamps)


def _parse_timestamps(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    out = pd.Series(pd.NA, index=s.index, dtype="Int64")
    num = s.str.match(_NUM.pattern).to_numpy(dtype=bool)
    iso = s.str.match(_ISO.pattern).to_numpy(dtype=bool) & ~num
    if num.any():
        out[num] = pd.to_numeric(s[num]).astype("float64").round().astype("int64")
    bad = (s != "").to_numpy() & ~num & ~iso
    if iso.any():
        vals = s[iso]
        # zero-pad "2013-9-6" so that one fast ISO8601 parse handles every row
        vals = vals.str.replace(r"^(\d{4})-(\d{1,2})-(\d{1,2})",
                                lambda m: f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}", regex=True)
        dt = pd.to_datetime(vals, format="ISO8601", utc=True, errors="coerce")
        ok = dt.notna().to_numpy()
        idx = np.flatnonzero(iso)
        if ok.any():
            # pandas 3 picks the datetime resolution from the input: normalise through datetime64[s]
            secs = dt[ok].dt.tz_convert(None).astype("datetime64[s]").astype("int64")
            out.iloc[idx[ok]] = secs.to_numpy()
        bad[idx[~ok]] = True
    return out, bad


def check_interactions(df: pd.DataFrame, file: str, known_products: pd.Index) -> tuple[pd.DataFrame, list[RowProblem]]:
    """Validate interactions -> (rows with user_id, product_id, timestamp Int64, event, weight float, _line).

    Problems: empty ids, a product not in the catalog (`known_products`), an unparseable timestamp,
    a non-numeric weight.
    """
    probs: list[RowProblem] = []
    bad_u = (df["user_id"] == "").to_numpy().copy()
    probs += _problems(file, df, bad_u, "user_id", "empty user_id")
    bad_p = (df["product_id"] == "").to_numpy() & ~bad_u
    probs += _problems(file, df, bad_p, "product_id", "empty product_id")
    unknown = ~isin(df["product_id"], known_products) & ~bad_u & ~bad_p
    probs += _problems(file, df, unknown, "product_id",
                       "unknown product: not in the products file nor in the store's catalog")
    bad = bad_u | bad_p | unknown
    ts, bad_ts = parse_timestamps(df["timestamp"])
    bad_ts &= ~bad
    probs += _problems(file, df, bad_ts, "timestamp",
                       "unparseable timestamp: expected an ISO date/time (2014-04-18, 2014-04-18T10:30:00Z) "
                       "or epoch seconds")
    w, bad_w = _per_value(df["weight"], _bad_float)
    bad_w &= ~bad & ~bad_ts
    probs += _problems(file, df, bad_w, "weight", "weight is not a finite number")
    keep = ~(bad | bad_ts | bad_w)
    out = pd.DataFrame({  # no copies: an interactions file can have tens of millions of rows
        "user_id": df["user_id"], "product_id": df["product_id"], "timestamp": ts,
        "event": _per_value(df["event"], lambda e: e.where(e != "", DEFAULT_EVENT).str.lower()),
        "weight": w.fillna(1.0), LINE: df[LINE],
    }, copy=False)
    if not keep.all():
        out = out[keep]
    probs.sort(key=lambda p: p.line)
    return out.reset_index(drop=True), probs


def check_relations(df: pd.DataFrame, file: str, known_products: pd.Index) -> tuple[pd.DataFrame, list[RowProblem]]:
    """Validate relations -> (rows with product_id, type, other_id, _line).

    Problems: empty fields, `product_id` not in the catalog, a relation outside the allow-list,
    a product related to itself. `other_id` may be outside the catalog.
    """
    probs: list[RowProblem] = []
    bad = np.zeros(len(df), dtype=bool)
    for f in ("product_id", "relation", "other_id"):
        m = (df[f] == "").to_numpy() & ~bad
        probs += _problems(file, df, m, f, f"empty {f}")
        bad |= m
    unknown = ~df["product_id"].isin(known_products).to_numpy() & ~bad
    probs += _problems(file, df, unknown, "product_id",
                       "unknown product: not in the products file nor in the store's catalog")
    bad |= unknown
    uniq = {r: relation_type(r) for r in pd.unique(df["relation"])}
    types = df["relation"].map(uniq)
    m = types.isna().to_numpy() & ~bad
    probs += _problems(file, df, m, "relation",
                       f"unknown relation; allowed (any case): {', '.join(x.lower() for x in PRODUCT_RELATIONS)}")
    bad |= m
    m = (df["product_id"] == df["other_id"]).to_numpy() & ~bad
    probs += _problems(file, df, m, "other_id", "a product cannot be related to itself")
    bad |= m
    out = pd.DataFrame({"product_id": df["product_id"], "type": types, "other_id": df["other_id"],
                        LINE: df[LINE]})[~bad]
    probs.sort(key=lambda p: p.line)
    return out.drop_duplicates(["product_id", "type", "other_id"]).reset_index(drop=True), probs
