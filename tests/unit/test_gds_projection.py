"""gds_fastrp without a server: the projection's parameters built from a tiny training graph (every node once,
the training interactions only), the fit against a fake GDS (what is sent, what is read back, the in-memory
graph dropped also when FastRP fails), the scores, and the reasons it gives where no server runs.
The same model against a real server with GDS: tests/integration/test_gds_fastrp.py."""
from __future__ import annotations

import socket
import time

import numpy as np
import pytest

import kg
from fusion.data import TrainData
from fusion.evaluation.baselines import BASELINES, GRIDS, available, make_baseline
from fusion.evaluation.baselines.gds_fastrp import (GRAPH_PREFIX, PROJECT_CONFIG, USER_VECTORS, GDSFastRP,
                                                    build_projection, fastrp_config, node_ids, server_unavailable)
from kg import cypher
from kg.schema import INTERACTED, PRODUCT, REL_SPECS, USER

CONFIG = kg.Neo4jConfig("bolt://fake:7687", "neo4j", "not-a-real-password", max_retries=1)


@pytest.fixture
def train(tiny_graph):
    return TrainData.from_graph(tiny_graph, seed=7)


def _node_rows(proj):
    return [g for g in proj.groups if g["target"] is None]


def test_every_node_is_sent_once_catalog_products_then_users_first(train):
    proj = build_projection(train)
    g = train.graph
    sent = np.concatenate([grp["source"] for grp in _node_rows(proj)])
    assert sorted(sent) == list(range(proj.num_nodes))
    assert proj.num_nodes == sum(g.num_nodes(label) for label in kg.NODE_LABELS)
    ids = node_ids(train)
    # catalog product of column c has id c; users follow; X9 (outside the catalog) comes after them
    assert (ids[PRODUCT][train.items] == np.arange(train.num_items)).all()
    assert (ids[USER] == train.num_items + np.arange(g.num_nodes(USER))).all()
    assert proj.catalog_end == train.num_items and proj.users_end == train.num_items + g.num_nodes(USER)
    x9 = g.id_map(PRODUCT).indices(["X9"])[0]
    assert not g.catalog_mask[x9] and ids[PRODUCT][x9] >= proj.users_end
    by_label = {grp["source_label"]: grp for grp in _node_rows(proj)}
    assert by_label[PRODUCT]["source"][:train.num_items] == list(range(train.num_items))
    assert all(grp["type"] is None and grp["weight"] is None for grp in by_label.values())


def test_relationships_are_the_training_graph_and_nothing_else(tiny_graph):
    e = tiny_graph.edges_of(INTERACTED)
    u1 = tiny_graph.id_map(USER).indices(["u1"])[0]
    held = (e["src"] == u1).to_numpy()  # every interaction of u1 held out
    train = TrainData.from_graph(tiny_graph.with_interactions(e[~held]))
    proj = build_projection(train)
    ids = node_ids(train)
    rels = {grp["type"]: grp for grp in proj.groups if grp["target"] is not None}
    assert set(rels) == {t for t in REL_SPECS if len(train.graph.edges_of(t))}
    inter = rels[INTERACTED]
    assert len(inter["source"]) == int((~held).sum()) and ids[USER][u1] not in inter["source"]
    for t, grp in rels.items():
        spec, edges = REL_SPECS[t], train.graph.edges_of(t)
        assert (grp["source_label"], grp["target_label"]) == (spec.src, spec.dst)
        assert grp["source"] == ids[spec.src][edges["src"].to_numpy()].tolist()
        assert grp["target"] == ids[spec.dst][edges["dst"].to_numpy()].tolist()
        assert grp["weight"] is None
    assert proj.num_relationships == sum(len(grp["source"]) for grp in rels.values())
    assert proj.rows() == proj.num_nodes + proj.num_relationships


def test_weights_are_the_interaction_weights_and_one_elsewhere(train):
    rels = {grp["type"]: grp for grp in build_projection(train, weights=True).groups if grp["target"] is not None}
    # interactions.csv weights: 1, 0.5, (none), (none), (none), (none)
    assert rels[INTERACTED]["weight"] == [1.0, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert all(w == 1.0 for t, grp in rels.items() if t != INTERACTED for w in grp["weight"])


def test_fastrp_config_maps_the_hyper_parameters():
    conf = fastrp_config(64, [0, 1, 1], -0.5, 0.25, seed=3, weighted=True, concurrency=2)
    assert conf == {"embeddingDimension": 64, "iterationWeights": [0.0, 1.0, 1.0], "normalizationStrength": -0.5,
                    "nodeSelfInfluence": 0.25, "randomSeed": 3, "relationshipWeightProperty": "weight",
                    "concurrency": 2}
    assert "relationshipWeightProperty" not in fastrp_config(8, [1], 0, 0, 0, weighted=False)


class FakeGDS:
    """Answers the four GDS statements like the server would; embedding of node id i: `vectors(i)`."""

    def __init__(self, dim: int, fail_stream: Exception | None = None):
        self.dim, self.fail_stream = dim, fail_stream
        self.calls: list[tuple[str, dict]] = []
        self.graphs: dict[str, int] = {}

    def vector(self, i: int) -> list[float]:
        v = np.zeros(self.dim)
        v[i % self.dim] = 1.0 + i  # distinct directions per id (mod dim), lengths that differ
        return v.tolist()

    def verify_connectivity(self):
        pass

    def close(self):
        pass

    def execute_query(self, query, parameters=None, database_=None):
        from types import SimpleNamespace

        self.calls.append((query, parameters))
        if query == cypher.GDS_PROJECT:
            assert parameters["config"] == PROJECT_CONFIG and parameters["graph"].startswith(GRAPH_PREFIX)
            nodes = sum(len(g["source"]) for g in parameters["groups"] if g["target"] is None)
            rels = sum(len(g["source"]) for g in parameters["groups"] if g["target"] is not None)
            self.graphs[parameters["graph"]] = nodes
            return SimpleNamespace(records=[{"graph": parameters["graph"], "nodes": nodes,
                                             "relationships": 2 * rels, "millis": 1}])
        if query == cypher.GDS_FASTRP_STREAM:
            if self.fail_stream:
                raise self.fail_stream
            n = self.graphs[parameters["graph"]]
            return SimpleNamespace(records=[{"nodeId": i, "embedding": self.vector(i)}
                                            for i in reversed(range(n)) if i < parameters["below"]])
        if query == cypher.GDS_DROP:
            self.graphs.pop(parameters["graph"], None)
            return SimpleNamespace(records=[])
        raise AssertionError(f"unexpected statement {query!r}")


@pytest.mark.parametrize("user_vector", USER_VECTORS)
def test_fit_sends_projection_then_fastrp_then_drops_and_scores_by_cosine(train, user_vector):
    fake = FakeGDS(dim=16)
    model = GDSFastRP(embedding_dimension=16, user_vector=user_vector).fit(train, config=CONFIG, driver=fake)
    assert [q for q, _ in fake.calls] == [cypher.GDS_PROJECT, cypher.GDS_FASTRP_STREAM, cypher.GDS_DROP]
    assert not fake.graphs  # dropped
    stream = fake.calls[1][1]
    assert stream["config"]["randomSeed"] == 7 and stream["config"]["embeddingDimension"] == 16
    proj = build_projection(train)
    assert stream["below"] == (proj.users_end if user_vector == "node" else proj.catalog_end)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    items = unit(np.array([fake.vector(i) for i in range(train.num_items)]))
    assert np.allclose(model.item_vectors_, items)
    if user_vector == "node":
        users = unit(np.array([fake.vector(i) for i in range(proj.catalog_end, proj.users_end)]))
    else:
        ui = train.user_items.toarray()
        users = (ui / ui.sum(axis=1, keepdims=True)) @ items
    s = model.score(np.arange(train.num_users))
    assert s.dtype == np.float32 and s.shape == (train.num_users, train.num_items)
    assert np.allclose(s, users @ items.T, atol=1e-6)
    assert model.fit_info_["nodes"] == proj.num_nodes


def test_a_failing_fastrp_still_drops_the_graph_and_reports_its_own_error(train):
    fake = FakeGDS(dim=8, fail_stream=RuntimeError("FastRP blew up"))
    with pytest.raises(RuntimeError, match="FastRP blew up"):
        GDSFastRP(embedding_dimension=8).fit(train, config=CONFIG, driver=fake)
    assert [q for q, _ in fake.calls][-1] == cypher.GDS_DROP and not fake.graphs


def test_arguments_are_checked_and_round_trip():
    with pytest.raises(ValueError, match="user_vector must be one of history_mean, node"):
        GDSFastRP(user_vector="mean")
    with pytest.raises(ValueError, match="embedding_dimension must be >= 1"):
        GDSFastRP(embedding_dimension=0)
    with pytest.raises(ValueError, match="iteration_weights needs at least one weight"):
        GDSFastRP(iteration_weights=[])
    m = GDSFastRP(embedding_dimension=32, iteration_weights=(0, 1), user_vector="node")
    assert type(m)(**m.params()).params() == m.params() and m.params()["iteration_weights"] == [0.0, 1.0]
    assert BASELINES["gds_fastrp"] is GDSFastRP and make_baseline("gds_fastrp").name == "gds_fastrp"
    assert 2 <= len(GRIDS["gds_fastrp"]) <= 8 and {p["user_vector"] for p in GRIDS["gds_fastrp"]} == set(USER_VECTORS)
    assert [1.0, 1.0] in [p["iteration_weights"] for p in GRIDS["gds_fastrp"]]  # the short hops compete too
    for point in GRIDS["gds_fastrp"]:
        GDSFastRP(**point)


def test_no_server_configured_is_a_reason(monkeypatch):
    for var in ("NEO4J_URI", "NEO4J_PASSWORD", "KGREC_NEO4J_UNAVAILABLE"):
        monkeypatch.delenv(var, raising=False)
    why = available("gds_fastrp")
    assert why.startswith("no Neo4j server: set NEO4J_URI and NEO4J_PASSWORD") and "make neo4j" in why
    why = server_unavailable({"NEO4J_URI": "bolt://127.0.0.1:1", "KGREC_NEO4J_UNAVAILABLE": "no `java` on PATH"})
    assert why.startswith("no Neo4j server") and why.endswith("no `java` on PATH")


def test_unreachable_server_is_a_reason_in_bounded_time():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    why = server_unavailable({"NEO4J_URI": f"bolt://127.0.0.1:{port}", "NEO4J_PASSWORD": "whatever-pass"})
    assert why.startswith(f"no Neo4j server reachable at bolt://127.0.0.1:{port}"), why
    assert time.monotonic() - t0 < 30


def test_too_small_a_heap_says_what_to_do(train):
    refused = RuntimeError("Failed to invoke procedure `gds.fastRP.stream`: Caused by: java.lang.IllegalStateException: "
                           "Memory required to run FastRP (1770086488b) exceeds available memory (1020395960b)")
    fake = FakeGDS(dim=8, fail_stream=refused)
    with pytest.raises(RuntimeError, match=r"heap is too small for FastRP with embedding_dimension 8 .* --heap 4g"):
        GDSFastRP(embedding_dimension=8).fit(train, config=CONFIG, driver=fake)
    assert not fake.graphs
