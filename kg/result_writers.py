"""Where `kg.results.export_results` puts a model's results: Neo4j, files, or a printed dry run.

- `Neo4jResultWriter`: `Product.embedding` with the vector index `product_embedding`, and
  `RECOMMENDED` / `SIMILAR_TO` relationships, through `Neo4jStore` (batched, idempotent; a new model
  version replaces the old one's relationships and embeddings once the new ones are written).
- `CsvResultWriter`: the same rows as `recommendations.csv`, `similar.csv` and `embeddings.parquet`
  plus `export.json`, for the embedded store (no server). Files appear only when the export succeeds.
- `ParquetTopKWriter`: every user's top k streamed into one Parquet file, a row group per chunk (constant
  memory; `scripts/recommend_all.py`); embeddings and SIMILAR_TO are not its business.
- `DryRunWriter`: prints every statement the Neo4j writer would send with the rows it would get.
"""
from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from . import cypher
from .results import SOURCE_COLUMN, ResultWriter
from .schema import RECOMMENDED, SIMILAR_TO

__all__ = ["Neo4jResultWriter", "CsvResultWriter", "ParquetTopKWriter", "DryRunWriter", "CSV_FILES",
           "EMBEDDINGS_FILE"]

CSV_FILES: dict[str, str] = {RECOMMENDED: "recommendations.csv", SIMILAR_TO: "similar.csv"}
EMBEDDINGS_FILE = "embeddings.parquet"


class Neo4jResultWriter(ResultWriter):
    """Writes through a `Neo4jStore` (which must already hold the knowledge graph).

    Args:
        store: an open or openable `Neo4jStore`.
        similarity: vector index similarity function, `cosine` (default) or `euclidean`.
        await_index_s: how long to wait at the end for the vector index to come online.
    """

    name = "neo4j"

    def __init__(self, store: Any, similarity: str = "cosine", await_index_s: int = 300) -> None:
        super().__init__()
        self.store = store
        self.similarity = similarity
        self.await_index_s = await_index_s

    def begin(self, model: str, dimensions: int) -> None:
        from .neo4j_store import WriteCounters
        cypher.vector_index(dimensions, self.similarity)  # validate before touching the server
        if not self.store.exists():
            raise RuntimeError(f"{self.store!r} holds no knowledge graph to attach results to: build it first "
                               f"(scripts/build_graph.py ... --neo4j)")
        self.store.last_counters = WriteCounters()
        self.store.ensure_schema()
        self.report["vector_index_created"] = self.store.ensure_vector_index(dimensions, self.similarity)

    def embeddings(self, product_ids: list[str], vectors: np.ndarray, model: str) -> None:
        self._count("embeddings_sent", len(product_ids))
        self._count("embeddings_written", self.store.write_product_embeddings(product_ids, vectors, model))

    def output(self, rel_type: str, table: pd.DataFrame, model: str, sources: list[str]) -> None:
        self._count(f"{rel_type}_sent", len(table))
        self._count(f"{rel_type}_written", self.store.write_output(rel_type, table, model, sources))

    def finish(self, model: str, rel_types: tuple[str, ...]) -> None:
        self.report["removed"] = self.store.remove_other_models(model, rel_types)
        self.store.await_vector_index(self.await_index_s)
        self.report["counters"] = vars(self.store.last_counters).copy()

    def unmatched(self) -> dict[str, int]:
        """Rows sent whose user or product the database does not hold (the model and graph disagree)."""
        keys = [k[: -len("_sent")] for k in self.report if k.endswith("_sent")]
        out = {k: self.report[f"{k}_sent"] - self.report.get(f"{k}_written", 0) for k in keys}
        return {k: v for k, v in out.items() if v}


class CsvResultWriter(ResultWriter):
    """Writes `recommendations.csv` (user_id, product_id, rank, score, model), `similar.csv` (source_id,
    product_id, rank, score, model), `embeddings.parquet` (product_id, embedding, model) and `export.json`
    into `directory`, each replacing the previous file only at `finish` (a failed export leaves them)."""

    name = "csv"

    def __init__(self, directory: str | Path) -> None:
        super().__init__()
        self.directory = Path(directory)
        self._files: dict[str, TextIO] = {}
        self._writers: dict[str, Any] = {}
        self._ids: list[str] = []
        self._vectors: list[np.ndarray] = []
        self._meta: dict[str, Any] = {}

    def _tmp(self, name: str) -> Path:
        return self.directory / f".{name}.tmp"

    def begin(self, model: str, dimensions: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._meta = {"model": model, "dimensions": dimensions}

    def embeddings(self, product_ids: list[str], vectors: np.ndarray, model: str) -> None:
        self._ids.extend(map(str, product_ids))
        self._vectors.append(np.asarray(vectors, dtype=np.float32))
        self._count("embeddings", len(product_ids))

    def output(self, rel_type: str, table: pd.DataFrame, model: str, sources: list[str]) -> None:
        if rel_type not in self._writers:
            f = self._files[rel_type] = open(self._tmp(CSV_FILES[rel_type]), "w", encoding="utf-8", newline="")
            self._writers[rel_type] = csv.writer(f)
            self._writers[rel_type].writerow([SOURCE_COLUMN[rel_type], "product_id", "rank", "score", "model"])
        rows = zip(table["source_id"].tolist(), table["product_id"].tolist(), table["rank"].tolist(),
                   (f"{s:.6g}" for s in table["score"].tolist()))
        self._writers[rel_type].writerows([*r, model] for r in rows)
        self._count(rel_type, len(table))

    def finish(self, model: str, rel_types: tuple[str, ...]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        for f in self._files.values():
            f.close()
        d = int(self._meta["dimensions"])
        flat = np.concatenate(self._vectors).reshape(-1) if self._vectors else np.zeros(0, np.float32)
        table = pa.table({"product_id": pa.array(self._ids, pa.string()),
                          "embedding": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), d),
                          "model": pa.array([model] * len(self._ids), pa.string())})
        pq.write_table(table, self._tmp(EMBEDDINGS_FILE))
        files = {"embeddings": EMBEDDINGS_FILE}
        os.replace(self._tmp(EMBEDDINGS_FILE), self.directory / EMBEDDINGS_FILE)
        for rel_type in rel_types:
            name = CSV_FILES[rel_type]
            if rel_type not in self._files:  # asked, but no source had a row: an empty file with its header
                self.output(rel_type, pd.DataFrame(columns=["source_id", "product_id", "rank", "score"]), model, [])
                self._files[rel_type].close()
            os.replace(self._tmp(name), self.directory / name)
            files[rel_type] = name
        meta = {**self._meta, "files": files, "rows": {k: v for k, v in self.report.items()}}
        (self.directory / "export.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        self.report["directory"] = str(self.directory)

    def abort(self) -> None:
        for f in self._files.values():
            f.close()
        for name in (*CSV_FILES.values(), EMBEDDINGS_FILE):
            self._tmp(name).unlink(missing_ok=True)


class ParquetTopKWriter(ResultWriter):
    """RECOMMENDED rows as one Parquet file (user_id, rank, product_id, score, model), written chunk by chunk
    into `path`'s temporary sibling and moved into place at `finish` (a failed run leaves no file)."""

    name = "parquet"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._writer = None

    @property
    def _tmp(self) -> Path:
        return self.path.with_name(f".{self.path.name}.tmp")

    def _schema(self):
        import pyarrow as pa
        return pa.schema([("user_id", pa.string()), ("rank", pa.int32()), ("product_id", pa.string()),
                          ("score", pa.float32()), ("model", pa.string())])

    def begin(self, model: str, dimensions: int) -> None:
        import pyarrow.parquet as pq
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self._tmp, self._schema(), compression="zstd")

    def output(self, rel_type: str, table: pd.DataFrame, model: str, sources: list[str]) -> None:
        import pyarrow as pa
        if rel_type != RECOMMENDED:
            return
        self._writer.write_table(pa.table({
            "user_id": pa.array(table["source_id"].astype(str).tolist(), pa.string()),
            "rank": pa.array(table["rank"].to_numpy(np.int32)),
            "product_id": pa.array(table["product_id"].astype(str).tolist(), pa.string()),
            "score": pa.array(table["score"].to_numpy(np.float32)),
            "model": pa.array([model] * len(table), pa.string())}, schema=self._schema()))
        self._count(rel_type, len(table))

    def finish(self, model: str, rel_types: tuple[str, ...]) -> None:
        self._writer.close()
        os.replace(self._tmp, self.path)
        self.report["file"] = str(self.path)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._tmp.unlink(missing_ok=True)


class DryRunWriter(ResultWriter):
    """Prints, at `finish`, each statement the Neo4j writer would send, in order, with its rows and batches.

    Reads and conditional or repeated statements are marked. Nothing is written anywhere."""

    name = "dry-run"

    def __init__(self, batch_size: int = 1000, out: TextIO | None = None, similarity: str = "cosine") -> None:
        super().__init__()
        self.batch_size = batch_size
        self.out = out
        self.similarity = similarity
        self._dimensions = 0
        self._rows: dict[str, int] = {}

    def begin(self, model: str, dimensions: int) -> None:
        self._dimensions = dimensions
        cypher.vector_index(dimensions, self.similarity)

    def embeddings(self, product_ids: list[str], vectors: np.ndarray, model: str) -> None:
        self._add(cypher.SET_EMBEDDINGS, len(product_ids))

    def output(self, rel_type: str, table: pd.DataFrame, model: str, sources: list[str]) -> None:
        self._add(cypher.merge_output(rel_type), len(table))
        self._add(cypher.prune_output(rel_type), len(sources))

    def _add(self, statement: str, rows: int) -> None:
        batches = -(-rows // self.batch_size)
        self._rows[statement] = self._rows.get(statement, 0) + rows
        self.report.setdefault("batches", {})
        self.report["batches"][statement] = self.report["batches"].get(statement, 0) + batches

    def plan(self, model: str, rel_types: tuple[str, ...]) -> list[tuple[str, str]]:
        """(note, statement) in the order the Neo4j writer sends them."""
        steps: list[tuple[str, str]] = [("read: the database must hold a knowledge graph", cypher.ANY_GRAPH_NODE)]
        steps += [("schema", s) for s in cypher.schema_statements()]
        steps.append(("read: the current vector index, if any", cypher.SHOW_INDEXES))
        steps.append(("schema, only if the index has another dimension or similarity", cypher.DROP_VECTOR_INDEX))
        steps += [("schema", s) for s in cypher.output_schema_statements(self._dimensions, self.similarity)]
        batches = self.report.get("batches", {})
        for statement, rows in self._rows.items():
            steps.append((f"{rows:,} row(s) in {batches[statement]:,} batch(es) of <= {self.batch_size:,}; "
                          f"$model = {model!r}", statement))
        for t in rel_types:
            steps.append((f"read: the model versions stored on {t}", cypher.output_models(t)))
            steps.append((f"for each stored model $old other than {model!r}, repeated until 0 deleted",
                          cypher.delete_output_model(t)))
        steps.append((f"repeated until 0 cleared; $model = {model!r}", cypher.CLEAR_OTHER_EMBEDDINGS))
        steps.append((f"wait for the index; $name = {cypher.VECTOR_INDEX!r}", cypher.AWAIT_INDEX))
        return steps

    def finish(self, model: str, rel_types: tuple[str, ...]) -> None:
        out = self.out or sys.stdout
        steps = self.plan(model, rel_types)
        print(f"-- dry run: nothing is written; {len(steps)} statements the Neo4j export would send, in order",
              file=out)
        for note, statement in steps:
            print(f"\n// {note}\n{statement};", file=out)
        self.report["rows"] = dict(self._rows)
        self.report["statements"] = [s for _, s in steps]
