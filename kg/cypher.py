"""Every Cypher statement the project sends to Neo4j, in one place.

Rules that keep these statements safe and checkable:
- values always travel as `$parameters`, never inside the text;
- a label or relationship type reaches the text only through a builder below, which accepts
  nothing outside the allow-lists of `kg.schema` (`check_label` / `check_rel_type` raise ValueError);
- the unit tests parse every statement here (each builder over every allow-listed label and type)
  with an openCypher grammar; the schema commands (`CREATE CONSTRAINT`, `CREATE VECTOR INDEX`, ...),
  which openCypher does not cover, are checked against the Neo4j 5 syntax separately.

Stored layout: every node has its external `id` (unique per label) and `idx`, its row in the
in-memory node table, so `load()` restores node order exactly. INTERACTED relationships are ordered
by their `seq` property; every other relationship stores `ord`, a counter that grows with each
write, so that reading by `ord` restores the order of the in-memory edge table. A single `KGMeta`
node records the format version, a write counter and the `info` of the last write.
"""
from __future__ import annotations

import operator
import re

from .schema import (HAS_BRAND, IN_CATEGORY, INTERACTED, NODE_LABELS, NODE_PROPERTIES, OUTPUT_REL_SPECS,
                     PRODUCT_RELATIONS, RECOMMENDED, REL_SPECS, SIMILAR_TO, check_label, check_output_rel_type,
                     check_rel_type)

__all__ = [
    "META_LABEL", "NODE_KEY", "NODE_INDEX", "ORD", "REL_ORDER", "REL_KEYS", "NODE_WRITE_PROPERTIES",
    "REL_WRITE_PROPERTIES",
    "constraint", "schema_statements", "upsert_nodes", "create_nodes", "merge_relationships",
    "create_relationships", "delete_relationships",
    "max_order", "read_nodes", "read_relationships", "delete_nodes", "delete_all_relationships",
    "delete_all_output",
    "ANY_GRAPH_NODE", "READ_META", "WRITE_META", "DELETE_META", "EXPLORE", "EXPLORE_EXAMPLE_PARAMS",
    "VECTOR_INDEX", "EMBEDDING", "EMBEDDING_MODEL", "MAX_VECTOR_DIMENSIONS", "VECTOR_SIMILARITIES",
    "check_dimensions", "vector_index", "output_model_index", "output_schema_statements",
    "DROP_VECTOR_INDEX", "SHOW_INDEXES", "AWAIT_INDEX", "SET_EMBEDDINGS", "CLEAR_OTHER_EMBEDDINGS",
    "merge_output", "prune_output", "output_models", "delete_output_model",
    "EXPLORE_RESULTS", "EXPLORE_RESULTS_EXAMPLE_PARAMS",
    "GDS_VERSION", "GDS_PROJECT", "GDS_FASTRP_STREAM", "GDS_DROP",
]

META_LABEL = "KGMeta"      # fixed, never taken from input
NODE_KEY = "id"            # external id, unique per label (constraint)
NODE_INDEX = "idx"         # row of the node in the in-memory table
ORD = "ord"                # order of non-INTERACTED relationships


def _order_key(rel_type: str) -> str:
    return "seq" if rel_type == INTERACTED else ORD


# Property that orders each relationship type on read-back, and the properties that identify one
# relationship between the same two nodes (INTERACTED: one per interaction; others: at most one).
REL_ORDER: dict[str, str] = {t: _order_key(t) for t in REL_SPECS}
REL_KEYS: dict[str, tuple[str, ...]] = {t: (("seq",) if t == INTERACTED else ()) for t in REL_SPECS}


# --- schema --------------------------------------------------------------------------------------------
def constraint(label: str) -> str:
    """Uniqueness constraint on `id` for one label (Neo4j 5 syntax; a no-op when it exists)."""
    check_label(label)
    return (f"CREATE CONSTRAINT {label.lower()}_{NODE_KEY} IF NOT EXISTS "
            f"FOR (n:{label}) REQUIRE n.{NODE_KEY} IS UNIQUE")


def schema_statements() -> list[str]:
    """All schema commands `Neo4jStore.ensure_schema` runs."""
    return [constraint(label) for label in NODE_LABELS]


# --- writes --------------------------------------------------------------------------------------------
# Properties each write sets, besides the key(s) in the MERGE / CREATE pattern: a node's `idx` and its
# label's properties; INTERACTED's non-key properties; `ord` on every other relationship type. They are
# set one by one (`SET n.p = row.props.p`), not with `SET n += row.props`: a map could hold any key,
# the key in the pattern included, so the planner would put an Eager (all rows of the batch
# materialised before the first is written) in front of every `+=`.
NODE_WRITE_PROPERTIES: dict[str, tuple[str, ...]] = {
    label: (NODE_INDEX, *NODE_PROPERTIES[label]) for label in NODE_LABELS}
REL_WRITE_PROPERTIES: dict[str, tuple[str, ...]] = {
    t: (tuple(p for p in spec.properties if p not in REL_KEYS[t]) if t == INTERACTED else (ORD,))
    for t, spec in REL_SPECS.items()}


def _set_props(var: str, props: tuple[str, ...]) -> str:
    """`SET v.p = row.props.p, ...` over allow-listed property names (a null, or a missing key, removes p)."""
    return "SET " + ", ".join(f"{var}.{p} = row.props.{p}" for p in props) if props else ""


def upsert_nodes(label: str) -> str:
    """Create or update nodes. `$rows`: [{id, props}]; `props` holds `idx` and the label's properties,
    and a null in it removes that property."""
    check_label(label)
    return (f"UNWIND $rows AS row "
            f"MERGE (n:{label} {{{NODE_KEY}: row.id}}) "
            f"{_set_props('n', NODE_WRITE_PROPERTIES[label])}")


def create_nodes(label: str) -> str:
    """Create nodes, for the first write into a database that holds no knowledge graph (the rows of
    `upsert_nodes`; no lookup before each create). The uniqueness constraint on `id` refuses a second
    node with the same id, so this can never duplicate one."""
    check_label(label)
    return (f"UNWIND $rows AS row "
            f"CREATE (n:{label} {{{NODE_KEY}: row.id}}) "
            f"{_set_props('n', NODE_WRITE_PROPERTIES[label])}")


def _endpoints(rel_type: str) -> tuple[str, str]:
    spec = REL_SPECS[check_rel_type(rel_type)]
    return spec.src, spec.dst


def _key_map(rel_type: str) -> str:
    keys = REL_KEYS[rel_type]
    return " {" + ", ".join(f"{k}: row.{k}" for k in keys) + "}" if keys else ""


def merge_relationships(rel_type: str) -> str:
    """Create relationships between existing nodes (idempotent).

    `$rows`: [{src_id, dst_id, props}] plus the identifying keys (`seq` for INTERACTED); `props`
    holds the other properties and the order key.
    """
    src, dst = _endpoints(rel_type)
    return (f"UNWIND $rows AS row "
            f"MATCH (a:{src} {{{NODE_KEY}: row.src_id}}) "
            f"MATCH (b:{dst} {{{NODE_KEY}: row.dst_id}}) "
            f"MERGE (a)-[r:{rel_type}{_key_map(rel_type)}]->(b) "
            f"{_set_props('r', REL_WRITE_PROPERTIES[rel_type])}")


def create_relationships(rel_type: str) -> str:
    """Create relationships (the rows of `merge_relationships`) without first looking for an equal one:
    only for the first write into a database that holds no knowledge graph, where none can exist.
    A MERGE has to walk the relationships of one end node (the less connected one) before each
    create, which on products with thousands of ALSO_BOUGHT neighbours is most of the cost of a load."""
    src, dst = _endpoints(rel_type)
    return (f"UNWIND $rows AS row "
            f"MATCH (a:{src} {{{NODE_KEY}: row.src_id}}) "
            f"MATCH (b:{dst} {{{NODE_KEY}: row.dst_id}}) "
            f"CREATE (a)-[r:{rel_type}{_key_map(rel_type)}]->(b) "
            f"{_set_props('r', REL_WRITE_PROPERTIES[rel_type])}")


def delete_relationships(rel_type: str) -> str:
    """Delete relationships. `$rows`: [{src_id, dst_id}] plus the identifying keys (`seq` for INTERACTED)."""
    src, dst = _endpoints(rel_type)
    return (f"UNWIND $rows AS row "
            f"MATCH (a:{src} {{{NODE_KEY}: row.src_id}})-[r:{rel_type}{_key_map(rel_type)}]->"
            f"(b:{dst} {{{NODE_KEY}: row.dst_id}}) "
            f"DELETE r")


def max_order(rel_type: str) -> str:
    """The largest order key stored for a relationship type (null when there is none): `max_order`."""
    check_rel_type(rel_type)
    return f"MATCH ()-[r:{rel_type}]->() RETURN max(r.{REL_ORDER[rel_type]}) AS max_order"


def delete_nodes(label: str) -> str:
    """Delete up to `$batch` nodes of a label with their relationships; returns `deleted` (repeat until 0)."""
    check_label(label)
    return f"MATCH (n:{label}) WITH n LIMIT $batch DETACH DELETE n RETURN count(*) AS deleted"


def delete_all_relationships(rel_type: str) -> str:
    """Delete up to `$batch` relationships of a graph type; returns `deleted` (repeat until 0). `clear()`
    empties each type this way before deleting nodes: a DETACH DELETE of a batch of well-connected products
    would otherwise delete millions of relationships in one transaction."""
    check_rel_type(rel_type)
    return f"MATCH ()-[r:{rel_type}]->() WITH r LIMIT $batch DELETE r RETURN count(*) AS deleted"


def delete_all_output(output_type: str) -> str:
    """`delete_all_relationships` for an output type (every model version, and those written by hand)."""
    check_output_rel_type(output_type)
    return f"MATCH ()-[r:{output_type}]->() WITH r LIMIT $batch DELETE r RETURN count(*) AS deleted"


# --- reads ---------------------------------------------------------------------------------------------
def read_nodes(label: str) -> str:
    """Every node of a label: columns `idx`, `id` and the label's properties, in `idx` order."""
    check_label(label)
    cols = ", ".join(f"n.{p} AS {p}" for p in (NODE_INDEX, NODE_KEY, *NODE_PROPERTIES[label]))
    return f"MATCH (n:{label}) RETURN {cols} ORDER BY n.{NODE_INDEX}"


def read_relationships(rel_type: str) -> str:
    """Every relationship of a type: columns `src`, `dst` (node idx) and its properties, in stored order."""
    src, dst = _endpoints(rel_type)
    cols = ", ".join([f"a.{NODE_INDEX} AS src", f"b.{NODE_INDEX} AS dst",
                      *(f"r.{p} AS {p}" for p in REL_SPECS[rel_type].properties)])
    return f"MATCH (a:{src})-[r:{rel_type}]->(b:{dst}) RETURN {cols} ORDER BY r.{REL_ORDER[rel_type]}"


_ANY_LABEL = " OR ".join(f"n:{label}" for label in NODE_LABELS)
ANY_GRAPH_NODE = f"MATCH (n) WHERE {_ANY_LABEL} WITH n LIMIT 1 RETURN count(n) AS found"
READ_META = (f"MATCH (m:{META_LABEL}) RETURN m.format_version AS format_version, m.version AS version, "
             f"m.written_at AS written_at, m.info_json AS info_json, m.counts_json AS counts_json")
# `$props`: format_version, written_at, info_json, counts_json; the write counter `version` goes up by one.
WRITE_META = (f"MERGE (m:{META_LABEL}) "
              f"SET m += $props, m.version = coalesce(m.version, 0) + 1 "
              f"RETURN m.version AS version")
DELETE_META = f"MATCH (m:{META_LABEL}) DELETE m"


# --- model output (scripts/export_to_neo4j.py) -----------------------------------------------------------
VECTOR_INDEX = "product_embedding"      # name of the vector index on Product.embedding (fixed, never input)
EMBEDDING = "embedding"                 # Product property: the fused product vector (list of floats)
EMBEDDING_MODEL = "embedding_model"     # Product property: the model version that wrote `embedding`
MAX_VECTOR_DIMENSIONS = 4096            # Neo4j 5 vector indexes (provider vector-2.0) take 1..4096
VECTOR_SIMILARITIES: tuple[str, ...] = ("cosine", "euclidean")

# Index options cannot be parameters of a schema command, so the dimension and the similarity function
# are written into the text: the dimension as a checked int, the function from the allow-list above,
# and the result must match this pattern exactly before it is returned.
_VECTOR_INDEX_SYNTAX = re.compile(
    r"CREATE VECTOR INDEX product_embedding IF NOT EXISTS FOR \(p:Product\) ON \(p\.embedding\) "
    r"OPTIONS \{indexConfig: \{`vector\.dimensions`: [1-9][0-9]{0,3}, "
    r"`vector\.similarity_function`: '(cosine|euclidean)'\}\}")


def check_dimensions(dimensions: object) -> int:
    """`dimensions` as an int in 1..MAX_VECTOR_DIMENSIONS (numpy ints accepted; bools, floats, strings not)."""
    if isinstance(dimensions, bool):
        raise ValueError(f"vector dimensions must be an integer, got {dimensions!r}")
    try:
        d = operator.index(dimensions)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"vector dimensions must be an integer, got {dimensions!r} "
                         f"({type(dimensions).__name__})") from None
    if not 1 <= d <= MAX_VECTOR_DIMENSIONS:
        raise ValueError(f"vector dimensions must be in 1..{MAX_VECTOR_DIMENSIONS} (Neo4j 5 vector index), got {d}")
    return d


def vector_index(dimensions: int, similarity: str = "cosine") -> str:
    """The vector index on Product.embedding (Neo4j 5.13+; a no-op when an index of that name exists)."""
    d = check_dimensions(dimensions)
    if similarity not in VECTOR_SIMILARITIES:
        raise ValueError(f"unknown vector similarity {similarity!r}; allowed: {', '.join(VECTOR_SIMILARITIES)}")
    statement = (f"CREATE VECTOR INDEX {VECTOR_INDEX} IF NOT EXISTS FOR (p:Product) ON (p.{EMBEDDING}) "
                 f"OPTIONS {{indexConfig: {{`vector.dimensions`: {d}, "
                 f"`vector.similarity_function`: '{similarity}'}}}}")
    if not _VECTOR_INDEX_SYNTAX.fullmatch(statement):  # belt and braces: nothing else reaches the server
        raise ValueError(f"refusing to send a malformed vector index command: {statement!r}")
    return statement


def output_model_index(output_type: str) -> str:
    """Range index on `model` of an output relationship type (an old model's relationships are found fast)."""
    check_output_rel_type(output_type)
    return (f"CREATE INDEX {output_type.lower()}_model IF NOT EXISTS "
            f"FOR ()-[r:{output_type}]-() ON (r.model)")


def output_schema_statements(dimensions: int, similarity: str = "cosine") -> list[str]:
    """Schema commands for the model output: the vector index, then one `model` index per output type."""
    return [vector_index(dimensions, similarity), *(output_model_index(t) for t in OUTPUT_REL_SPECS)]


DROP_VECTOR_INDEX = f"DROP INDEX {VECTOR_INDEX} IF EXISTS"
# every index with its options; the store picks `product_embedding` out in Python (no literal, no WHERE)
SHOW_INDEXES = "SHOW INDEXES YIELD name, type, options"
# `$name`, `$timeout_s`: wait until the index is online (a new vector index fills in the background)
AWAIT_INDEX = "CALL db.awaitIndex($name, $timeout_s)"

# `$rows`: [{id, embedding}], `$model`: the model version. Returns `written`, the products that matched.
SET_EMBEDDINGS = (f"UNWIND $rows AS row "
                  f"MATCH (p:Product {{{NODE_KEY}: row.id}}) "
                  f"SET p.{EMBEDDING} = row.embedding, p.{EMBEDDING_MODEL} = $model "
                  f"RETURN count(p) AS written")
# Remove up to `$batch` embeddings written by another model than `$model` (repeat until `cleared` is 0):
# two models' vectors live in different spaces and must not meet in one index.
CLEAR_OTHER_EMBEDDINGS = (f"MATCH (p:Product) "
                          f"WHERE p.{EMBEDDING} IS NOT NULL "
                          f"AND (p.{EMBEDDING_MODEL} IS NULL OR p.{EMBEDDING_MODEL} <> $model) "
                          f"WITH p LIMIT $batch "
                          f"REMOVE p.{EMBEDDING}, p.{EMBEDDING_MODEL} "
                          f"RETURN count(*) AS cleared")


def _output_endpoints(output_type: str) -> tuple[str, str]:
    spec = OUTPUT_REL_SPECS[check_output_rel_type(output_type)]
    return spec.src, spec.dst


def merge_output(output_type: str) -> str:
    """Create or update output relationships, one per (start, end, model).

    `$rows`: [{src_id, dst_id, score, rank}], `$model`: the model version. Returns `written`, the rows
    whose two nodes exist (the others do nothing).
    """
    src, dst = _output_endpoints(output_type)
    return (f"UNWIND $rows AS row "
            f"MATCH (a:{src} {{{NODE_KEY}: row.src_id}}) "
            f"MATCH (b:{dst} {{{NODE_KEY}: row.dst_id}}) "
            f"MERGE (a)-[r:{output_type} {{model: $model}}]->(b) "
            f"SET r.score = row.score, r.rank = row.rank "
            f"RETURN count(r) AS written")


def prune_output(output_type: str) -> str:
    """Delete a source's relationships of `$model` to products outside its new top k.

    `$rows`: [{src_id, keep}], `keep` the new top-k product ids (empty: delete all of the source's).
    """
    src, dst = _output_endpoints(output_type)
    return (f"UNWIND $rows AS row "
            f"MATCH (a:{src} {{{NODE_KEY}: row.src_id}})-[r:{output_type} {{model: $model}}]->(b:{dst}) "
            f"WHERE NOT b.{NODE_KEY} IN row.keep "
            f"DELETE r")


def output_models(output_type: str) -> str:
    """The model versions stored on an output relationship type: columns `model`, `relationships`."""
    check_output_rel_type(output_type)
    return (f"MATCH ()-[r:{output_type}]->() "
            f"RETURN r.model AS model, count(r) AS relationships ORDER BY model")


def delete_output_model(output_type: str) -> str:
    """Delete up to `$batch` relationships of model `$old`; returns `deleted` (repeat until 0)."""
    check_output_rel_type(output_type)
    return (f"MATCH ()-[r:{output_type} {{model: $old}}]->() "
            f"WITH r LIMIT $batch DELETE r RETURN count(*) AS deleted")


# --- exploration (docs/neo4j.md shows these for Neo4j Browser; a unit test keeps the two in step) --------
EXPLORE: dict[str, str] = {
    # A product's brand and, one row each, the category paths (root first) it is filed under.
    "product_context": (
        "MATCH (p:Product {id: $product_id})\n"
        "OPTIONAL MATCH (p)-[:HAS_BRAND]->(b:Brand)\n"
        "OPTIONAL MATCH (p)-[:IN_CATEGORY]->(leaf:Category)\n"
        "OPTIONAL MATCH path = (leaf)-[:SUBCATEGORY_OF*]->(root:Category)\n"
        "WHERE NOT (root)-[:SUBCATEGORY_OF]->()\n"
        "RETURN p.id AS product, p.title AS title, p.price AS price, b.name AS brand,\n"
        "       coalesce([c IN reverse(nodes(path)) | c.name], [leaf.name]) AS category_path"),
    # A user's interactions in arrival order, with the product's brand.
    "user_history": (
        "MATCH (u:User {id: $user_id})-[r:INTERACTED]->(p:Product)\n"
        "OPTIONAL MATCH (p)-[:HAS_BRAND]->(b:Brand)\n"
        "RETURN r.seq AS seq, r.event AS event, r.weight AS weight,\n"
        "       CASE WHEN r.timestamp IS NULL THEN null ELSE datetime({epochSeconds: r.timestamp}) END AS at,\n"
        "       p.id AS product, p.title AS title, b.name AS brand\n"
        "ORDER BY r.seq\n"
        "LIMIT $k"),
    # Pairs of brands bought or viewed by the same users, most shared customers first.
    "brands_sharing_customers": (
        "MATCH (b1:Brand)<-[:HAS_BRAND]-(:Product)<-[:INTERACTED]-(u:User)"
        "-[:INTERACTED]->(:Product)-[:HAS_BRAND]->(b2:Brand)\n"
        "WHERE b1.id < b2.id\n"
        "WITH b1, b2, count(DISTINCT u) AS shared_customers\n"
        "WHERE shared_customers >= $min_shared\n"
        "RETURN b1.name AS brand, b2.name AS other_brand, shared_customers\n"
        "ORDER BY shared_customers DESC, brand, other_brand\n"
        "LIMIT $k"),
    # The category tree down to a depth, one row per category in tree order (ids are root paths).
    "category_tree": (
        "MATCH (c:Category)\n"
        "WHERE c.level <= $max_level\n"
        "OPTIONAL MATCH (c)-[:SUBCATEGORY_OF]->(parent:Category)\n"
        "OPTIONAL MATCH (p:Product)-[:IN_CATEGORY]->(c)\n"
        "RETURN c.level AS level, c.name AS name, parent.name AS parent, count(p) AS products, c.id AS path\n"
        "ORDER BY path"),
    # Products two hops from a user (through a product relation of something the user touched),
    # which the user has not interacted with and which are in the catalog.
    "two_hops_from_user": (
        "MATCH (u:User {id: $user_id})-[:INTERACTED]->(seen:Product)-[rel]-(p:Product)\n"
        "WHERE p.in_catalog AND NOT (u)-[:INTERACTED]->(p)\n"
        "RETURN p.id AS product, p.title AS title, count(DISTINCT seen) AS via_products,\n"
        "       collect(DISTINCT type(rel)) AS relations\n"
        "ORDER BY via_products DESC, product\n"
        "LIMIT $k"),
    # The same neighbourhoods as pictures (Browser's graph view): a product's brand and leaf categories ...
    "product_picture": (
        f"MATCH path = (p:Product {{id: $product_id}})-[:{HAS_BRAND}|{IN_CATEGORY}]->()\n"
        "RETURN path"),
    # ... and a user's products with the products they are related to.
    "user_picture": (
        f"MATCH path = (u:User {{id: $user_id}})-[:{INTERACTED}]->(:Product)-[]-(:Product)\n"
        "RETURN path\n"
        "LIMIT $k"),
    # What is stored: nodes per label.
    "node_counts": (
        "MATCH (n)\n"
        "RETURN labels(n) AS labels, count(*) AS nodes\n"
        "ORDER BY nodes DESC"),
}

# Example parameters (the docs turn these into `:param` lines; the live tests run every query with them).
EXPLORE_EXAMPLE_PARAMS: dict[str, dict[str, object]] = {
    "product_context": {"product_id": "B0001"},
    "user_history": {"user_id": "U1", "k": 50},
    "brands_sharing_customers": {"min_shared": 2, "k": 25},
    "category_tree": {"max_level": 2},
    "two_hops_from_user": {"user_id": "U1", "k": 20},
    "product_picture": {"product_id": "B0001"},
    "user_picture": {"user_id": "U1", "k": 50},
    "node_counts": {},
}


# --- exploring the model's output (cypher/explore.cypher and docs/neo4j.md show these; live tests run them) --
# Relationship types that can explain a recommendation: a product's brand and categories, product facts.
_EXPLAIN_TYPES = "|".join((HAS_BRAND, IN_CATEGORY, *PRODUCT_RELATIONS))

EXPLORE_RESULTS: dict[str, str] = {
    # A user's history (in arrival order) beside their recommendations (best first), in one table.
    "history_and_recommendations": (
        f"MATCH (u:User {{id: $user_id}})-[r:{INTERACTED}|{RECOMMENDED}]->(p:Product)\n"
        "OPTIONAL MATCH (p)-[:HAS_BRAND]->(b:Brand)\n"
        "RETURN type(r) AS side, coalesce(r.rank, r.seq) AS position, p.id AS product, p.title AS title,\n"
        "       b.name AS brand, r.score AS score, r.model AS model\n"
        "ORDER BY side, position"),
    # Why a product was recommended: paths from the user through a product they interacted with to the
    # recommended product itself (a product relation) or to a brand or category the two share.
    "why_recommended": (
        f"MATCH (u:User {{id: $user_id}})-[rec:{RECOMMENDED}]->(p:Product {{id: $product_id}})\n"
        f"MATCH path = (u)-[:INTERACTED]->(seen:Product)-[link:{_EXPLAIN_TYPES}]-(via)\n"
        f"WHERE seen <> p AND (via = p OR (via)<-[:{HAS_BRAND}|{IN_CATEGORY}]-(p))\n"
        "RETURN rec.rank AS rank, seen.id AS seen, seen.title AS seen_title, type(link) AS link,\n"
        "       coalesce(via.name, via.title) AS via, path, rec, p\n"
        "LIMIT $k"),
    # A product's nearest products as the model wrote them (SIMILAR_TO, best first).
    "similar_products": (
        f"MATCH (p:Product {{id: $product_id}})-[s:{SIMILAR_TO}]->(q:Product)\n"
        "OPTIONAL MATCH (q)-[:HAS_BRAND]->(b:Brand)\n"
        "RETURN s.rank AS rank, q.id AS product, q.title AS title, b.name AS brand, s.score AS score,\n"
        "       s.model AS model\n"
        "ORDER BY rank\n"
        "LIMIT $k"),
    # The same question asked of the vector index: the k products with the nearest embeddings (the
    # product itself skipped; cosine scores are mapped to [0, 1], 1 = same direction).
    "vector_neighbours": (
        "MATCH (p:Product {id: $product_id})\n"
        "CALL db.index.vector.queryNodes($index, $k + 1, p.embedding) YIELD node, score\n"
        "WHERE node <> p\n"
        "RETURN node.id AS product, node.title AS title, score\n"
        "ORDER BY score DESC\n"
        "LIMIT $k"),
    # A user's recommendations whose brand already appears in their history, with how often it does.
    "recommendations_sharing_brand": (
        f"MATCH (u:User {{id: $user_id}})-[rec:{RECOMMENDED}]->(p:Product)-[:HAS_BRAND]->(b:Brand)\n"
        "WHERE (u)-[:INTERACTED]->(:Product)-[:HAS_BRAND]->(b)\n"
        "RETURN rec.rank AS rank, p.id AS product, p.title AS title, b.name AS brand,\n"
        "       size([(u)-[:INTERACTED]->(h:Product)-[:HAS_BRAND]->(b) | h]) AS brand_in_history\n"
        "ORDER BY rank"),
    # Which model versions the stored recommendations and neighbours come from (one after an export).
    "model_versions": (
        f"MATCH ()-[r:{RECOMMENDED}|{SIMILAR_TO}]->()\n"
        "RETURN type(r) AS relationship, r.model AS model, count(*) AS relationships,\n"
        "       min(r.score) AS min_score, max(r.score) AS max_score\n"
        "ORDER BY relationship, model"),
    # Which model version wrote the product embeddings, and their dimension.
    "embedding_models": (
        "MATCH (p:Product)\n"
        "WHERE p.embedding IS NOT NULL\n"
        "RETURN p.embedding_model AS model, count(*) AS products, min(size(p.embedding)) AS dimensions\n"
        "ORDER BY model"),
}

# Example parameters (the docs and cypher/explore.cypher show them as `:param` lines).
EXPLORE_RESULTS_EXAMPLE_PARAMS: dict[str, dict[str, object]] = {
    "history_and_recommendations": {"user_id": "U2"},
    "why_recommended": {"user_id": "U2", "product_id": "B0002", "k": 25},
    "similar_products": {"product_id": "B0001", "k": 10},
    "vector_neighbours": {"product_id": "B0001", "k": 10, "index": VECTOR_INDEX},
    "recommendations_sharing_brand": {"user_id": "U2"},
    "model_versions": {},
    "embedding_models": {},
}


# --- Graph Data Science (fusion.evaluation.baselines.gds_fastrp): an in-memory graph from parameters --------
# None of these reads or writes the stored graph. The projection is a Cypher aggregation over `$groups`,
# lists of integer node ids that the caller sends (GDS takes integers as node ids): one group per label
# (every node of the training graph, `target` null) and per relationship type (`source[i]` -> `target[i]`,
# `weight[i]` when weights are sent). `$config` carries the projection settings (undirected orientation).
GDS_VERSION = "RETURN gds.version() AS version"
GDS_PROJECT = (
    "UNWIND $groups AS g\n"
    "UNWIND range(0, size(g.source) - 1) AS i\n"
    "WITH gds.graph.project($graph, g.source[i], g.target[i],\n"
    "       {sourceNodeLabels: g.source_label, targetNodeLabels: g.target_label, relationshipType: g.type,\n"
    "        relationshipProperties: CASE WHEN g.weight IS NULL THEN null ELSE {weight: g.weight[i]} END},\n"
    "       $config) AS projection\n"
    "RETURN projection.graphName AS graph, projection.nodeCount AS nodes,\n"
    "       projection.relationshipCount AS relationships, projection.projectMillis AS millis")
# FastRP on the projected graph; only nodes with an id below `$below` come back (the caller numbers the
# nodes it wants embeddings of first).
GDS_FASTRP_STREAM = (
    "CALL gds.fastRP.stream($graph, $config) YIELD nodeId, embedding\n"
    "WHERE nodeId < $below\n"
    "RETURN nodeId, embedding")
# `drop` in backticks: DROP is a keyword of the openCypher grammar the unit tests parse with (Neo4j takes both)
GDS_DROP = "CALL gds.graph.`drop`($graph, false) YIELD graphName RETURN graphName"
