"""The in-memory knowledge graph: node tables and relationship tables keyed by index.

Both stores (embedded directory, Neo4j) read into and write from this one structure, and the
other packages get their tensors from it (`kg.export`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .idmap import IdMap
from .schema import NODE_LABELS, NODE_PROPERTIES, PRODUCT, REL_SPECS, REL_TYPES, INTERACTED

__all__ = ["KnowledgeGraph", "empty_node_table", "empty_edge_table", "NODE_DTYPES", "EDGE_DTYPES"]

# Column dtypes, fixed so that a store round-trips exactly whatever pandas infers.
NODE_DTYPES: dict[str, dict[str, str]] = {
    "User": {"id": "object"},
    "Product": {"id": "object", "title": "object", "description": "object",
                "price": "float64", "in_catalog": "bool"},
    "Brand": {"id": "object", "name": "object"},
    "Category": {"id": "object", "name": "object", "level": "int64"},
}
_EDGE_BASE = {"src": "int64", "dst": "int64"}
EDGE_DTYPES: dict[str, dict[str, str]] = {
    t: ({**_EDGE_BASE, "timestamp": "Int64", "seq": "int64", "event": "object", "weight": "float64"}
        if t == INTERACTED else dict(_EDGE_BASE))
    for t in REL_TYPES
}
assert all(set(NODE_DTYPES[l]) == {"id", *NODE_PROPERTIES[l]} for l in NODE_LABELS)


def empty_node_table(label: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in NODE_DTYPES[label].items()})


def empty_edge_table(rel_type: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in EDGE_DTYPES[rel_type].items()})


@dataclass
class KnowledgeGraph:
    """Node tables (row i = node index i, column `id` = external id) and edge tables (`src`, `dst` indices).

    Edge tables exist only for relationship types that have at least one edge or were created empty;
    `edges_of` always returns a table.
    """

    nodes: dict[str, pd.DataFrame] = field(default_factory=lambda: {l: empty_node_table(l) for l in NODE_LABELS})
    edges: dict[str, pd.DataFrame] = field(default_factory=dict)
    _maps: dict[str, IdMap] = field(default_factory=dict, repr=False, compare=False)

    # --- ids -----------------------------------------------------------------------------------------
    def id_map(self, label: str) -> IdMap:
        """The label's IdMap (cached; rebuilt after `set_nodes`)."""
        m = self._maps.get(label)
        if m is None or len(m) != len(self.nodes[label]):
            m = self._maps[label] = IdMap(label, pd.Index(self.nodes[label]["id"], dtype=object))
        return m

    def set_nodes(self, label: str, table: pd.DataFrame) -> None:
        self.nodes[label] = table.reset_index(drop=True)
        self._maps.pop(label, None)

    def edges_of(self, rel_type: str) -> pd.DataFrame:
        t = self.edges.get(rel_type)
        return empty_edge_table(rel_type) if t is None else t

    # --- views ---------------------------------------------------------------------------------------
    def num_nodes(self, label: str) -> int:
        return len(self.nodes[label])

    @property
    def catalog_mask(self) -> np.ndarray:
        """bool [num_products]: True for products that may be recommended."""
        return self.nodes[PRODUCT]["in_catalog"].to_numpy(dtype=bool)

    def counts(self) -> dict[str, dict[str, int]]:
        """Node counts per label (Product = catalog products; RelatedProduct = outside the catalog) and edge counts."""
        nodes = {l: self.num_nodes(l) for l in NODE_LABELS}
        in_cat = int(self.catalog_mask.sum())
        nodes["RelatedProduct"] = nodes[PRODUCT] - in_cat
        nodes[PRODUCT] = in_cat
        rels = {t: len(self.edges[t]) for t in REL_TYPES if t in self.edges and len(self.edges[t])}
        return {"nodes": nodes, "relationships": rels}

    def with_interactions(self, interactions: pd.DataFrame) -> "KnowledgeGraph":
        """A shallow copy whose INTERACTED table is `interactions` (e.g. the training part of a split)."""
        g = KnowledgeGraph(nodes=dict(self.nodes), edges=dict(self.edges))
        g.edges[INTERACTED] = interactions.reset_index(drop=True)
        return g

    def equals(self, other: "KnowledgeGraph") -> bool:
        """Exact equality of every node, relationship and property (dtypes included)."""
        try:
            assert_graphs_equal(self, other)
        except AssertionError:
            return False
        return True

    def summary(self) -> str:
        c = self.counts()
        w = max(len(k) for k in [*c["nodes"], *c["relationships"], "relationships"])
        lines = ["nodes:"] + [f"  {k:<{w}}  {v:>12,}" for k, v in c["nodes"].items()]
        lines += ["relationships:"] + [f"  {k:<{w}}  {v:>12,}" for k, v in c["relationships"].items()]
        return "\n".join(lines)


def assert_graphs_equal(a: KnowledgeGraph, b: KnowledgeGraph) -> None:
    """Raise AssertionError naming the first table that differs."""
    for label in NODE_LABELS:
        try:
            pd.testing.assert_frame_equal(a.nodes[label], b.nodes[label], check_dtype=True)
        except AssertionError as e:
            raise AssertionError(f"nodes {label} differ: {e}") from None
    for t in REL_TYPES:
        ea, eb = a.edges_of(t), b.edges_of(t)
        try:
            pd.testing.assert_frame_equal(ea.reset_index(drop=True), eb.reset_index(drop=True), check_dtype=True)
        except AssertionError as e:
            raise AssertionError(f"relationships {t} differ: {e}") from None
