"""FastRP embeddings computed by Neo4j Graph Data Science in the server: what a Neo4j user would pick.

FastRP (Chen et al., CIKM 2019) gives every node a very sparse random vector :math:`\\mathbf{R}` and averages
it over the neighbourhood, hop by hop; each hop's vector enters the embedding L2-normalised, with its weight:

.. math::
    \\mathbf{E}^{(0)} = \\mathbf{R}, \\quad \\mathbf{E}^{(k)} = D^{-1} A\\, \\mathbf{E}^{(k-1)}, \\qquad
    \\mathbf{e} = \\sum_{k=1}^{K} w_k \\frac{\\mathbf{E}^{(k)}}{\\lVert \\mathbf{E}^{(k)} \\rVert}, \\qquad
    s_{ui} = \\mathbf{u}^\\top \\hat{\\mathbf{e}}_i, \\quad
    \\mathbf{u} = \\frac{1}{|I_u|} \\sum_{j \\in I_u} \\hat{\\mathbf{e}}_j \\;\\text{(history_mean)} \\text{ or }
    \\hat{\\mathbf{e}}_u \\;\\text{(node)}

with :math:`\\hat{\\mathbf{e}}` the L2-normalised embedding (so the scores rank items by cosine).

`fit` projects the training graph of `TrainData` (users, every product, brands, categories; INTERACTED from
`train.graph`, which holds training rows only: the leak guard; HAS_BRAND, IN_CATEGORY, SUBCATEGORY_OF and the
product relations) into a GDS in-memory graph, undirected, runs `gds.fastRP.stream` there with
`randomSeed = train.seed`, reads the embeddings of the catalog products (and users) back, and drops the
in-memory graph again, also when something fails. Nothing is written to the database: the projection is a
Cypher aggregation over parameters that carry integer node ids (`kg.cypher.GDS_PROJECT`), so the server's
stored graph (whatever it holds, the same data or not) is never read or touched.

Needs a Neo4j server with GDS (`make neo4j` or `scripts/neo4j_server.py run -- ...` start one with GDS
2.13; connection from NEO4J_URI / NEO4J_PASSWORD via `kg.Neo4jConfig.from_env`). `server_unavailable()`
says why it cannot run here, and the evaluation skips it with that reason.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kg import cypher
from kg.layout import CATALOG, OTHER_PRODUCTS, layout_edges, node_layout
from kg.schema import BRAND, CATEGORY, INTERACTED, PRODUCT, REL_SPECS, USER

from ...data import TrainData
from ...ranking_model import RankingModel
from ...vectors import history_means, unit_rows

__all__ = ["GDSFastRP", "Projection", "build_projection", "server_unavailable", "USER_VECTORS", "GRAPH_PREFIX"]

USER_VECTORS = ("history_mean", "node")
GRAPH_PREFIX = "kgrec_fastrp_"  # in-memory graph names: this prefix and a random suffix, one per fit
# the projection's settings (a parameter, never in the text): every relationship type undirected
PROJECT_CONFIG = {"undirectedRelationshipTypes": ["*"]}


@dataclass
class Projection:
    """The training graph as the parameters of `kg.cypher.GDS_PROJECT`, with integer node ids.

    Ids: catalog products first (id = item column, 0 .. num_items-1), then users (num_items + user index),
    then the products outside the catalog, brands and categories; so the embeddings wanted come back as
    the ids below `users_end` (`catalog_end` without users).

    Attributes:
        groups: one dict per label (every node, no target) and per relationship type with edges:
            `type`, `source_label`, `target_label`, `source` / `target` (lists of ids; target None for
            nodes) and `weight` (list of floats, or None).
        catalog_end: ids below this are the catalog products.
        users_end: ids in [catalog_end, users_end) are the users.
        num_nodes / num_relationships: what the projection should report back.
    """

    groups: list[dict[str, Any]]
    catalog_end: int
    users_end: int
    num_nodes: int
    num_relationships: int

    def rows(self) -> int:
        """Rows of the aggregation (one per node and one per relationship)."""
        return sum(len(g["source"]) for g in self.groups)


def node_ids(train: TrainData) -> dict[str, np.ndarray]:
    """Label -> int64 [num_nodes(label)]: the projection id of each node (see `Projection`)."""
    return node_layout(train.graph, train.items, [CATALOG, USER, OTHER_PRODUCTS, BRAND, CATEGORY])[0]


def build_projection(train: TrainData, weights: bool = False) -> Projection:
    """The parameter groups for the training graph of `train` (pure: no server).

    Every node of every label is sent (so nodes without relationships still get an embedding), then the
    relationships of every schema type that has edges in `train.graph`: INTERACTED are its training rows
    only. With `weights`, each relationship carries `weight`: INTERACTED its own weight (1.0 where missing),
    the others 1.0.
    """
    g = train.graph
    ids = node_ids(train)
    groups: list[dict[str, Any]] = []
    for label in (PRODUCT, USER, BRAND, CATEGORY):
        if len(ids[label]):
            # catalog products first, so that the ids the caller reads back are a prefix
            order = np.sort(ids[label])
            groups.append({"type": None, "source_label": label, "target_label": None,
                           "source": order.tolist(), "target": None, "weight": None})
    n_rels = 0
    for rel, src, dst in layout_edges(g, ids):
        spec, e = REL_SPECS[rel], g.edges[rel]
        w = None
        if weights:
            w = (e["weight"].astype("float64").fillna(1.0).to_numpy() if rel == INTERACTED and "weight" in e
                 else np.ones(len(e)))
            w = w.tolist()
        groups.append({"type": rel, "source_label": spec.src, "target_label": spec.dst,
                       "source": src.tolist(), "target": dst.tolist(), "weight": w})
        n_rels += len(e)
    n_nodes = sum(len(v) for v in ids.values())
    return Projection(groups, catalog_end=train.num_items, users_end=train.num_items + g.num_nodes(USER),
                      num_nodes=n_nodes, num_relationships=n_rels)


def fastrp_config(embedding_dimension: int, iteration_weights: list[float], normalization_strength: float,
                  node_self_influence: float, seed: int, weighted: bool,
                  concurrency: int | None = None) -> dict[str, Any]:
    """The `gds.fastRP.stream` configuration map (sent as one parameter)."""
    conf: dict[str, Any] = {"embeddingDimension": int(embedding_dimension),
                            "iterationWeights": [float(w) for w in iteration_weights],
                            "normalizationStrength": float(normalization_strength),
                            "nodeSelfInfluence": float(node_self_influence), "randomSeed": int(seed)}
    if weighted:
        conf["relationshipWeightProperty"] = "weight"
    if concurrency is not None:
        conf["concurrency"] = int(concurrency)
    return conf


def server_unavailable(environ: Mapping[str, str] | None = None) -> str | None:
    """None when a Neo4j server with GDS answers at NEO4J_URI, else why not (for the evaluation's skip)."""
    import os

    env = os.environ if environ is None else environ
    if not env.get("NEO4J_URI") or not env.get("NEO4J_PASSWORD"):
        why = env.get("KGREC_NEO4J_UNAVAILABLE")
        return ("no Neo4j server: set NEO4J_URI and NEO4J_PASSWORD (`make neo4j` starts one with GDS, or run "
                "the evaluation inside `scripts/neo4j_server.py run -- ...`)" + (f"; {why}" if why else ""))
    from kg.neo4j_store import Neo4jConfig, Neo4jConnectionError, Neo4jStore

    try:
        config = Neo4jConfig.from_env(env, max_retries=1, connect_timeout_s=5.0)
    except ValueError as e:
        return f"no Neo4j server: {e}"
    try:
        with Neo4jStore(config, show_progress=False) as store:
            driver = store.connect()
            import neo4j.exceptions

            try:
                version = driver.execute_query(cypher.GDS_VERSION, database_=config.database).records[0]["version"]
            except neo4j.exceptions.Neo4jError as e:
                return (f"GDS not installed on the server at {config.uri}: gds.version() failed ({e.code}); "
                        f"kg.neo4j_server starts Neo4j with Graph Data Science, or install the GDS plugin")
    except (Neo4jConnectionError, OSError) as e:
        return f"no Neo4j server reachable at {config.uri}: {e}"
    except Exception as e:  # noqa: BLE001 (the driver's own errors: a reason to skip, not a crash)
        return f"the Neo4j server at {config.uri} did not answer gds.version(): {type(e).__name__}: {e}"
    if not str(version).startswith("2."):
        return f"GDS {version} at {config.uri}: gds_fastrp is written for GDS 2.x (2.13 runs with Neo4j 5.26)"
    return None


class GDSFastRP(RankingModel):
    """FastRP node embeddings from GDS over the training graph; users scored by cosine to the items.

    Args:
        embedding_dimension: FastRP `embeddingDimension` (default 1024: on scientific's validation 256, 512,
            1024 and 2048 gave NDCG@10 0.0747, 0.0781, 0.0806, 0.0806).
        iteration_weights: FastRP `iterationWeights` :math:`w_1..w_K`, one per hop (default [0, 0.5, 1]:
            the first hop left out as in GDS's default [0, 1, 1], the second at half the weight of the third;
            validation NDCG@10 on scientific 0.0823 vs 0.0806).
        normalization_strength: FastRP `normalizationStrength` (default 0: degree plays no role; negative
            values weigh low-degree neighbours up).
        node_self_influence: FastRP `nodeSelfInfluence` (default 0).
        user_vector: "history_mean" (mean of the user's training items' embeddings) or "node" (the user
            node's own FastRP embedding); picked on validation (default "history_mean").
        relationship_weights: use INTERACTED's `weight` (others 1.0) as FastRP's relationship weight
            (default False).
        concurrency: GDS threads (default None: GDS's default; Community allows at most 4).
    """

    name = "gds_fastrp"

    def __init__(self, embedding_dimension: int = 1024,
                 iteration_weights: list[float] | tuple[float, ...] = (0.0, 0.5, 1.0),
                 normalization_strength: float = 0.0, node_self_influence: float = 0.0,
                 user_vector: str = "history_mean", relationship_weights: bool = False,
                 concurrency: int | None = None) -> None:
        if embedding_dimension < 1:
            raise ValueError(f"embedding_dimension must be >= 1, got {embedding_dimension}")
        if not iteration_weights:
            raise ValueError("iteration_weights needs at least one weight")
        if user_vector not in USER_VECTORS:
            raise ValueError(f"user_vector must be one of {', '.join(USER_VECTORS)}, got {user_vector!r}")
        self.embedding_dimension = int(embedding_dimension)
        self.iteration_weights = [float(w) for w in iteration_weights]
        self.normalization_strength = float(normalization_strength)
        self.node_self_influence = float(node_self_influence)
        self.user_vector = user_vector
        self.relationship_weights = bool(relationship_weights)
        self.concurrency = concurrency

    def fit(self, train: TrainData, config: Any = None, driver: Any = None) -> "GDSFastRP":
        """Project, embed, read back, drop. `config`: a `kg.Neo4jConfig` (default: from the environment);
        `driver`: an open `neo4j.Driver` to use instead of one of its own (tests inject a fake)."""
        from kg.neo4j_store import Neo4jConfig, Neo4jStore

        t0 = time.perf_counter()
        proj = build_projection(train, weights=self.relationship_weights)
        config = config or Neo4jConfig.from_env()
        graph = GRAPH_PREFIX + uuid.uuid4().hex[:12]
        below = proj.users_end if self.user_vector == "node" else proj.catalog_end
        conf = fastrp_config(self.embedding_dimension, self.iteration_weights, self.normalization_strength,
                             self.node_self_influence, train.seed, self.relationship_weights, self.concurrency)
        info: dict[str, Any] = {"graph": graph, "rows": proj.rows(), "build_s": time.perf_counter() - t0}
        with Neo4jStore(config, driver=driver, show_progress=False) as store:
            run = store.connect().execute_query
            db = config.database
            try:  # the in-memory graph is dropped whatever happens (a failing drop does not hide the cause)
                t = time.perf_counter()
                rec = run(cypher.GDS_PROJECT, {"groups": proj.groups, "graph": graph, "config": PROJECT_CONFIG},
                          database_=db).records[0]
                info.update(project_s=time.perf_counter() - t, nodes=rec["nodes"], relationships=rec["relationships"])
                if rec["nodes"] != proj.num_nodes:
                    raise RuntimeError(f"GDS projected {rec['nodes']} nodes of the {proj.num_nodes} sent")
                t = time.perf_counter()
                records = run(cypher.GDS_FASTRP_STREAM, {"graph": graph, "config": conf, "below": below},
                              database_=db).records
                info["fastrp_s"] = time.perf_counter() - t
            except BaseException as e:
                try:
                    run(cypher.GDS_DROP, {"graph": graph}, database_=db)
                except Exception:  # noqa: BLE001 (the first error is the one to report)
                    pass
                if "exceeds available memory" in str(e):  # GDS's own estimate refused the run
                    raise RuntimeError(
                        f"gds_fastrp: the server's heap is too small for FastRP with embedding_dimension "
                        f"{self.embedding_dimension} on {proj.num_nodes:,} nodes; start it with a larger heap "
                        f"(scripts/neo4j_server.py --heap 4g, NEO4J_HEAP_SIZE) or use a smaller dimension. "
                        f"GDS said: {getattr(e, 'message', None) or e}") from e
                raise
            run(cypher.GDS_DROP, {"graph": graph}, database_=db)
        node = np.fromiter((r["nodeId"] for r in records), dtype=np.int64, count=len(records))
        if len(records) != below or not np.array_equal(np.sort(node), np.arange(below)):
            raise RuntimeError(f"FastRP returned {len(records)} embeddings for the ids below {below}, not one each")
        emb = np.zeros((below, self.embedding_dimension), dtype=np.float32)
        if below:
            emb[node] = np.asarray([r["embedding"] for r in records], dtype=np.float32)
        self.item_vectors_ = unit_rows(emb[:proj.catalog_end])
        if self.user_vector == "node":
            self.user_vectors_ = unit_rows(emb[proj.catalog_end:proj.users_end])
        else:  # the mean of the user's (unit) training item vectors; no history: zeros
            self.user_vectors_ = history_means(train.user_items, self.item_vectors_)
        info["total_s"] = time.perf_counter() - t0
        self.fit_info_ = {k: round(v, 3) if isinstance(v, float) else v for k, v in info.items()}
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.user_vectors_[user_idx] @ self.item_vectors_.T, dtype=np.float32)
