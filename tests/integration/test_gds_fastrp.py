"""The gds_fastrp baseline against a live server with Graph Data Science (`make test` starts one; GDS is on
the server kg.neo4j_server runs): the projection from parameters, FastRP, the scores, and what it leaves
behind, which is nothing: the stored graph unchanged to the last property, no in-memory graph left over
(also when FastRP fails). Without GDS on the server, `available` says so (a second server, GDS left off).
"""
from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from live_neo4j import SENT, db_state, free_port, live_store, neo4j_config, require_server  # noqa: F401

require_server()

import neo4j  # noqa: E402

import kg  # noqa: E402
from eval_fixtures import checker_board  # noqa: E402
from fusion.data import TrainData  # noqa: E402
from fusion.evaluation.baselines import available  # noqa: E402
from fusion.evaluation.baselines.gds_fastrp import GDSFastRP, build_projection, server_unavailable  # noqa: E402
from fusion.metrics import top_k  # noqa: E402
from kg import cypher  # noqa: E402
from kg import neo4j_server as ns  # noqa: E402
from kg.schema import INTERACTED, USER  # noqa: E402
from neo4j_fixtures import write_files  # noqa: E402

pytestmark = pytest.mark.integration
GRAPH_LIST = "CALL gds.graph.list() YIELD graphName RETURN graphName"  # the test's own look at the catalog


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    g, held = checker_board(tmp_path_factory.mktemp("board"))
    return TrainData.from_graph(g, seed=0), held


@pytest.fixture
def stored(live_store, tmp_path):
    """A knowledge graph in the database (not the board): what a fit must leave exactly as it was."""
    files = write_files(tmp_path)
    graph = live_store.load()
    result = kg.merge_files(graph, show_progress=False, **files)
    live_store.write(graph, result.delta)
    return live_store


def _graphs(store) -> list[str]:
    return [r["graphName"] for r in store.connect().execute_query(GRAPH_LIST, database_=store.config.database).records]


def test_gds_is_on_the_server_and_the_baseline_is_available(neo4j_config):
    with kg.Neo4jStore(neo4j_config, show_progress=False) as store:
        version = store.connect().execute_query(cypher.GDS_VERSION).records[0]["version"]
    assert version == ns.GDS_VERSION
    assert available("gds_fastrp") is None


def test_fit_leaves_the_stored_graph_and_the_graph_catalog_as_they_were(stored, board, neo4j_config):
    train, held = board
    before = db_state(stored)
    assert before[0].get("INTERACTED", 0) > 0 and _graphs(stored) == []
    model = GDSFastRP(embedding_dimension=64).fit(train, config=neo4j_config)
    assert db_state(stored) == before  # every node, relationship and property: unchanged
    assert _graphs(stored) == []       # the in-memory graph was dropped
    proj = build_projection(train)
    info = model.fit_info_
    assert info["nodes"] == proj.num_nodes == 46
    assert info["relationships"] == 2 * proj.num_relationships  # undirected: GDS counts both directions
    s = model.score(np.arange(train.num_users))
    assert s.shape == (train.num_users, train.num_items) and s.dtype == np.float32 and np.isfinite(s).all()


@pytest.mark.parametrize("user_vector", ["history_mean", "node"])
def test_users_rank_their_blocks_items_above_the_other_block(board, neo4j_config, user_vector):
    """The board: users of block A bought 9 of the 10 A items (brand Acme, Food > Fruit), block B likewise;
    each user's missing item of their own block is related to them through co-purchases, brand and category,
    the other block's items through nothing. It must outrank every item of the other block, and be the top
    recommendation once training items are masked."""
    train, held = board
    model = GDSFastRP(embedding_dimension=64, user_vector=user_vector).fit(train, config=neo4j_config)
    g = train.graph
    users = g.id_map(USER).indices(list(held))
    cols = train.column_of[g.id_map("Product").indices(list(held.values()))]
    s = model.score(users)
    ids = g.nodes["Product"]["id"].to_numpy()[train.items].astype(str)
    for r, (u, c) in enumerate(zip(held, cols)):
        other = np.flatnonzero(np.char.startswith(ids, "B" if u.startswith("a") else "A"))
        assert s[r, c] > s[r, other].max(), f"user {u}: held-out item {held[u]} does not beat the other block"
    assert (top_k(s, 1, train.user_items[users])[:, 0] == cols).all()


def test_same_seed_same_embeddings_other_seed_other_embeddings(board, neo4j_config):
    train, _ = board
    a = GDSFastRP(embedding_dimension=32).fit(train, config=neo4j_config)
    b = GDSFastRP(embedding_dimension=32).fit(train, config=neo4j_config)
    assert np.allclose(a.item_vectors_, b.item_vectors_)
    other = TrainData.from_graph(train.graph, seed=1)
    c = GDSFastRP(embedding_dimension=32).fit(other, config=neo4j_config)
    assert not np.allclose(a.item_vectors_, c.item_vectors_)


def test_only_training_interactions_are_projected(board, neo4j_config):
    """Holding out interactions (as a split does) removes exactly them from the projection."""
    train, _ = board
    e = train.graph.edges_of(INTERACTED)
    keep = e.iloc[::2]
    part = TrainData.from_graph(train.graph.with_interactions(keep), seed=0)
    model = GDSFastRP(embedding_dimension=16, relationship_weights=True).fit(part, config=neo4j_config)
    others = build_projection(part).num_relationships - len(keep)
    assert model.fit_info_["relationships"] == 2 * (len(keep) + others)


def test_a_failing_fastrp_drops_the_graph_and_says_why(stored, board, neo4j_config):
    train, _ = board
    before = db_state(stored)
    with pytest.raises(neo4j.exceptions.ClientError, match="concurrency"):
        GDSFastRP(embedding_dimension=16, concurrency=64).fit(train, config=neo4j_config)  # Community: at most 4
    assert _graphs(stored) == [] and db_state(stored) == before


def test_a_server_without_gds_is_a_clear_reason():
    """A second server with GDS left off (`ServerConfig(gds=False)`, the server as it was before GDS)."""
    home = Path(tempfile.mkdtemp(prefix="kgrec-no-gds-server-"))
    password = secrets.token_urlsafe(12)
    config = ns.ServerConfig(home=home, password=password, bolt_port=free_port(), http_port=free_port(),
                             heap="512m", pagecache="128m", gds=False)
    try:
        ns.start(config)
        assert not any(p.is_symlink() for p in (home / "plugins").iterdir())
        assert "dbms.security.procedures.unrestricted" not in (home / "conf" / "neo4j.conf").read_text()
        why = server_unavailable({"NEO4J_URI": config.bolt_uri, "NEO4J_PASSWORD": password})
        assert why.startswith(f"GDS not installed on the server at {config.bolt_uri}"), why
    finally:
        ns.stop(home)
        shutil.rmtree(home, ignore_errors=True)


def test_every_gds_statement_was_sent():
    sent = {" ".join(s.split()) for s in SENT}
    for name in ("GDS_VERSION", "GDS_PROJECT", "GDS_FASTRP_STREAM", "GDS_DROP"):
        assert " ".join(getattr(cypher, name).split()) in sent, name
