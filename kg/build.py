"""Read, validate and merge input files into a KnowledgeGraph: the one pipeline both stores use."""
from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd
from tqdm.auto import tqdm

from .errors import InputError, RowProblem
from .graph import KnowledgeGraph
from .ingest import Delta, add_interactions, add_products, add_relations
from .readers import read_table
from .schema import PRODUCT
from .validate import (INTERACTION_COLUMNS, PRODUCT_COLUMNS, RELATION_COLUMNS, check_interactions,
                       check_products, check_relations)

__all__ = ["BuildResult", "OnError", "merge_files", "log_stage", "rss_gib"]

OnError = Literal["fail", "skip"]
_T0 = time.perf_counter()


def log_stage(name: str) -> None:
    """Print `kg-stage: NAME (peak RSS so far)` to stderr when the KG_STAGE_LOG environment variable is set.

    Benchmarks set it to say where a build spent its memory, or where it stopped when killed.
    """
    if os.environ.get("KG_STAGE_LOG"):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
        print(f"kg-stage: {name} [t={time.perf_counter() - _T0:.2f}s peak={peak:.2f}GiB rss={rss_gib():.2f}GiB]",
              file=sys.stderr, flush=True)


def rss_gib() -> float:
    """Resident memory now (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (OSError, ValueError):
        return 0.0


@dataclass
class BuildResult:
    """What one build did: the delta written, the rows skipped (skip mode) and how long it took."""

    delta: Delta = field(default_factory=Delta)
    skipped: list[RowProblem] = field(default_factory=list)
    seconds: float = 0.0


def merge_files(graph: KnowledgeGraph, products: str | Path | None = None,
                interactions: str | Path | None = None, relations: str | Path | None = None,
                on_error: OnError = "fail", show_progress: bool = True) -> BuildResult:
    """Validate every file first, then merge them into `graph` in place.

    With on_error="fail", any bad row raises InputError before `graph` is touched; with "skip",
    bad rows are left out and returned in `BuildResult.skipped`.
    """
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    t0 = time.perf_counter()
    skip = on_error == "skip"
    problems: list[RowProblem] = []
    steps = [s for s in (products, interactions, relations) if s is not None]
    bar = tqdm(total=2 * len(steps), desc="build graph", unit="step", disable=not show_progress)

    def read(path, cols, what, categorical=False):
        bar.set_postfix_str(f"read {Path(path).name}")
        log_stage(f"read {what}")
        df = read_table(path, *cols, problems=problems if skip else None, categorical=categorical)
        bar.update(1)
        return df

    catalog = graph.nodes[PRODUCT]
    known = pd.Index(catalog.loc[catalog["in_catalog"], "id"], dtype=object)
    prod_rows = inter_rows = rel_rows = None
    if products is not None:
        df = read(products, PRODUCT_COLUMNS, "products")
        log_stage("validate products")
        prod_rows, p = check_products(df, str(products))
        del df  # the raw strings can go before the next file is read
        problems += p
        known = known.append(pd.Index(prod_rows["product_id"], dtype=object)).unique()
    if interactions is not None:
        # ids as integer codes: tens of millions of rows hash each distinct id once (`kg.codes`)
        df = read(interactions, INTERACTION_COLUMNS, "interactions", categorical=True)
        log_stage("validate interactions")
        inter_rows, p = check_interactions(df, str(interactions), known)
        del df
        problems += p
    if relations is not None:
        df = read(relations, RELATION_COLUMNS, "relations")
        log_stage("validate relations")
        rel_rows, p = check_relations(df, str(relations), known)
        del df
        problems += p
    if problems and not skip:
        bar.close()
        raise InputError(problems)

    result = BuildResult(skipped=problems)
    pending = [(prod_rows, add_products, "products"), (inter_rows, add_interactions, "interactions"),
               (rel_rows, add_relations, "relations")]
    del prod_rows, inter_rows, rel_rows
    while pending:
        rows, fn, name = pending.pop(0)  # each file's rows are let go once merged (GBs at 1000x)
        if rows is not None:
            bar.set_postfix_str(f"merge {name}")
            log_stage(f"merge {name}")
            result.delta.merge(fn(graph, rows))
            bar.update(1)
        del rows
    bar.close()
    log_stage("merged")
    result.seconds = time.perf_counter() - t0
    return result
