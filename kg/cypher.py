"""Every Cypher statement the project sends to Neo4j, in one place.

Rules that keep these statements safe and checkable:
- values always travel as `$parameters`, never inside the text;
- a label or relationship type reaches the text only through a builder below, which accepts
  nothing outside the allow-lists of `kg.schema` (`check_label` / `check_rel_type` raise ValueError);
- the unit tests parse every statement here (each builder over every allow-listed label and type)
  with an openCypher grammar; the schema commands (`CREATE CONSTRAINT`), which openCypher does not
  cover, are checked against the Neo4j 5 syntax separately.

Stored layout: every node has its external `id` (unique per label) and `idx`, its row in the
in-memory node table, so `load()` restores node order exactly. INTERACTED relationships are ordered
by their `seq` property; every other relationship stores `ord`, a counter that grows with each
write, so that reading by `ord` restores the order of the in-memory edge table. A single `KGMeta`
node records the format version, a write counter and the `info` of the last write.
"""
from __future__ import annotations

from .schema import INTERACTED, NODE_LABELS, NODE_PROPERTIES, REL_SPECS, check_label, check_rel_type

__all__ = [
    "META_LABEL", "NODE_KEY", "NODE_INDEX", "ORD", "REL_ORDER", "REL_KEYS",
    "constraint", "schema_statements", "upsert_nodes", "merge_relationships", "delete_relationships",
    "max_order", "read_nodes", "read_relationships", "delete_nodes",
    "ANY_GRAPH_NODE", "READ_META", "WRITE_META", "DELETE_META", "EXPLORE", "EXPLORE_EXAMPLE_PARAMS",
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
def upsert_nodes(label: str) -> str:
    """Create or update nodes. `$rows`: [{id, props}]; a null in `props` removes that property."""
    check_label(label)
    return (f"UNWIND $rows AS row "
            f"MERGE (n:{label} {{{NODE_KEY}: row.id}}) "
            f"SET n += row.props")


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
            f"SET r += row.props")


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
}

# Example parameters (the docs turn these into `:param` lines; the live tests run every query with them).
EXPLORE_EXAMPLE_PARAMS: dict[str, dict[str, object]] = {
    "product_context": {"product_id": "B0001"},
    "user_history": {"user_id": "U1", "k": 50},
    "brands_sharing_customers": {"min_shared": 2, "k": 25},
    "category_tree": {"max_level": 2},
    "two_hops_from_user": {"user_id": "U1", "k": 20},
}
