"""A trained model's results in the graph's terms: tidy top-k tables, rows for Neo4j, and the export loop.

`export_results(source, writers, user_ids)` asks a recommender for its product embeddings, each
product's nearest products and each user's top k, one chunk at a time, and hands every chunk to the
writers (`kg.result_writers`: Neo4j, CSV/Parquet files, or a dry run that prints the statements).
The source is anything with the attributes of `ResultSource` (`fusion.Recommender` has them); kg never
imports the model, it only sees ids, arrays and DataFrames.

Tidy top-k table: columns `source_id`, `product_id`, `rank` (1 = best, no gaps), `score`, one row per
(source, product); padding rows (no product, non-finite score) are dropped.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .cypher import check_dimensions
from .schema import OUTPUT_REL_SPECS, RECOMMENDED, SIMILAR_TO, check_output_rel_type

__all__ = ["ResultSource", "ResultWriter", "TIDY_COLUMNS", "SOURCE_COLUMN", "check_model_version",
           "tidy_top_k", "top_k_rows", "keep_rows", "embedding_rows", "ExportSummary", "export_results"]

TIDY_COLUMNS = ("source_id", "product_id", "rank", "score")
# the source column of the recommender's tables, per output relationship type
SOURCE_COLUMN: dict[str, str] = {RECOMMENDED: "user_id", SIMILAR_TO: "source_id"}


class ResultSource(Protocol):
    """What the export needs from a trained recommender (`fusion.Recommender`)."""

    product_ids: Sequence[str]
    product_vectors: np.ndarray  # float32 [len(product_ids), d]
    model_version: str

    def recommend_batch(self, user_ids: Sequence[str], k: int = 10, exclude_seen: bool = True) -> pd.DataFrame: ...

    def similar_batch(self, product_ids: Sequence[str], k: int = 10) -> pd.DataFrame: ...


class ResultWriter:
    """Receives an export chunk by chunk. Subclasses override the steps they need; `report` says what
    they did (rows sent, rows written, relationships removed, files)."""

    name = "writer"

    def __init__(self) -> None:
        self.report: dict[str, Any] = {}

    def begin(self, model: str, dimensions: int) -> None:
        """Before anything else: create indexes, open files."""

    def embeddings(self, product_ids: list[str], vectors: np.ndarray, model: str) -> None:
        """One chunk of product vectors."""

    def output(self, rel_type: str, table: pd.DataFrame, model: str, sources: list[str]) -> None:
        """One chunk of a tidy top-k table; `sources` are all sources asked, including any without a row."""

    def finish(self, model: str, rel_types: tuple[str, ...]) -> None:
        """After the last chunk: remove what other model versions left (for `rel_types`), close files."""

    def abort(self) -> None:
        """The export failed: drop anything half written that a re-run would not overwrite."""

    def _count(self, key: str, n: int) -> None:
        self.report[key] = self.report.get(key, 0) + int(n)


def check_model_version(model: object) -> str:
    """A model version is a non-empty string (it is stored on every relationship and embedding)."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model version must be a non-empty string, got {model!r}")
    return model


def tidy_top_k(table: pd.DataFrame, source_col: str | None = None, *, drop_self: bool = False) -> pd.DataFrame:
    """A recommender's top-k table as a tidy one (see the module docstring).

    Args:
        table: rows with the source column, `product_id`, `score` and optionally `rank` (any base;
            it orders the rows, else the score does).
        source_col: the source column; None: `source_id` if present, else `user_id`.
        drop_self: drop rows whose product is the source (for product-to-product tables).
    """
    if source_col is None:
        source_col = "source_id" if "source_id" in table.columns else "user_id"
    missing = [c for c in (source_col, "product_id", "score") if c not in table.columns]
    if missing:
        raise ValueError(f"top-k table lacks column(s) {missing}; it has {list(table.columns)}")
    score = pd.to_numeric(table["score"], errors="coerce").to_numpy(dtype=np.float64)
    order = (pd.to_numeric(table["rank"], errors="coerce").to_numpy(dtype=np.float64)
             if "rank" in table.columns else -score)
    keep = table[source_col].notna().to_numpy() & table["product_id"].notna().to_numpy() & np.isfinite(score)
    t = pd.DataFrame({"source_id": table[source_col].to_numpy(dtype=object)[keep].astype(str),
                      "product_id": table["product_id"].to_numpy(dtype=object)[keep].astype(str),
                      "order": order[keep], "score": score[keep]})
    if drop_self:
        t = t[t["source_id"] != t["product_id"]]
    t["_src"] = pd.factorize(t["source_id"])[0]  # sources keep their first-seen order
    t = t.sort_values(["_src", "order"], kind="stable").drop_duplicates(["source_id", "product_id"])
    t["rank"] = t.groupby("_src").cumcount().astype(np.int64) + 1
    return t[list(TIDY_COLUMNS)].reset_index(drop=True)


def top_k_rows(tidy: pd.DataFrame) -> list[dict]:
    """`[{src_id, dst_id, score, rank}]` (Python values) for `cypher.merge_output`."""
    return [{"src_id": s, "dst_id": d, "score": float(sc), "rank": int(r)}
            for s, d, sc, r in zip(tidy["source_id"].tolist(), tidy["product_id"].tolist(),
                                   tidy["score"].tolist(), tidy["rank"].tolist())]


def keep_rows(tidy: pd.DataFrame, sources: Sequence[str] | None = None) -> list[dict]:
    """`[{src_id, keep}]` for `cypher.prune_output`: each source's new top-k product ids, for every source
    in `sources` (default: those in `tidy`); a source without rows keeps nothing."""
    groups = tidy.groupby("source_id", sort=False)["product_id"].agg(list).to_dict() if len(tidy) else {}
    names = list(dict.fromkeys(map(str, sources))) if sources is not None else list(groups)
    return [{"src_id": s, "keep": groups.get(s, [])} for s in names]


def embedding_rows(product_ids: Sequence[str], vectors: np.ndarray) -> list[dict]:
    """`[{id, embedding}]` for `cypher.SET_EMBEDDINGS`; checks shapes and that every value is finite."""
    v = np.asarray(vectors)
    if v.ndim != 2 or v.shape[0] != len(product_ids):
        raise ValueError(f"product vectors must be [{len(product_ids)}, d] for {len(product_ids)} product ids, "
                         f"got shape {v.shape}")
    check_dimensions(v.shape[1])
    bad = ~np.isfinite(v).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"product {product_ids[i]!r} has a non-finite embedding value "
                         f"({int(bad.sum())} product(s) in all)")
    return [{"id": str(p), "embedding": row} for p, row in zip(product_ids, v.astype(np.float64).tolist())]


@dataclass
class ExportSummary:
    """What `export_results` asked the model and handed to the writers (`reports`: each writer's report)."""

    model: str
    dimensions: int
    products: int = 0
    users: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    reports: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def export_results(source: ResultSource, writers: Sequence[ResultWriter], user_ids: Sequence[str], *,
                   k: int = 10, similar_k: int = 10, chunk_size: int = 1000,
                   show_progress: bool = True) -> ExportSummary:
    """Embeddings, SIMILAR_TO (each product's `similar_k` nearest) and RECOMMENDED (each user's top `k`,
    seen products excluded) from `source` to every writer, `chunk_size` sources at a time.

    `k=0` or `similar_k=0` skips that part (and leaves what earlier exports wrote for it alone).
    """
    t0 = time.perf_counter()
    if k < 0 or similar_k < 0 or chunk_size < 1:
        raise ValueError(f"k and similar_k must be >= 0 and chunk_size >= 1, got {k}, {similar_k}, {chunk_size}")
    model = check_model_version(source.model_version)
    ids = [str(p) for p in source.product_ids]
    vectors = np.asarray(source.product_vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(ids):
        raise ValueError(f"product_vectors must be [{len(ids)}, d], got shape {vectors.shape}")
    summary = ExportSummary(model=model, dimensions=check_dimensions(vectors.shape[1]),
                            products=len(ids), users=len(user_ids) if k else 0)
    parts = [(SIMILAR_TO, ids, similar_k), (RECOMMENDED, [str(u) for u in user_ids], k)]
    try:
        for w in writers:
            w.begin(model, summary.dimensions)
        with tqdm(total=len(ids), desc="embeddings", unit="product", disable=not show_progress) as bar:
            for start in range(0, len(ids), chunk_size):
                chunk = ids[start:start + chunk_size]
                for w in writers:
                    w.embeddings(list(chunk), vectors[start:start + chunk_size], model)
                bar.update(len(chunk))
        for rel_type, sources, top in parts:
            if not top:
                continue
            spec = OUTPUT_REL_SPECS[check_output_rel_type(rel_type)]
            summary.rows[rel_type] = 0
            with tqdm(total=len(sources), desc=rel_type, unit=spec.src.lower(), disable=not show_progress) as bar:
                for chunk in _chunks(sources, chunk_size):
                    raw = (source.recommend_batch(list(chunk), k=top, exclude_seen=True) if rel_type == RECOMMENDED
                           else source.similar_batch(list(chunk), k=top))
                    table = tidy_top_k(raw, SOURCE_COLUMN[rel_type], drop_self=rel_type == SIMILAR_TO)
                    summary.rows[rel_type] += len(table)
                    for w in writers:
                        w.output(rel_type, table, model, list(chunk))
                    bar.update(len(chunk))
        done = tuple(t for t, _, top in parts if top)
        for w in writers:
            w.finish(model, done)
    except BaseException:
        for w in writers:
            w.abort()
        raise
    summary.reports = {w.name: w.report for w in writers}
    summary.seconds = time.perf_counter() - t0
    return summary
