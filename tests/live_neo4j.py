"""Shared by the live Neo4j tests (tests/integration, tests/browser): skip or fail when no server runs,
the connection settings, an emptied store, and a record of every statement the tests send.

`make test` runs pytest inside `scripts/neo4j_server.py run`, which starts a throwaway server and sets
NEO4J_URI, NEO4J_PASSWORD, NEO4J_HTTP_URI, NEO4J_SERVER_HOME and KGREC_NEO4J_REQUIRED=1. Without it
(or where Java is missing: KGREC_NEO4J_UNAVAILABLE says why) the live tests skip with the reason;
with KGREC_NEO4J_REQUIRED=1 a live test that skips fails the run (tests/conftest.py).

Not a conftest.py: tests/unit imports the top-level tests/conftest.py as `conftest`, which a second
conftest module without a package would shadow.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SENT: list[str] = []  # every query text a live test sent through neo4j.Driver.execute_query


def require_server() -> None:
    """Skip the calling module (with the reason) unless a live server is configured."""
    if not os.environ.get("NEO4J_URI"):
        why = os.environ.get("KGREC_NEO4J_UNAVAILABLE")
        pytest.skip(f"no live Neo4j: {why}" if why else
                    "NEO4J_URI not set: live Neo4j tests skipped (`make test` starts a server; or `make neo4j`, "
                    "see docs/neo4j.md)", allow_module_level=True)
    _record_statements()


def _record_statements() -> None:
    import neo4j

    driver_cls = neo4j.Driver
    if getattr(driver_cls.execute_query, "_kgrec_recording", False):
        return
    original = driver_cls.execute_query

    def execute_query(self, query_, parameters_=None, *args, **kwargs):
        SENT.append(str(getattr(query_, "text", query_)))
        return original(self, query_, parameters_, *args, **kwargs)

    execute_query._kgrec_recording = True  # type: ignore[attr-defined]
    driver_cls.execute_query = execute_query  # type: ignore[method-assign]


def free_port() -> int:
    """A free TCP port on loopback (for a second server a test starts itself)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def neo4j_config():
    import kg
    # a small batch size so that even the tiny graph goes out in several transactions
    return kg.Neo4jConfig.from_env(batch_size=int(os.environ.get("NEO4J_TEST_BATCH_SIZE", "3")), max_retries=3)


def empty_store(config):
    """A Neo4jStore on a database holding no knowledge graph (skips, unless NEO4J_ALLOW_WIPE=1, when it has one)."""
    import kg
    store = kg.Neo4jStore(config, show_progress=False)
    store.connect()  # NEO4J_URI is set, so an unreachable server is a failure, not a skip
    if store.exists():
        if os.environ.get("NEO4J_ALLOW_WIPE") != "1" and not os.environ.get("KGREC_NEO4J_REQUIRED"):
            store.close()
            pytest.skip(f"database {config.database or '(default)'} at {config.uri} already holds a knowledge "
                        f"graph: set NEO4J_ALLOW_WIPE=1 to let the live tests delete it, or point NEO4J_DATABASE "
                        f"at an empty database")
        store.clear()
    store.drop_vector_index()
    return store


@pytest.fixture
def live_store(neo4j_config):
    """A Neo4jStore on an empty (knowledge-graph-free) database, emptied again afterwards."""
    store = empty_store(neo4j_config)
    yield store
    store.clear()
    store.close()


def db_state(store) -> tuple[dict, str]:
    """(counts per label and type, SHA-256 over every node's labels and properties and every relationship's
    endpoints, type and properties): what 'unchanged' means, seen through Cypher."""
    rows = store.connect().execute_query(
        "MATCH (n) RETURN labels(n) AS labels, properties(n) AS props", database_=store.config.database).records
    rels = store.connect().execute_query(
        "MATCH (a)-[r]->(b) RETURN a.id AS a, labels(a) AS la, type(r) AS t, properties(r) AS props, b.id AS b, "
        "labels(b) AS lb", database_=store.config.database).records
    nodes = sorted(json.dumps([r["labels"], r["props"]],
                              sort_keys=True, default=str) for r in rows)
    edges = sorted(json.dumps([r["a"], r["la"], r["t"], r["props"], r["b"], r["lb"]], sort_keys=True, default=str)
                   for r in rels)
    counts: dict[str, int] = {}
    for r in rows:
        counts[":".join(r["labels"])] = counts.get(":".join(r["labels"]), 0) + 1
    for r in rels:
        counts[r["t"]] = counts.get(r["t"], 0) + 1
    digest = hashlib.sha256("\n".join(nodes + ["--"] + edges).encode()).hexdigest()
    return counts, digest
