"""Events a live shop sends (`Recommender.record`): their validation, and the append-only log that keeps them.

The log is a CSV file in the interactions format (user_id, product_id, timestamp, event, weight; timestamp in
epoch seconds), so that `scripts/build_graph.py --interactions LOG` (or `scripts/apply_events.py`) folds it
into the graph store by the build's identity rules: folding or replaying the same log twice adds nothing.
An append returns once its rows are written to the operating system (`durability="flush"`: they survive a
crash of the process, e.g. `kill -9`) or on disk (`"fsync"`: they survive a power cut too, at about a
millisecond more per call). A crash in the middle of an append can leave a torn last line: that event's
`record` never returned, and `read` drops it.
"""
from __future__ import annotations

import csv
import io
import math
import os
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from kg.validate import DEFAULT_EVENT, parse_timestamps

from .results import UnknownIdError

__all__ = ["EVENT_COLUMNS", "DURABILITY", "EventLog", "check_events", "event_row"]

EVENT_COLUMNS = ("user_id", "product_id", "timestamp", "event", "weight")
DURABILITY = ("flush", "fsync")


def _timestamp(value, where: str) -> int:
    """Epoch seconds (int) of a record's timestamp: None (now), int/float seconds, datetime, pd.Timestamp or ISO."""
    if value is None:
        return int(time.time())
    if isinstance(value, bool):
        raise ValueError(f"{where}timestamp must be epoch seconds, a datetime or an ISO date/time, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"{where}timestamp must be a finite number of epoch seconds, got {value!r}")
        return int(round(value))
    if isinstance(value, (datetime, pd.Timestamp)):
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
        return int(ts.timestamp())
    if isinstance(value, str):
        parsed, bad = parse_timestamps(pd.Series([value.strip()], dtype=object))
        if bad[0] or parsed.isna()[0]:
            raise ValueError(f"{where}timestamp {value!r} is not an ISO date/time (2014-04-18, "
                             "2014-04-18T10:30:00Z) nor epoch seconds")
        return int(parsed[0])
    raise ValueError(f"{where}timestamp must be epoch seconds, a datetime or an ISO date/time, "
                     f"got {type(value).__name__} {value!r}")


def event_row(user_id, product_id, event, timestamp, weight, catalog, where: str = "") -> tuple:
    """One validated event (user_id, product_id, timestamp, event, weight). UnknownIdError for a product the
    catalog does not hold; ValueError naming the field for anything else. `where` prefixes messages."""
    for name, value in (("user_id", user_id), ("product_id", product_id)):
        if not isinstance(value, (str, int, np.integer)) or isinstance(value, bool) or not str(value).strip():
            raise ValueError(f"{where}{name} must be a non-empty string, got {value!r}")
    user_id, product_id = str(user_id).strip(), str(product_id).strip()
    if product_id not in catalog:
        raise UnknownIdError(f"{where}unknown product id {product_id!r}: not in the model's catalog")
    if not isinstance(event, str) or not event.strip() or "\n" in event:
        raise ValueError(f"{where}event must be a non-empty one-line string such as 'purchase' or 'view', "
                         f"got {event!r}")
    if isinstance(weight, bool) or not isinstance(weight, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(weight)):
        raise ValueError(f"{where}weight must be a finite number, got {weight!r}")
    return user_id, product_id, _timestamp(timestamp, where), event.strip().lower(), float(weight)


def check_events(df: pd.DataFrame, catalog, source: str = "events") -> pd.DataFrame:
    """Validated events from a frame in the interactions format (user_id, product_id; optional timestamp,
    event, weight): a frame of EVENT_COLUMNS. Errors name the row (0-based position) and the field."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{source} must be a pandas DataFrame with columns user_id, product_id[, timestamp, "
                         f"event, weight], got {type(df).__name__}")
    missing = [c for c in ("user_id", "product_id") if c not in df.columns]
    if missing:
        raise ValueError(f"{source} has no column {', '.join(missing)} (columns: {', '.join(map(str, df.columns))})")
    n = len(df)

    def col(name, default):
        if name not in df.columns:
            return [default] * n
        return [default if v is None or (not isinstance(v, str) and pd.isna(v)) else v
                for v in df[name].tolist()]

    users, products = df["user_id"].tolist(), df["product_id"].tolist()
    stamps, events, weights = col("timestamp", None), col("event", DEFAULT_EVENT), col("weight", 1.0)
    rows = [event_row(users[i], products[i], events[i], stamps[i], weights[i], catalog,
                      where=f"{source} row {i}: ") for i in range(n)]
    return pd.DataFrame(rows, columns=list(EVENT_COLUMNS)).astype(
        {"user_id": object, "product_id": object, "timestamp": "int64", "event": object, "weight": "float64"})


class EventLog:
    """An append-only CSV log of events (see the module docstring). Thread-safe; one writer process."""

    def __init__(self, path: str | Path, durability: str = "flush") -> None:
        if durability not in DURABILITY:
            raise ValueError(f"durability must be one of {DURABILITY}, got {durability!r}")
        self.path = Path(path)
        self.durability = durability
        self._lock = threading.Lock()
        self._file = None

    def __repr__(self) -> str:
        return f"EventLog({str(self.path)!r}, durability={self.durability!r})"

    def _open(self):
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._repair()
            self._file = open(self.path, "a", newline="", encoding="utf-8")
            if self._file.tell() == 0:
                self._file.write(",".join(EVENT_COLUMNS) + "\n")
        return self._file

    def _repair(self) -> None:
        """Cut a torn last line (a crash mid-append) so that the next append starts on a line of its own."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if not size:
                return
            f.seek(max(0, size - 65536))
            tail = f.read()
            if tail.endswith(b"\n"):
                return
            cut = tail.rfind(b"\n")
            f.truncate(size - len(tail) + cut + 1 if cut >= 0 else 0)

    def append(self, rows) -> None:
        """Write validated rows (tuples in EVENT_COLUMNS order, or such a frame) and return once they are durable
        (see `durability`)."""
        if isinstance(rows, pd.DataFrame):
            rows = list(rows[list(EVENT_COLUMNS)].itertuples(index=False, name=None))
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for user_id, product_id, timestamp, event, weight in rows:
            w.writerow([user_id, product_id, int(timestamp), event, repr(float(weight))])
        with self._lock:
            f = self._open()
            f.write(buf.getvalue())
            f.flush()
            if self.durability == "fsync":
                os.fsync(f.fileno())

    def read(self) -> pd.DataFrame:
        """Every complete row of the log (EVENT_COLUMNS; a torn last line is left out), in append order."""
        if not self.path.exists():
            return pd.DataFrame({c: pd.Series(dtype=object) for c in EVENT_COLUMNS})
        raw = self.path.read_bytes()
        raw = raw[:raw.rfind(b"\n") + 1]
        df = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
        if tuple(df.columns) != EVENT_COLUMNS:
            raise ValueError(f"{self.path} is not an event log: its header is {', '.join(df.columns)}, expected "
                             f"{', '.join(EVENT_COLUMNS)}")
        return df

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
