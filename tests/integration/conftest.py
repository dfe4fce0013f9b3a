"""Fixtures for the live Neo4j tests (run only when NEO4J_URI is set; see docs/neo4j.md).

Settings come from the same variables as the application: NEO4J_URI, NEO4J_USERNAME (or NEO4J_USER),
NEO4J_PASSWORD, NEO4J_DATABASE. The tests write to a database that holds no knowledge graph and
delete what they wrote afterwards; a database that already holds one is left alone (the tests skip)
unless NEO4J_ALLOW_WIPE=1 allows them to delete its User/Product/Brand/Category nodes.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

PRODUCTS = """product_id,title,description,brand,categories,price
B0001,Rose Cream,"Face cream, 50ml",Acme,Beauty > Skin Care > Face | Beauty > Gifts,12.5
B0002,Lip Balm,,acme,Beauty > Lips,
B0003,Shampoo,Mild,Hairy Co,Beauty > Hair,7
"""
INTERACTIONS = """user_id,product_id,timestamp,event,weight
U1,B0001,2014-04-18,purchase,1
U1,B0002,,view,
U2,B0001,1400000000,view,1
U2,B0003,2014-05-01T10:00:00Z,purchase,2
U2,B0003,2014-05-01T10:00:00Z,purchase,2
"""
RELATIONS = """product_id,other_id,relation
B0001,B0002,also_bought
B0001,X9,also_viewed
B0003,X9,also_viewed
"""


@pytest.fixture
def kg_files(tmp_path: Path) -> dict[str, Path]:
    """A tiny catalog: products.csv, interactions.csv, relations.csv."""
    out = {}
    for name, text in (("products", PRODUCTS), ("interactions", INTERACTIONS), ("relations", RELATIONS)):
        out[name] = tmp_path / f"{name}.csv"
        out[name].write_text(text, encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def neo4j_config():
    from kg.neo4j_store import Neo4jConfig
    # a small batch size so that even the tiny graph goes out in several transactions
    return Neo4jConfig.from_env(batch_size=int(os.environ.get("NEO4J_TEST_BATCH_SIZE", "3")), max_retries=3)


@pytest.fixture
def live_store(neo4j_config):
    """A Neo4jStore on an empty (knowledge-graph-free) database, emptied again afterwards."""
    from kg.neo4j_store import Neo4jStore
    store = Neo4jStore(neo4j_config, show_progress=False)
    store.connect()  # NEO4J_URI is set, so an unreachable server is a failure, not a skip
    if store.exists():
        if os.environ.get("NEO4J_ALLOW_WIPE") != "1":
            store.close()
            pytest.skip(f"database {neo4j_config.database or '(default)'} at {neo4j_config.uri} already holds a "
                        f"knowledge graph: set NEO4J_ALLOW_WIPE=1 to let the live tests delete it, or point "
                        f"NEO4J_DATABASE at an empty database")
        store.clear()
    yield store
    store.clear()
    store.close()
