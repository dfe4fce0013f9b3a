"""The embedded graph store (the default, no server): one directory of Parquet tables.

Layout: `DIR/CURRENT` names the live version folder `DIR/graph-vNNNNNN/` (meta.json, nodes/*.parquet,
edges/*.parquet). A save writes a new version aside and then swaps CURRENT atomically, so a failed or
killed build leaves the previous graph intact. Other components keep their files beside it
(e.g. `DIR/text_cache/`).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from .build import log_stage
from .graph import EDGE_DTYPES, NODE_DTYPES, KnowledgeGraph, empty_edge_table
from .ingest import Delta
from .readers import string_columns
from .schema import NODE_LABELS, REL_TYPES

__all__ = ["EmbeddedStore", "FORMAT_VERSION"]

FORMAT_VERSION = 1
_CURRENT = "CURRENT"


class EmbeddedStore:
    """A graph store in a local directory; `load()` and `write()` round-trip a KnowledgeGraph exactly."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.path)!r})"

    @property
    def version_dir(self) -> Path | None:
        cur = self.path / _CURRENT
        if not cur.exists():
            return None
        return self.path / cur.read_text(encoding="utf-8").strip()

    def exists(self) -> bool:
        return self.version_dir is not None

    def meta(self) -> dict:
        vd = self.version_dir
        return json.loads((vd / "meta.json").read_text(encoding="utf-8")) if vd else {}

    def load(self) -> KnowledgeGraph:
        """The stored graph, or an empty one if the store is new."""
        vd = self.version_dir
        if vd is None:
            if self.path.exists() and not self.path.is_dir():
                raise NotADirectoryError(f"store path {self.path} exists and is not a directory")
            return KnowledgeGraph()
        log_stage("load store")
        meta = json.loads((vd / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{vd}: store format {meta.get('format_version')} is not {FORMAT_VERSION}")
        g = KnowledgeGraph()
        for label in NODE_LABELS:
            g.set_nodes(label, _read(vd / "nodes" / f"{label}.parquet", NODE_DTYPES[label]))
        for t in meta["relationship_types"]:
            g.edges[t] = _read(vd / "edges" / f"{t}.parquet", EDGE_DTYPES[t])
        return g

    def write(self, graph: KnowledgeGraph, delta: Delta | None = None, info: dict | None = None) -> bool:
        """Save `graph` as a new version (write aside, then swap). Skipped when `delta` says nothing changed
        and a version exists. Returns True if a new version was written."""
        if delta is not None and self.exists() and not any(vars(delta.changes).values()):
            return False
        log_stage("write store")
        self.path.mkdir(parents=True, exist_ok=True)
        old = self.version_dir
        n = int(old.name.rsplit("v", 1)[1]) + 1 if old else 1
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-graph-", dir=self.path))
        try:
            (tmp / "nodes").mkdir()
            (tmp / "edges").mkdir()
            for label in NODE_LABELS:
                _write(graph.nodes[label], tmp / "nodes" / f"{label}.parquet")
            rel_types = [t for t in REL_TYPES if t in graph.edges]
            for t in rel_types:
                _write(graph.edges[t], tmp / "edges" / f"{t}.parquet")
            meta = {"format_version": FORMAT_VERSION, "version": n, "written_at": time.time(),
                    "relationship_types": rel_types, "counts": graph.counts(), "info": info or {}}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            final = self.path / f"graph-v{n:06d}"
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        cur_tmp = self.path / f".{_CURRENT}.tmp"
        cur_tmp.write_text(final.name, encoding="utf-8")
        os.replace(cur_tmp, self.path / _CURRENT)  # the atomic swap
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        log_stage("written")
        return True


_WRITE_ROWS = 1 << 18


def _write(df: pd.DataFrame, path: Path) -> None:
    """`df.to_parquet(path, index=False)`, converted to Arrow a slice of rows at a time (one row group each):
    a whole-table Arrow copy of 4M product descriptions would cost GBs."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(df) <= _WRITE_ROWS:
        df.to_parquet(path, index=False)
        return
    schema = pa.Schema.from_pandas(df, preserve_index=False)
    with pq.ParquetWriter(path, schema) as w:
        for start in range(0, len(df), _WRITE_ROWS):
            w.write_table(pa.Table.from_pandas(df.iloc[start:start + _WRITE_ROWS], schema=schema,
                                               preserve_index=False))


def _read(path: Path, dtypes: dict[str, str]) -> pd.DataFrame:
    """One stored table, read batch by batch: long text becomes Python strings without a whole Arrow copy."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = pq.ParquetFile(path)
    schema = f.schema_arrow
    shared = [c for c, d in dtypes.items()  # strings without nulls: repeated values share one object
              if d == "object" and _is_string(schema.field(c).type) and _no_nulls(f, schema.get_field_index(c))]
    other: dict[str, list] = {c: [] for c in dtypes if c not in shared}

    def batches():
        for batch in f.iter_batches(batch_size=1 << 16):
            for c in other:
                other[c].append(batch.column(c))
            yield batch.select(shared)

    strings = string_columns(batches(), shared, strip=False)
    cols = {}
    for c, d in dtypes.items():
        if c in strings:
            cols[c] = strings.pop(c)
            continue
        col = pa.chunked_array(other.pop(c), type=schema.field(c).type)
        cols[c] = col.to_pandas().astype(object) if d == "object" else col.to_pandas().astype(d)
    return pd.DataFrame(cols, copy=False)


def _no_nulls(f, i: int) -> bool:
    """Column `i` of the Parquet file `f` has rows and, by every row group's statistics, no null."""
    meta = f.metadata
    if not meta.num_rows:
        return False
    for g in range(meta.num_row_groups):
        st = meta.row_group(g).column(i).statistics
        if st is None or not st.has_null_count or st.null_count:
            return False
    return True


def _is_string(t) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t)
