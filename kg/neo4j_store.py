"""The Neo4j graph store: the knowledge graph in a Neo4j 5 database, written incrementally.

Same protocol as `EmbeddedStore`: `load()` reads the whole graph back into a `KnowledgeGraph` (so
Neo4j can be the source of truth) and `write(graph, delta)` writes what the `Delta` of a build says
changed: upserted nodes, deleted relationships, then created relationships, each in batched
`UNWIND $rows ... MERGE` statements (one managed transaction per batch). Every statement is MERGE or
an exact-match DELETE, so writing the same delta twice changes nothing and a write interrupted half
way is completed by running the build again. The one exception is the first write into a database
without a knowledge graph, which CREATEs (nothing can be there to match; see `write`).

The delta only says *which* nodes and relationships to touch; their values, node indices and edge
order are taken from `graph`, the in-memory truth after the build. All Cypher lives in `kg.cypher`.

A trained model's results go in beside the graph (`ensure_vector_index`, `write_product_embeddings`,
`write_recommendations`, `write_similar`, `remove_other_models`; `kg.results.export_results` drives
them): they are never read back by `load()`.

Usage::

    with Neo4jStore(Neo4jConfig.from_env()) as store:
        graph = store.load()
        result = kg.merge_files(graph, products="products.csv", interactions="events.csv")
        store.write(graph, result.delta)
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import cypher
from .graph import EDGE_DTYPES, NODE_DTYPES, KnowledgeGraph
from .ingest import Delta
from .results import check_model_version, embedding_rows, keep_rows, tidy_top_k, top_k_rows
from .schema import (INTERACTED, NODE_LABELS, NODE_PROPERTIES, OUTPUT_REL_TYPES, RECOMMENDED, REL_SPECS, REL_TYPES,
                     SIMILAR_TO, check_output_rel_type)

__all__ = ["Neo4jConfig", "Neo4jStore", "Neo4jConnectionError", "WriteCounters", "FORMAT_VERSION",
           "add_connection_arguments", "config_from_args"]

FORMAT_VERSION = 1
_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
_ENV_HINT = ("check NEO4J_URI, NEO4J_USERNAME (or NEO4J_USER), NEO4J_PASSWORD and NEO4J_DATABASE "
             "or the matching --neo4j-* flags")


def _sleep(seconds: float) -> None:  # a seam for the unit tests
    time.sleep(seconds)


class Neo4jConnectionError(ConnectionError):
    """The server could not be reached (after the configured retries) or refused the credentials."""


@dataclass
class Neo4jConfig:
    """How to reach the server and how to write to it.

    Args:
        uri: `bolt://host:7687` or `neo4j://host:7687` (`+s` / `+ssc` for TLS).
        user: user name.
        password: password (left out of `repr`).
        database: database name; None = the server's default database.
        batch_size: rows per `UNWIND $rows` statement (default 5000).
        max_retries: connection attempts before giving up (default 5).
        retry_wait_s: wait before the second attempt; doubles after each failure (default 1.0).
        connect_timeout_s: socket timeout of one connection attempt (default 10.0).
        retry_time_s: how long the driver retries a statement the server did not answer (a restart, a
            lost connection) before the store gives up with Neo4jConnectionError (default 15.0).
    """

    uri: str
    user: str
    password: str = field(repr=False)
    database: str | None = None
    batch_size: int = 5000
    max_retries: int = 5
    retry_wait_s: float = 1.0
    connect_timeout_s: float = 10.0
    retry_time_s: float = 15.0

    def __post_init__(self) -> None:
        scheme = self.uri.split("://", 1)[0] if "://" in self.uri else ""
        if scheme not in _SCHEMES:
            raise ValueError(f"Neo4j URI {self.uri!r} must start with one of "
                             f"{', '.join(s + '://' for s in _SCHEMES)}")
        if not self.password:
            raise ValueError("Neo4j password is empty: set NEO4J_PASSWORD or pass --neo4j-password")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_retries < 1:
            raise ValueError(f"max_retries must be >= 1, got {self.max_retries}")
        if self.retry_wait_s < 0 or self.connect_timeout_s <= 0 or self.retry_time_s < 0:
            raise ValueError(f"retry_wait_s and retry_time_s must be >= 0 and connect_timeout_s > 0, "
                             f"got {self.retry_wait_s}, {self.retry_time_s} and {self.connect_timeout_s}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Neo4jConfig":
        """Config from NEO4J_URI, NEO4J_USERNAME (falling back to NEO4J_USER, then "neo4j"),
        NEO4J_PASSWORD and NEO4J_DATABASE; `overrides` (e.g. command-line flags) win unless None."""
        env = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown Neo4jConfig field(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {
            "uri": env.get("NEO4J_URI") or None,
            "user": env.get("NEO4J_USERNAME") or env.get("NEO4J_USER") or "neo4j",
            "password": env.get("NEO4J_PASSWORD") or None,
            "database": env.get("NEO4J_DATABASE") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if not values["uri"]:
            raise ValueError("no Neo4j URI: set NEO4J_URI (e.g. bolt://localhost:7687) or pass --neo4j-uri")
        if not values["password"]:
            raise ValueError("no Neo4j password: set NEO4J_PASSWORD (the one docker-compose.yml was "
                             "started with) or pass --neo4j-password")
        return cls(**values)


def add_connection_arguments(parser, flag_help: str):
    """The `--neo4j` flag and the `--neo4j-uri/-user/-password/-database` options every script shares
    (each defaults to its environment variable). Returns the argument group, for script-specific options."""
    group = parser.add_argument_group("Neo4j (values default to NEO4J_URI, NEO4J_USERNAME/NEO4J_USER, "
                                      "NEO4J_PASSWORD, NEO4J_DATABASE)")
    group.add_argument("--neo4j", action="store_true", help=flag_help)
    for name in ("uri", "user", "password", "database"):
        group.add_argument(f"--neo4j-{name}")
    return group


def config_from_args(args, **extra: Any) -> Neo4jConfig:
    """`Neo4jConfig.from_env` with the options of `add_connection_arguments` (and `extra`) winning."""
    return Neo4jConfig.from_env(uri=args.neo4j_uri, user=args.neo4j_user, password=args.neo4j_password,
                                database=args.neo4j_database, **extra)


@dataclass
class WriteCounters:
    """What the server reported for one `write()`, summed over its statements."""

    nodes_created: int = 0
    relationships_created: int = 0
    relationships_deleted: int = 0
    properties_set: int = 0
    statements: int = 0

    def add(self, counters: Any) -> None:
        self.nodes_created += counters.nodes_created
        self.relationships_created += counters.relationships_created
        self.relationships_deleted += counters.relationships_deleted
        self.properties_set += counters.properties_set
        self.statements += 1


class Neo4jStore:
    """A KnowledgeGraph in Neo4j; `load()` and `write()` as in `EmbeddedStore`.

    Args:
        config: connection and batching settings (`Neo4jConfig.from_env()`).
        driver: an open `neo4j.Driver` to use instead of creating one (tests inject a fake).
        show_progress: show a tqdm bar while writing.
    """

    def __init__(self, config: Neo4jConfig, driver: Any = None, *, show_progress: bool = True) -> None:
        self.config = config
        self.show_progress = show_progress
        self.last_counters = WriteCounters()
        self._driver = driver
        self._owns_driver = driver is None
        self._verified = False

    def __repr__(self) -> str:
        return f"Neo4jStore({self.config.uri!r}, database={self.config.database!r})"

    def __enter__(self) -> "Neo4jStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- connection -------------------------------------------------------------------------------------
    def connect(self) -> Any:
        """The driver, connected: verifies connectivity with up to `max_retries` attempts and
        exponential backoff, then raises Neo4jConnectionError naming the URI and the settings to check."""
        if self._driver is not None and self._verified:
            return self._driver
        import neo4j
        from neo4j.exceptions import AuthError, DatabaseUnavailable, ServiceUnavailable

        cfg = self.config
        if self._driver is None:
            self._driver = neo4j.GraphDatabase.driver(cfg.uri, auth=(cfg.user, cfg.password),
                                                      connection_timeout=cfg.connect_timeout_s,
                                                      max_transaction_retry_time=cfg.retry_time_s,
                                                      # an empty database has none of our labels yet: no
                                                      # "unknown label" warning per read
                                                      notifications_disabled_classifications=[
                                                          neo4j.NotificationDisabledClassification.UNRECOGNIZED])
            self._owns_driver = True
        wait, last = cfg.retry_wait_s, None
        for attempt in range(1, cfg.max_retries + 1):
            try:
                self._driver.verify_connectivity()
                self._verified = True
                return self._driver
            except AuthError as e:
                raise Neo4jConnectionError(
                    f"Neo4j at {cfg.uri} refused the credentials of user {cfg.user!r} ({e}); {_ENV_HINT}") from e
            except (ServiceUnavailable, DatabaseUnavailable, OSError) as e:
                last = e
                if attempt < cfg.max_retries:
                    _sleep(wait)
                    wait *= 2
        raise Neo4jConnectionError(
            f"cannot reach Neo4j at {cfg.uri} after {cfg.max_retries} attempts ({type(last).__name__}: {last}). "
            f"Is the server running (`make neo4j` or `docker compose up -d`, see docs/neo4j.md)? {_ENV_HINT}") from last

    def close(self) -> None:
        if self._driver is not None and self._owns_driver:
            self._driver.close()
            self._driver = None
        self._verified = False

    def _run(self, query: str, params: dict[str, Any] | None = None, *, read: bool = False) -> Any:
        import neo4j
        driver = self.connect()
        with self._lost_connection(query):
            return driver.execute_query(
                query, params or {}, database_=self.config.database,
                routing_=neo4j.RoutingControl.READ if read else neo4j.RoutingControl.WRITE)

    def _read_table(self, query: str) -> pd.DataFrame:
        import neo4j
        driver = self.connect()
        with self._lost_connection(query):
            keys, values = driver.execute_query(
                query, {}, database_=self.config.database, routing_=neo4j.RoutingControl.READ,
                result_transformer_=_keys_and_values)
        return pd.DataFrame(values, columns=list(keys), dtype=object)

    @contextmanager
    def _lost_connection(self, query: str) -> Iterator[None]:
        """Turn the driver's errors for a server that went away mid-statement (after `retry_time_s` of
        retries) into a Neo4jConnectionError that says what to do: every write is a MERGE or an exact
        DELETE, so running the build again completes it."""
        from neo4j.exceptions import DatabaseUnavailable, ServiceUnavailable, SessionExpired
        try:
            yield
        except (ServiceUnavailable, SessionExpired, DatabaseUnavailable) as e:
            self.close()  # a fresh driver (and connectivity check) for the next call
            first = " ".join(query.split())[:80]
            raise Neo4jConnectionError(
                f"lost the connection to Neo4j at {self.config.uri} during `{first}...` and it did not come "
                f"back within {self.config.retry_time_s:.0f}s ({type(e).__name__}: {e}). What was committed "
                f"before stays; run the build again once the server is up: it writes only what is missing.") from e

    # --- protocol ---------------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create the uniqueness constraint on `id` of every label (no-op for existing ones)."""
        for statement in cypher.schema_statements():
            self._run(statement)

    def exists(self) -> bool:
        """True if the database holds at least one node of a knowledge-graph label."""
        return bool(self._run(cypher.ANY_GRAPH_NODE, read=True).records[0]["found"])

    def meta(self) -> dict:
        """Format version, write counter, time and `info` of the last write ({} if none)."""
        records = self._run(cypher.READ_META, read=True).records
        if not records:
            return {}
        r = records[0]
        return {"format_version": r["format_version"], "version": r["version"], "written_at": r["written_at"],
                "info": json.loads(r["info_json"] or "{}"), "counts": json.loads(r["counts_json"] or "{}")}

    def load(self) -> KnowledgeGraph:
        """The stored graph (empty if the database holds none), equal to the one that was written."""
        fmt = self.meta().get("format_version")
        if fmt is not None and fmt != FORMAT_VERSION:
            raise ValueError(f"Neo4j at {self.config.uri}: stored format {fmt} is not {FORMAT_VERSION}")
        g = KnowledgeGraph()
        for label in NODE_LABELS:
            g.set_nodes(label, _node_table(label, self._read_table(cypher.read_nodes(label))))
        for t in REL_TYPES:
            table = self._read_table(cypher.read_relationships(t))
            if len(table):
                g.edges[t] = _edge_table(t, table)
        return g

    def write(self, graph: KnowledgeGraph, delta: Delta | None = None, info: dict | None = None) -> bool:
        """Write what `delta` changed (all of `graph` when `delta` is None); returns False, writing
        nothing, when the delta is empty and the database already holds a graph.

        The first write into a database that holds no knowledge graph CREATEs its nodes and
        relationships instead of MERGEing them: there is nothing to find, and the uniqueness
        constraints refuse a duplicate node. Every later write MERGEs, so writing again (or re-running
        a first load that was interrupted half way) never creates anything twice. Rows are built one
        batch ahead, while the server works on the current one. The server's counters are kept in
        `last_counters`.
        """
        self.last_counters = WriteCounters()
        first_load = not self.exists()
        if delta is not None and not any(vars(delta.changes).values()) and not first_load:
            return False
        self.ensure_schema()
        steps = list(self._plan(graph, delta, first_load=first_load))
        bar = tqdm(total=sum(n for _, _, n, _ in steps), desc="write Neo4j", unit="row",
                   disable=not self.show_progress)
        try:
            for name, statement, _, batches in steps:
                bar.set_postfix_str(name)
                for batch in _prefetch(batches):
                    self.last_counters.add(self._run(statement, {"rows": batch}).summary.counters)
                    bar.update(len(batch))
        finally:
            bar.close()
        props = {"format_version": FORMAT_VERSION, "written_at": time.time(),
                 "info_json": json.dumps(info or {}, default=str), "counts_json": json.dumps(graph.counts())}
        self._run(cypher.WRITE_META, {"props": props})
        return True

    def clear(self) -> int:
        """Delete every knowledge-graph node (and its relationships) and the meta node, in batches:
        relationships first, type by type (a batch of products can hold millions), then the nodes. Nodes of
        other labels are left alone. Returns the number of nodes deleted."""
        for t in REL_TYPES:
            self._repeat(cypher.delete_all_relationships(t), {}, "deleted")
        for t in OUTPUT_REL_TYPES:
            self._repeat(cypher.delete_all_output(t), {}, "deleted")
        deleted = sum(self._repeat(cypher.delete_nodes(label), {}, "deleted") for label in NODE_LABELS)
        self._run(cypher.DELETE_META)
        return deleted

    # --- model output ---------------------------------------------------------------------------------
    def vector_index_config(self) -> tuple[int, str] | None:
        """(dimensions, similarity function) of the `product_embedding` index; None when there is none."""
        for r in self._run(cypher.SHOW_INDEXES, read=True).records:
            if r["name"] == cypher.VECTOR_INDEX:
                config = (r["options"] or {}).get("indexConfig") or {}
                return (int(config.get("vector.dimensions") or 0),
                        str(config.get("vector.similarity_function") or "").lower())
        return None

    def ensure_vector_index(self, dimensions: int, similarity: str = "cosine") -> bool:
        """Create the vector index on Product.embedding and the `model` indexes of RECOMMENDED and
        SIMILAR_TO. An existing vector index with another dimension or similarity is dropped first (a
        model of another size would otherwise write vectors the index silently skips). Returns True
        when the vector index was (re)created, False when it was already right."""
        statements = cypher.output_schema_statements(dimensions, similarity)  # validates the arguments
        current = self.vector_index_config()
        wanted = (cypher.check_dimensions(dimensions), similarity)
        if current is not None and current != wanted:
            self._run(cypher.DROP_VECTOR_INDEX)
        for statement in statements:
            self._run(statement)
        return current != wanted

    def drop_vector_index(self) -> None:
        """Drop the `product_embedding` index if it exists (the embeddings stay on the products)."""
        self._run(cypher.DROP_VECTOR_INDEX)

    def await_vector_index(self, timeout_s: int = 300) -> None:
        """Block until the vector index is online (it fills in the background after creation)."""
        self._run(cypher.AWAIT_INDEX, {"name": cypher.VECTOR_INDEX, "timeout_s": int(timeout_s)})

    def write_product_embeddings(self, product_ids: list[str], vectors: np.ndarray, model: str) -> int:
        """Set `embedding` and `embedding_model` on the given products; returns how many exist in the graph."""
        return self._write_rows(cypher.SET_EMBEDDINGS, embedding_rows(product_ids, vectors),
                                {"model": check_model_version(model)})

    def write_output(self, rel_type: str, table: pd.DataFrame, model: str,
                     sources: list[str] | None = None) -> int:
        """MERGE one relationship per (source, product, model) with its score and rank, then delete this
        model's relationships of each source in `sources` (default: those in `table`) to products no longer
        in its top k. `table` is a recommender's top-k table or a tidy one (`kg.results.tidy_top_k`).
        Returns how many rows found both nodes."""
        check_output_rel_type(rel_type)
        params = {"model": check_model_version(model)}
        tidy = tidy_top_k(table, drop_self=rel_type == SIMILAR_TO)
        written = self._write_rows(cypher.merge_output(rel_type), top_k_rows(tidy), params)
        self._write_rows(cypher.prune_output(rel_type), keep_rows(tidy, sources), params)
        return written

    def write_recommendations(self, table: pd.DataFrame, model: str, users: list[str] | None = None) -> int:
        """`(:User)-[:RECOMMENDED {score, rank, model}]->(:Product)` from `recommend_batch` rows (see write_output)."""
        return self.write_output(RECOMMENDED, table, model, users)

    def write_similar(self, table: pd.DataFrame, model: str, products: list[str] | None = None) -> int:
        """`(:Product)-[:SIMILAR_TO {score, rank, model}]->(:Product)` from `similar_batch` rows (see write_output)."""
        return self.write_output(SIMILAR_TO, table, model, products)

    def output_models(self) -> dict[str, dict[str | None, int]]:
        """For each output relationship type, the stored model versions and their relationship counts."""
        return {t: {r["model"]: r["relationships"] for r in self._run(cypher.output_models(t), read=True).records}
                for t in OUTPUT_REL_TYPES}

    def remove_other_models(self, model: str, rel_types: tuple[str, ...] = OUTPUT_REL_TYPES) -> dict[str, int]:
        """Delete the `rel_types` relationships of every model version but `model`, and the embeddings of
        other versions, in batches of `batch_size`. Relationships without a `model` (not written by the
        export) are left alone. Returns the numbers deleted per type and `embeddings` cleared."""
        check_model_version(model)
        removed: dict[str, int] = {}
        for t in rel_types:
            check_output_rel_type(t)
            records = self._run(cypher.output_models(t), read=True).records
            removed[t] = sum(self._repeat(cypher.delete_output_model(t), {"old": r["model"]}, "deleted")
                             for r in records if r["model"] is not None and r["model"] != model)
        removed["embeddings"] = self._repeat(cypher.CLEAR_OTHER_EMBEDDINGS, {"model": model}, "cleared")
        return removed

    def _write_rows(self, statement: str, rows: list[dict], params: dict[str, Any]) -> int:
        """Send `rows` in batches of `batch_size` (one transaction each); sums a `written` column if returned."""
        written = 0
        for batch in _batches(rows, self.config.batch_size):
            result = self._run(statement, {**params, "rows": batch})
            self.last_counters.add(result.summary.counters)
            if result.records and "written" in result.records[0].keys():
                written += int(result.records[0]["written"])
        return written

    def _repeat(self, statement: str, params: dict[str, Any], key: str) -> int:
        """Run a `LIMIT $batch` statement until its `key` column says 0; returns the total."""
        total = 0
        while True:
            result = self._run(statement, {**params, "batch": self.config.batch_size})
            self.last_counters.add(result.summary.counters)
            n = int(result.records[0][key])
            total += n
            if n == 0:
                return total

    def _plan(self, graph: KnowledgeGraph, delta: Delta | None, *, first_load: bool = False
              ) -> Iterator[tuple[str, str, int, Iterator[list[dict]]]]:
        """(name, statement, row count, batches) in write order: nodes, deleted relationships, created
        relationships. Each batch (at most `batch_size` rows) is built when it is taken, so only the
        row positions of a step are held, not its rows. `first_load`: CREATE instead of MERGE."""
        size = self.config.batch_size
        for label in NODE_LABELS:
            ids = None if delta is None else delta.nodes.get(label)
            if ids is None and delta is not None:
                continue
            idx = node_indices(graph, label, None if ids is None else ids["id"])
            if len(idx):
                statement = cypher.create_nodes(label) if first_load else cypher.upsert_nodes(label)
                yield label, statement, len(idx), _in_batches(_node_batch, graph, label, idx, size)
        if delta is not None:
            for t in REL_TYPES:
                if t in delta.deleted:
                    rows = deleted_rows(graph, t, delta.deleted[t])
                    if rows:
                        yield f"-{t}", cypher.delete_relationships(t), len(rows), _batches(rows, size)
        for t in REL_TYPES:
            created = None if delta is None else delta.created.get(t)
            if created is None and delta is not None:
                continue
            pos = relationship_positions(graph, t, created)
            if not len(pos):
                continue
            # appended edges continue after the stored ones (INTERACTED is ordered by its own seq)
            first = self._next_order(t) if created is not None and t != INTERACTED else 0
            statement = cypher.create_relationships(t) if first_load else cypher.merge_relationships(t)
            yield t, statement, len(pos), _in_batches(_relationship_batch, graph, t, pos, size, first)

    def _next_order(self, rel_type: str) -> int:
        top = self._run(cypher.max_order(rel_type), read=True).records[0]["max_order"]
        return 0 if top is None else int(top) + 1


# --- rows for the write statements (pure functions: unit-tested without a server) ----------------------
def _column(s: pd.Series) -> list:
    """Python values for the driver; NaN / <NA> become None (Neo4j stores no nulls: the property is removed)."""
    values = s.astype(object).tolist()
    for i in np.flatnonzero(s.isna().to_numpy()):
        values[i] = None
    return values


def _records(columns: dict[str, list]) -> list[dict]:
    """One dict per row of equally long columns. Up to five keys with a dict display, which builds a
    row about twice as fast as dict(zip(keys, values)) (a first load sends millions of rows)."""
    keys, values = list(columns), list(columns.values())
    if not keys:
        return []
    if len(keys) == 1:
        (a,), (va,) = keys, values
        return [{a: x} for x in va]
    if len(keys) == 2:
        a, b = keys
        return [{a: x, b: y} for x, y in zip(*values)]
    if len(keys) == 3:
        a, b, c = keys
        return [{a: x, b: y, c: z} for x, y, z in zip(*values)]
    if len(keys) == 4:
        a, b, c, d = keys
        return [{a: x, b: y, c: z, d: w} for x, y, z, w in zip(*values)]
    if len(keys) == 5:
        a, b, c, d, e = keys
        return [{a: x, b: y, c: z, d: w, e: v} for x, y, z, w, v in zip(*values)]
    return [dict(zip(keys, vals)) for vals in zip(*values)]


def node_indices(graph: KnowledgeGraph, label: str, ids: pd.Series | None = None) -> np.ndarray:
    """Sorted node indices of the nodes `ids` (all when None)."""
    if ids is None:
        return np.arange(len(graph.nodes[label]), dtype=np.int64)
    return np.unique(graph.id_map(label).indices(pd.unique(pd.Series(ids, dtype=object))))


def _node_batch(graph: KnowledgeGraph, label: str, idx: np.ndarray, start: int = 0) -> list[dict]:
    """`[{id, props}]` for the node indices `idx`; props include `idx`."""
    sub = graph.nodes[label].iloc[idx]
    props = {cypher.NODE_INDEX: idx.tolist(), **{p: _column(sub[p]) for p in NODE_PROPERTIES[label]}}
    return _records({"id": sub[cypher.NODE_KEY].tolist(), "props": _records(props)})


def node_rows(graph: KnowledgeGraph, label: str, ids: pd.Series | None = None) -> list[dict]:
    """`[{id, props}]` for the nodes `ids` (all when None), in index order; props include `idx`."""
    return _node_batch(graph, label, node_indices(graph, label, ids))


def _positions(graph: KnowledgeGraph, rel_type: str, rows: pd.DataFrame) -> np.ndarray:
    """Row position in graph.edges[rel_type] of each (src_id, dst_id[, seq]) row of a delta, -1 if absent."""
    table = graph.edges_of(rel_type)
    if rel_type == INTERACTED:
        return pd.Index(table["seq"]).get_indexer(pd.Index(rows["seq"].astype("int64")))
    spec = REL_SPECS[rel_type]
    src = graph.id_map(spec.src).indices(rows["src_id"], missing="-1")
    dst = graph.id_map(spec.dst).indices(rows["dst_id"], missing="-1")
    have = pd.MultiIndex.from_arrays([table["src"].to_numpy(), table["dst"].to_numpy()])
    pos = have.get_indexer(pd.MultiIndex.from_arrays([src, dst]))
    return np.where((src >= 0) & (dst >= 0), pos, -1)


def relationship_positions(graph: KnowledgeGraph, rel_type: str, created: pd.DataFrame | None = None) -> np.ndarray:
    """Sorted positions in graph.edges[rel_type] of the created relationships still in `graph` (all when None)."""
    if created is None:
        return np.arange(len(graph.edges_of(rel_type)), dtype=np.int64)
    pos = np.unique(_positions(graph, rel_type, created))
    return pos[pos >= 0]


def _relationship_batch(graph: KnowledgeGraph, rel_type: str, pos: np.ndarray, start: int = 0,
                        first_order: int = 0) -> list[dict]:
    """`[{src_id, dst_id, [seq,] props}]` for the table rows `pos`, the `start`-th and later of a write:
    non-INTERACTED types get `ord` = first_order + start, first_order + start + 1, ..."""
    sub = graph.edges_of(rel_type).iloc[pos]
    spec = REL_SPECS[rel_type]
    cols: dict[str, list] = {
        "src_id": graph.nodes[spec.src]["id"].to_numpy()[sub["src"].to_numpy()].tolist(),
        "dst_id": graph.nodes[spec.dst]["id"].to_numpy()[sub["dst"].to_numpy()].tolist(),
    }
    keys = cypher.REL_KEYS[rel_type]
    for k in keys:
        cols[k] = _column(sub[k])
    if rel_type == INTERACTED:
        props = {p: _column(sub[p]) for p in spec.properties if p not in keys}
    else:
        props = {cypher.ORD: list(range(first_order + start, first_order + start + len(sub)))}
    cols["props"] = _records(props)
    return _records(cols)


def relationship_rows(graph: KnowledgeGraph, rel_type: str, created: pd.DataFrame | None = None,
                      first_order: int = 0) -> list[dict]:
    """`[{src_id, dst_id, [seq,] props}]` for the created relationships still in `graph` (all when None),
    in table order. Non-INTERACTED types get `ord` = first_order, first_order + 1, ... in that order."""
    pos = relationship_positions(graph, rel_type, created)
    return _relationship_batch(graph, rel_type, pos, 0, first_order) if len(pos) else []


def deleted_rows(graph: KnowledgeGraph, rel_type: str, deleted: pd.DataFrame) -> list[dict]:
    """`[{src_id, dst_id[, seq]}]` for the deleted relationships that `graph` does not hold (again)."""
    if not len(deleted):
        return []
    gone = deleted[_positions(graph, rel_type, deleted) < 0]
    keys = ["src_id", "dst_id", *cypher.REL_KEYS[rel_type]]
    gone = gone.drop_duplicates(keys)
    return _records({k: _column(gone[k]) for k in keys})


def _batches(rows: list[dict], size: int) -> Iterator[list[dict]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def _in_batches(build: Any, graph: KnowledgeGraph, name: str, positions: np.ndarray, size: int,
                *extra: Any) -> Iterator[list[dict]]:
    """`build(graph, name, positions[start:start + size], start, *extra)` for start = 0, size, 2 size, ..."""
    for start in range(0, len(positions), size):
        yield build(graph, name, positions[start:start + size], start, *extra)


def _prefetch(batches: Iterator[list[dict]]) -> Iterator[list[dict]]:
    """The batches of `batches`, each built in a worker thread while the previous one is at the server
    (the driver waits for the server's answer without holding the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    it = iter(batches)
    with ThreadPoolExecutor(1, thread_name_prefix="kg-write-rows") as pool:
        pending = pool.submit(next, it, None)
        while True:
            batch = pending.result()
            if batch is None:
                return
            pending = pool.submit(next, it, None)
            yield batch


# --- read-back -----------------------------------------------------------------------------------------
def _keys_and_values(result: Any) -> tuple[list[str], list[list]]:
    """Result transformer: column names and rows as lists (no Record objects kept)."""
    keys = list(result.keys())
    return keys, result.values()


def _typed(table: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    out = {}
    for c, d in dtypes.items():
        s = table[c] if c in table else pd.Series([], dtype=object)
        out[c] = s.astype(object) if d == "object" else s.astype(d)
    return pd.DataFrame(out).reset_index(drop=True)


def _node_table(label: str, table: pd.DataFrame) -> pd.DataFrame:
    """Typed node table from read rows; `idx` must be exactly 0..n-1 (else the data was not written by us)."""
    idx = table[cypher.NODE_INDEX] if len(table) else pd.Series([], dtype=object)
    if idx.isna().any():
        raise ValueError(f"{int(idx.isna().sum())} {label} node(s) have no `{cypher.NODE_INDEX}` property: "
                         f"they were not written by Neo4jStore (delete them or use an empty database)")
    if not np.array_equal(idx.astype("int64").to_numpy(), np.arange(len(table))):
        raise ValueError(f"{label} nodes' `{cypher.NODE_INDEX}` values are not 0..{len(table) - 1}: "
                         f"the database holds a graph this store did not write (or two graphs mixed)")
    if label == "Product" and len(table) and table["in_catalog"].isna().any():
        raise ValueError("Product node(s) without `in_catalog`: they were not written by Neo4jStore")
    return _typed(table, NODE_DTYPES[label])


def _edge_table(rel_type: str, table: pd.DataFrame) -> pd.DataFrame:
    return _typed(table, EDGE_DTYPES[rel_type])
