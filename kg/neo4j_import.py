"""The bulk path into Neo4j for big catalogs: `neo4j-admin database import full` from a KnowledgeGraph.

`Neo4jStore.write` sends Cypher `MERGE` batches through a running server; that is what incremental builds
need, but a first load of millions of relationships is many times faster with Neo4j's offline importer,
which writes the store files directly (the server must be stopped, and the database is replaced). This
module writes the importer's CSV files with exactly the layout `Neo4jStore.write` produces, so that
`Neo4jStore.load()` on the imported database returns a graph equal to the source and later incremental
`Neo4jStore.write` calls continue on top of it:

- one node file per label: `id:ID(<Label>)` (the external id, stored as the string property `id`; each
  label is its own id space), `idx:long` (the row in the in-memory table), and the label's properties
  with their types (`price:double`, `in_catalog:boolean`, `level:long`, strings);
- one relationship file per type: `:START_ID(<Label>)`, `:END_ID(<Label>)`, `:TYPE`, then `seq:long`,
  `timestamp:long`, `event`, `weight:double` for INTERACTED and `ord:long` (0, 1, ... in table order) for
  every other type;
- one `KGMeta` node with `format_version`, `version` (1: the import counts as the first write),
  `written_at`, `info_json` and `counts_json`.

A missing value (NaN, <NA>, None) is an empty unquoted field, which the importer leaves out (Neo4j
stores no nulls, as `Neo4jStore.write` leaves the property out); every string, the empty one included,
is quoted (`""` is a stored empty string), with inner quotes doubled as RFC 4180 says.

    files = write_import_files(graph, Path("/tmp/kg-import"))
    kg.neo4j_server.admin(server_config, *import_arguments(files))   # the server stopped
    # start the server, then Neo4jStore(...).ensure_schema(): the uniqueness constraints

`bulk_import` does all of it; `scripts/bulk_import_neo4j.py` is the command line.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import cypher
from .graph import EDGE_DTYPES, NODE_DTYPES, KnowledgeGraph
from .schema import INTERACTED, NODE_LABELS, REL_SPECS, REL_TYPES, check_label, check_rel_type

__all__ = ["ImportFiles", "write_import_files", "import_arguments", "node_header", "relationship_header",
           "META_HEADER", "bulk_import"]

_CHUNK = 200_000   # rows formatted at a time (bounds the memory of the formatted text)
_META_ID = "kgmeta"

# importer type of each in-memory dtype (strings need none: string is the default)
_TYPES = {"int64": "long", "Int64": "long", "float64": "double", "bool": "boolean", "object": "string"}


@dataclass
class ImportFiles:
    """What `write_import_files` wrote: node and relationship files per label / type, the meta node file,
    row counts, and the files whose strings span lines (the importer must be told)."""

    directory: Path
    nodes: dict[str, Path] = field(default_factory=dict)
    relationships: dict[str, Path] = field(default_factory=dict)
    meta: Path | None = None
    rows: dict[str, int] = field(default_factory=dict)
    multiline: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def node_rows(self) -> int:
        return sum(self.rows.get(label, 0) for label in self.nodes) + (1 if self.meta else 0)

    @property
    def relationship_rows(self) -> int:
        return sum(self.rows.get(t, 0) for t in self.relationships)

    @property
    def bytes(self) -> int:
        paths = [*self.nodes.values(), *self.relationships.values(), *([self.meta] if self.meta else [])]
        return sum(p.stat().st_size for p in paths)


# --- headers ---------------------------------------------------------------------------------------------
def _typed_name(name: str, dtype: str) -> str:
    return f"{name}:{_TYPES[dtype]}"


def node_header(label: str) -> list[str]:
    """`id:ID(<label>)`, `idx:long`, then the label's properties with their importer types."""
    check_label(label)
    props = [_typed_name(c, d) for c, d in NODE_DTYPES[label].items() if c != cypher.NODE_KEY]
    return [f"{cypher.NODE_KEY}:ID({label})", f"{cypher.NODE_INDEX}:long", *props]


def _rel_props(rel_type: str) -> list[tuple[str, str]]:
    """(property, dtype) stored on a relationship type, the order key first."""
    if rel_type == INTERACTED:
        dtypes = EDGE_DTYPES[rel_type]
        keys = cypher.REL_KEYS[rel_type]
        return [(k, dtypes[k]) for k in keys] + [(p, dtypes[p]) for p in REL_SPECS[rel_type].properties
                                                   if p not in keys]
    return [(cypher.ORD, "int64")]


def relationship_header(rel_type: str) -> list[str]:
    """`:START_ID(<src label>)`, `:END_ID(<dst label>)`, `:TYPE`, then the stored properties."""
    spec = REL_SPECS[check_rel_type(rel_type)]
    return [f":START_ID({spec.src})", f":END_ID({spec.dst})", ":TYPE",
            *(_typed_name(p, d) for p, d in _rel_props(rel_type))]


META_HEADER = [f":ID({cypher.META_LABEL})", "format_version:long", "version:long", "written_at:double",
               "info_json:string", "counts_json:string"]


# --- cells ---------------------------------------------------------------------------------------------
def _quoted(values: pd.Series) -> np.ndarray:
    """Strings quoted (inner quotes doubled); a missing value is an empty, unquoted field."""
    s = pd.Series(values, dtype=object).reset_index(drop=True)
    missing = s.isna().to_numpy()
    out = np.full(len(s), "", dtype=object)
    present = s[~missing]
    if len(present):
        text = present.astype(str)
        if text.str.contains('"', regex=False).any():
            text = text.str.replace('"', '""', regex=False)
        out[~missing] = ('"' + text + '"').to_numpy(dtype=object)
    return out


def _integers(values: pd.Series) -> np.ndarray:
    s = pd.Series(values).reset_index(drop=True)
    missing = s.isna().to_numpy()
    out = np.full(len(s), "", dtype=object)
    if (~missing).any():
        out[~missing] = s[~missing].astype("int64").astype(str).to_numpy(dtype=object)
    return out


def _float_text(x: float) -> str:
    if np.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(float(x))  # the shortest text that parses back to the same double


def _floats(values: pd.Series) -> np.ndarray:
    """Doubles as round-trip text; NaN is a missing value (the property is left out, as the store does)."""
    a = pd.Series(values, dtype="float64").to_numpy()
    out = np.full(len(a), "", dtype=object)
    present = ~np.isnan(a)
    whole = present & np.isfinite(a) & (np.abs(a) < 2**53) & (a == np.round(a))
    if whole.any():  # the common case (weights of 1.0, whole prices): no per-value repr
        out[whole] = np.char.add(a[whole].astype(np.int64).astype(str), ".0").astype(object)
    rest = present & ~whole
    if rest.any():
        out[rest] = [_float_text(x) for x in a[rest].tolist()]
    return out


def _booleans(values: pd.Series) -> np.ndarray:
    a = pd.Series(values).to_numpy(dtype=bool)
    return np.where(a, "true", "false").astype(object)


def _cells(values: pd.Series, dtype: str) -> np.ndarray:
    if dtype == "object":
        return _quoted(values)
    if dtype in ("int64", "Int64"):
        return _integers(values)
    if dtype == "float64":
        return _floats(values)
    if dtype == "bool":
        return _booleans(values)
    raise TypeError(f"no importer format for dtype {dtype}")


def _multiline(values: pd.Series) -> bool:
    s = pd.Series(values, dtype=object).dropna()
    return bool(len(s)) and bool(s.astype(str).str.contains(r"[\r\n]", regex=True).any())


# --- files ---------------------------------------------------------------------------------------------
def _write_csv(path: Path, header: list[str], chunks: Iterator[list[np.ndarray]]) -> int:
    """Header line, then one line per row of each chunk (a list of formatted columns)."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        for columns in chunks:
            if not len(columns[0]):
                continue
            line = columns[0].astype(object)
            for c in columns[1:]:
                line = line + "," + c
            f.write("\n".join(line.tolist()))
            f.write("\n")
            n += len(columns[0])
    return n


def _node_chunks(graph: KnowledgeGraph, label: str) -> Iterator[list[np.ndarray]]:
    table = graph.nodes[label]
    dtypes = NODE_DTYPES[label]
    for start in range(0, len(table), _CHUNK):
        sub = table.iloc[start:start + _CHUNK]
        idx = np.arange(start, start + len(sub), dtype=np.int64)
        cols = [_quoted(sub[cypher.NODE_KEY]), idx.astype(str).astype(object)]
        cols += [_cells(sub[c], d) for c, d in dtypes.items() if c != cypher.NODE_KEY]
        yield cols


def _relationship_chunks(graph: KnowledgeGraph, rel_type: str) -> Iterator[list[np.ndarray]]:
    table = graph.edges_of(rel_type)
    spec = REL_SPECS[rel_type]
    src_ids = graph.nodes[spec.src][cypher.NODE_KEY].to_numpy(dtype=object)
    dst_ids = graph.nodes[spec.dst][cypher.NODE_KEY].to_numpy(dtype=object)
    type_cell = np.asarray(f'"{rel_type}"', dtype=object)
    for start in range(0, len(table), _CHUNK):
        sub = table.iloc[start:start + _CHUNK]
        cols = [_quoted(pd.Series(src_ids[sub["src"].to_numpy()], dtype=object)),
                _quoted(pd.Series(dst_ids[sub["dst"].to_numpy()], dtype=object)),
                np.full(len(sub), type_cell, dtype=object)]
        for p, d in _rel_props(rel_type):
            if p == cypher.ORD and rel_type != INTERACTED:  # as Neo4jStore.write(graph): 0, 1, ... in table order
                cols.append(np.arange(start, start + len(sub), dtype=np.int64).astype(str).astype(object))
            else:
                cols.append(_cells(sub[p], d))
        yield cols


def meta_properties(graph: KnowledgeGraph, info: dict | None = None, written_at: float | None = None) -> dict:
    """The KGMeta node's properties, as `Neo4jStore.write` sets them after its first write."""
    from .neo4j_store import FORMAT_VERSION
    return {"format_version": FORMAT_VERSION, "version": 1,
            "written_at": time.time() if written_at is None else float(written_at),
            "info_json": json.dumps(info or {}, default=str), "counts_json": json.dumps(graph.counts())}


def write_import_files(graph: KnowledgeGraph, directory: str | Path, info: dict | None = None,
                       written_at: float | None = None) -> ImportFiles:
    """Write the importer's CSV files for `graph` into `directory` (created; existing files replaced).

    Labels without nodes and relationship types without relationships get no file."""
    t0 = time.perf_counter()
    out = ImportFiles(Path(directory))
    out.directory.mkdir(parents=True, exist_ok=True)
    for label in NODE_LABELS:
        table = graph.nodes[label]
        if not len(table):
            continue
        path = out.directory / f"nodes_{label}.csv"
        out.rows[label] = _write_csv(path, node_header(label), _node_chunks(graph, label))
        out.nodes[label] = path
        if any(_multiline(table[c]) for c, d in NODE_DTYPES[label].items() if d == "object"):
            out.multiline.append(path)
    for t in REL_TYPES:
        if not len(graph.edges_of(t)):
            continue
        path = out.directory / f"relationships_{t}.csv"
        out.rows[t] = _write_csv(path, relationship_header(t), _relationship_chunks(graph, t))
        out.relationships[t] = path
        if t == INTERACTED and _multiline(graph.edges_of(t)["event"]):
            out.multiline.append(path)
    props = meta_properties(graph, info, written_at)
    out.meta = out.directory / f"nodes_{cypher.META_LABEL}.csv"
    row = [np.asarray([f'"{_META_ID}"'], dtype=object)]
    for name in META_HEADER[1:]:
        key, kind = name.split(":")
        dtype = {"long": "int64", "double": "float64", "string": "object"}[kind]
        row.append(_cells(pd.Series([props[key]], dtype=object if dtype == "object" else dtype), dtype))
    _write_csv(out.meta, META_HEADER, iter([row]))
    if any("\n" in props[k] or "\r" in props[k] for k in ("info_json", "counts_json")):
        out.multiline.append(out.meta)
    out.seconds = time.perf_counter() - t0
    return out


def import_arguments(files: ImportFiles, database: str = "neo4j", *, threads: int | None = None,
                     max_off_heap_memory: str | None = None, report_file: Path | None = None) -> list[str]:
    """`neo4j-admin` arguments for `database import full` of `files` (replacing the database).

    Any bad entry fails the import (`--bad-tolerance=0`): the files come from a consistent graph, so a
    skipped row would be a bug, and `load()` must return the graph exactly."""
    # the database name first: the file options take any number of values and would swallow it
    args = ["database", "import", "full", database, "--overwrite-destination=true", "--input-encoding=UTF-8",
            "--bad-tolerance=0", "--skip-bad-relationships=false", "--skip-duplicate-nodes=false",
            "--ignore-empty-strings=false", "--trim-strings=false", "--legacy-style-quoting=false",
            f"--report-file={report_file or files.directory / 'import.report'}"]
    if threads:
        args.append(f"--threads={int(threads)}")
    if max_off_heap_memory:
        args.append(f"--max-off-heap-memory={max_off_heap_memory}")
    if files.multiline:
        args += ["--multiline-fields-format=v2", "--multiline-fields=" + ",".join(str(p) for p in files.multiline)]
    for label, path in files.nodes.items():
        args.append(f"--nodes={label}={path}")
    if files.meta is not None:
        args.append(f"--nodes={cypher.META_LABEL}={files.meta}")
    for path in files.relationships.values():  # the type comes from the :TYPE column
        args.append(f"--relationships={path}")
    return args


def bulk_import(graph: KnowledgeGraph, server: Any, csv_dir: str | Path, *, info: dict | None = None,
                threads: int | None = None, max_off_heap_memory: str | None = "2G", start: bool = True,
                keep_csv: bool = False) -> dict:
    """Replace the database of the server `server` (a `kg.neo4j_server.ServerConfig`) with `graph`.

    Writes the CSV files into `csv_dir`, stops the server if it runs, runs the importer, then (with
    `start`) starts the server and creates the uniqueness constraints (`Neo4jStore.ensure_schema`).
    Returns timings (csv_s, import_s, start_s, schema_s, total_s), row counts and the running server."""
    import shutil

    from . import neo4j_server as ns
    from .neo4j_store import Neo4jConfig, Neo4jStore

    t0 = time.perf_counter()
    files = write_import_files(graph, csv_dir, info=info)
    report: dict[str, Any] = {"csv_s": round(files.seconds, 3), "csv_bytes": files.bytes,
                              "nodes": files.node_rows, "relationships": files.relationship_rows}
    report["was_running"] = ns.stop(server.home)
    t1 = time.perf_counter()
    out = ns.admin(server, *import_arguments(files, threads=threads, max_off_heap_memory=max_off_heap_memory))
    report["import_s"] = round(time.perf_counter() - t1, 3)
    report["import_log_tail"] = "\n".join(out.stdout.strip().splitlines()[-8:])
    if not keep_csv:
        shutil.rmtree(files.directory, ignore_errors=True)
    if start:
        t2 = time.perf_counter()
        running = ns.start(server)
        report["start_s"] = round(time.perf_counter() - t2, 3)
        report["server"] = running
        t3 = time.perf_counter()
        with Neo4jStore(Neo4jConfig(uri=server.bolt_uri, user="neo4j", password=server.password),
                        show_progress=False) as store:
            store.ensure_schema()
        report["schema_s"] = round(time.perf_counter() - t3, 3)
    report["total_s"] = round(time.perf_counter() - t0, 3)
    return report
