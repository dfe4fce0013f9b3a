"""Merge validated input rows into a KnowledgeGraph, returning exactly what changed (a `Delta`).

Identity rules (what makes a re-run a no-op):
- nodes by (label, id); a product row replaces that product's properties, brand and category edges
  (the latest catalog feed is the truth);
- INTERACTED by (user, product, event, timestamp, k) where k counts earlier rows of the same
  (user, product, event, timestamp) in the same table, so repeated identical rows in one file stay
  distinct while re-adding the same file adds nothing;
- every other relationship by (type, src, dst).
The embedded store saves the whole graph; the Neo4j store writes only the Delta.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .codes import factorize
from .graph import EDGE_DTYPES, NODE_DTYPES, KnowledgeGraph
from .schema import (BRAND, CATEGORY, HAS_BRAND, IN_CATEGORY, INTERACTED, PRODUCT, SUBCATEGORY_OF, USER,
                     category_key, split_category_paths)

__all__ = ["Changes", "Delta", "add_products", "add_interactions", "add_relations", "unseen_interactions"]


@dataclass
class Changes:
    """Counters of what a build changed."""

    nodes_created: int = 0
    nodes_updated: int = 0
    relationships_created: int = 0
    relationships_deleted: int = 0

    def __iadd__(self, other: "Changes") -> "Changes":
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        return self


@dataclass
class Delta:
    """What to write to a store: upserted node rows per label (external ids + properties),
    created and deleted relationships per type (`src_id`, `dst_id` external ids + properties; created
    INTERACTED rows carry only their `seq`, which identifies them in the graph)."""

    nodes: dict[str, pd.DataFrame] = field(default_factory=dict)
    created: dict[str, pd.DataFrame] = field(default_factory=dict)
    deleted: dict[str, pd.DataFrame] = field(default_factory=dict)
    changes: Changes = field(default_factory=Changes)

    def merge(self, other: "Delta") -> None:
        for mine, theirs in ((self.nodes, other.nodes), (self.created, other.created), (self.deleted, other.deleted)):
            for k, v in theirs.items():
                mine[k] = pd.concat([mine[k], v], ignore_index=True) if k in mine else v
        self.changes += other.changes


def _typed(df: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    return df[list(dtypes)].astype(dtypes)


def _row_codes(frames: list[pd.DataFrame], cols: list[str]) -> list[np.ndarray]:
    """An int64 code per row of each frame, equal across all `frames` exactly when the `cols` values are equal
    (NA equal to NA). Hash-based, one column at a time: far cheaper than tuples in a MultiIndex on large tables."""
    key = None
    for c in cols:
        col = pd.concat([f[c] for f in frames], ignore_index=True) if len(frames) > 1 else frames[0][c]
        codes, uniq = pd.factorize(col, use_na_sentinel=False)
        codes = codes.astype(np.int64, copy=False)
        # both factors are below the row count, so the packed key cannot overflow int64
        key = codes if key is None else pd.factorize(key * len(uniq) + codes)[0].astype(np.int64, copy=False)
    if key is None:
        key = np.zeros(sum(len(f) for f in frames), dtype=np.int64)
    return np.split(key, np.cumsum([len(f) for f in frames])[:-1])


def _seen(new: pd.DataFrame, cur: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """bool per row of `new`: its `cols` values occur in some row of `cur`."""
    k_new, k_cur = _row_codes([new, cur], cols)
    return pd.Index(k_new).isin(k_cur) if len(k_cur) else np.zeros(len(new), dtype=bool)


def _with_ids(g: KnowledgeGraph, rel: str, edges: pd.DataFrame, src_label: str, dst_label: str) -> pd.DataFrame:
    """Edge rows with external `src_id`/`dst_id` added (what a Neo4j MERGE needs)."""
    out = edges.copy()
    out["src_id"] = g.nodes[src_label]["id"].to_numpy()[edges["src"].to_numpy()]
    out["dst_id"] = g.nodes[dst_label]["id"].to_numpy()[edges["dst"].to_numpy()]
    return out


def _upsert_nodes(g: KnowledgeGraph, label: str, rows: pd.DataFrame, delta: Delta,
                  update: bool = True, distinct: bool = False) -> np.ndarray:
    """Create nodes for unseen ids; with `update`, overwrite properties of existing ones that differ.

    `rows` has `id` and the label's properties (`distinct`: no id twice, so no hashing to drop repeats);
    returns the node index of every row.
    """
    table = g.nodes[label]
    all_ids = rows["id"]
    rows = _typed(rows if distinct else rows.drop_duplicates("id", keep="first"), NODE_DTYPES[label])
    idx = g.id_map(label).indices(rows["id"], missing="-1")
    new = rows[idx < 0]
    touched = []
    if update and (idx >= 0).any():
        old = table.iloc[idx[idx >= 0]].reset_index(drop=True)
        cur = rows[idx >= 0].reset_index(drop=True)
        props = [c for c in NODE_DTYPES[label] if c != "id"]
        differs = np.zeros(len(cur), dtype=bool)
        for c in props:
            a, b = old[c], cur[c]
            differs |= ~((a == b).fillna(False).to_numpy(dtype=bool) | (a.isna() & b.isna()).to_numpy(dtype=bool))
        if differs.any():
            pos = idx[idx >= 0][differs]
            table = table.copy()
            for c in props:
                table.loc[table.index[pos], c] = cur.loc[differs, c].to_numpy()
            table = table.astype(NODE_DTYPES[label])
            touched.append(cur[differs])
            delta.changes.nodes_updated += int(differs.sum())
    if len(new) or touched:
        g.set_nodes(label, pd.concat([table, new], ignore_index=True) if len(new) else table)
        out = pd.concat([*touched, new], ignore_index=True) if touched else new
        delta.nodes[label] = pd.concat([delta.nodes[label], out], ignore_index=True) if label in delta.nodes else out
        delta.changes.nodes_created += len(new)
    return g.id_map(label).indices(all_ids) if len(all_ids) else np.zeros(0, dtype=np.int64)


def _add_edges(g: KnowledgeGraph, rel: str, new: pd.DataFrame, key: list[str], delta: Delta,
               src_label: str, dst_label: str) -> None:
    """Append edges of `new` whose `key` columns are not in the table yet (duplicates within `new` dropped)."""
    cur = g.edges_of(rel)
    new = _typed(new, EDGE_DTYPES[rel]).drop_duplicates(key)
    if len(cur):
        new = new[~_seen(new, cur, key)]
    if len(new):
        g.edges[rel] = pd.concat([cur, new], ignore_index=True)
        created = _with_ids(g, rel, new, src_label, dst_label)
        delta.created[rel] = pd.concat([delta.created[rel], created], ignore_index=True) if rel in delta.created else created
        delta.changes.relationships_created += len(new)
    elif rel not in g.edges:
        g.edges[rel] = cur


def _replace_edges(g: KnowledgeGraph, rel: str, owners: np.ndarray, desired: pd.DataFrame, delta: Delta,
                   src_label: str, dst_label: str) -> None:
    """Make the `rel` edges leaving `owners` exactly `desired` (src, dst); other edges untouched, order kept."""
    cur = g.edges_of(rel)
    desired = _typed(desired, EDGE_DTYPES[rel]).drop_duplicates()
    owned = cur["src"].isin(owners).to_numpy()
    stale = owned & ~_seen(cur, desired, ["src", "dst"])
    if stale.any():
        gone = _with_ids(g, rel, cur[stale], src_label, dst_label)
        delta.deleted[rel] = pd.concat([delta.deleted[rel], gone], ignore_index=True) if rel in delta.deleted else gone
        delta.changes.relationships_deleted += int(stale.sum())
        g.edges[rel] = cur[~stale].reset_index(drop=True)
    _add_edges(g, rel, desired, ["src", "dst"], delta, src_label, dst_label)


def _category_table(strings: pd.Series) -> tuple[dict[str, list[str]], pd.DataFrame, pd.DataFrame]:
    """For each distinct categories string: its leaf keys; plus all category nodes and child->parent pairs."""
    leaves: dict[str, list[str]] = {}
    nodes: dict[str, tuple[str, int]] = {}
    parents: set[tuple[str, str]] = set()
    for s in pd.unique(strings):
        keys = []
        for path in split_category_paths(s):
            prev = None
            for depth in range(1, len(path) + 1):
                k = category_key(path[:depth])
                nodes.setdefault(k, (path[depth - 1], depth - 1))
                if prev is not None:
                    parents.add((k, prev))
                prev = k
            keys.append(prev)
        leaves[s] = keys
    cat_nodes = pd.DataFrame({"id": list(nodes), "name": [v[0] for v in nodes.values()],
                              "level": [v[1] for v in nodes.values()]})
    sub = pd.DataFrame(sorted(parents), columns=["child", "parent"])
    return leaves, cat_nodes, sub


def add_products(g: KnowledgeGraph, products: pd.DataFrame) -> Delta:
    """Upsert catalog products (rows from `check_products`) with their brand and category edges."""
    delta = Delta()
    rows = pd.DataFrame({"id": products["product_id"], "title": products["title"],
                         "description": products["description"], "price": products["price"],
                         "in_catalog": True})
    pidx = _upsert_nodes(g, PRODUCT, rows, delta)

    has_brand = products["brand_key"] != ""
    brands = pd.DataFrame({"id": products.loc[has_brand, "brand_key"], "name": products.loc[has_brand, "brand"]})
    bidx = _upsert_nodes(g, BRAND, brands, delta, update=False)
    bmap = dict(zip(brands["id"], bidx))
    desired = pd.DataFrame({"src": pidx[has_brand.to_numpy()],
                            "dst": [bmap[k] for k in products.loc[has_brand, "brand_key"]]})
    _replace_edges(g, HAS_BRAND, pidx, desired, delta, PRODUCT, BRAND)

    leaves, cat_nodes, sub = _category_table(products["categories"])
    _upsert_nodes(g, CATEGORY, cat_nodes.sort_values(["level", "id"], kind="stable"), delta, update=False)
    cmap = g.id_map(CATEGORY)
    if len(sub):
        _add_edges(g, SUBCATEGORY_OF, pd.DataFrame({"src": cmap.indices(sub["child"]),
                                                    "dst": cmap.indices(sub["parent"])}),
                   ["src", "dst"], delta, CATEGORY, CATEGORY)
    leaf_lists = products["categories"].map(leaves)
    lens = leaf_lists.map(len).to_numpy()
    flat = [k for ks in leaf_lists for k in ks]
    desired = pd.DataFrame({"src": np.repeat(pidx, lens), "dst": cmap.indices(flat) if flat else np.zeros(0, int)})
    _replace_edges(g, IN_CATEGORY, pidx, desired, delta, PRODUCT, CATEGORY)
    return delta


def _occurrence(df: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """k-th repeat of the same `cols` values within df (0 for the first), in row order."""
    key = pd.Series(_row_codes([df], cols)[0])
    return key.groupby(key.to_numpy(), sort=False).cumcount().to_numpy()


_INTERACTION_IDENTITY = ["src", "dst", "event", "timestamp"]


_DEDUP_PART_ROWS = 4_000_000


def _unseen_interactions(new: pd.DataFrame, cur: pd.DataFrame) -> np.ndarray:
    """bool per row of `new` (INTERACTED columns, node indices): not stored yet by the identity rules (the k-th
    repeat of (user, product, event, timestamp) in `new` matches the k-th one in `cur`).

    Large tables are compared in parts by user (`src` modulo the number of parts): the identity includes the
    user, so each part decides its rows exactly, and the hash tables stay the size of one part."""
    if not len(cur) or not len(new):
        return np.ones(len(new), dtype=bool)
    parts = -(-(len(new) + len(cur)) // _DEDUP_PART_ROWS)
    if parts == 1:
        return _unseen_part(new, cur)
    out = np.zeros(len(new), dtype=bool)
    cols = _INTERACTION_IDENTITY
    new_part, cur_part = new["src"].to_numpy() % parts, cur["src"].to_numpy() % parts
    for p in range(parts):
        rows = np.flatnonzero(new_part == p)
        if len(rows):
            out[rows] = _unseen_part(new[cols].iloc[rows], cur[cols].iloc[np.flatnonzero(cur_part == p)])
    return out


def _unseen_part(new: pd.DataFrame, cur: pd.DataFrame) -> np.ndarray:
    if not len(cur) or not len(new):
        return np.ones(len(new), dtype=bool)
    ident = _INTERACTION_IDENTITY
    # the table is kept in seq order, so row order is arrival order
    return ~_seen(new.assign(_k=_occurrence(new, ident)), cur.assign(_k=_occurrence(cur, ident)), [*ident, "_k"])


def unseen_interactions(g: KnowledgeGraph, inter: pd.DataFrame) -> np.ndarray:
    """bool per row of `inter` (validated rows: user_id, product_id, event, timestamp): True where
    `add_interactions` would add it, False where the store already holds it (same identity rules). Unknown
    users are new by definition; every product must be a node."""
    uidx = g.id_map(USER).indices(inter["user_id"], missing="-1") if g.num_nodes(USER) else \
        np.full(len(inter), -1, dtype=np.int64)
    out = uidx < 0
    known = ~out
    if known.any():
        rows = pd.DataFrame({"src": uidx[known], "dst": g.id_map(PRODUCT).indices(inter["product_id"][known]),
                             "timestamp": inter["timestamp"].to_numpy()[known], "seq": 0,
                             "event": inter["event"].to_numpy()[known], "weight": 1.0})
        out[known] = _unseen_interactions(_typed(rows, EDGE_DTYPES[INTERACTED]), g.edges_of(INTERACTED))
    return out


def _lookup(g: KnowledgeGraph, label: str, ids: pd.Series) -> np.ndarray:
    """Node index of every id (all known), hashing each distinct id once: interaction files repeat ids."""
    codes, uniq = factorize(ids)
    return g.id_map(label).indices(uniq)[codes]


def add_interactions(g: KnowledgeGraph, inter: pd.DataFrame) -> Delta:
    """Add users and INTERACTED edges (rows from `check_interactions`); `seq` continues the store's order.

    Built for tens of millions of rows: one hash per distinct id, no copy of the edge table beyond the
    appended rows, and the delta keeps only the new rows' `seq` (their identity; a store reads the rest
    from the graph)."""
    delta = Delta()
    codes, users = factorize(inter["user_id"])
    uidx = _upsert_nodes(g, USER, pd.DataFrame({"id": pd.Series(users, dtype=object)}), delta, update=False,
                         distinct=True)[codes]
    del codes
    pidx = _lookup(g, PRODUCT, inter["product_id"])
    cur = g.edges_of(INTERACTED)
    start = int(cur["seq"].max()) + 1 if len(cur) else 0
    dtypes = EDGE_DTYPES[INTERACTED]
    cols = {"src": uidx, "dst": pidx, "timestamp": inter["timestamp"].astype(dtypes["timestamp"]).array,
            "event": inter["event"].to_numpy(dtype=object), "weight": inter["weight"].to_numpy(dtype=np.float64)}
    del uidx, pidx
    # the identity columns decide first, so that a re-run (nothing new) never builds the new rows' table
    ident = pd.DataFrame({c: cols[c] for c in _INTERACTION_IDENTITY if c != "event"}, copy=False)
    ident["event"] = pd.Series(cols["event"], dtype=object, copy=False)
    keep = _unseen_interactions(ident, cur)
    del ident
    if not keep.all():
        cols = {c: v[keep] for c, v in cols.items()}
    n = len(cols["src"])
    # seq continues the store's, dense; the event an explicit object Series (pandas 3 would infer a string dtype)
    new = pd.DataFrame({"src": cols["src"], "dst": cols["dst"], "timestamp": cols["timestamp"],
                        "seq": np.arange(start, start + n, dtype=np.int64),
                        "event": pd.Series(cols["event"], dtype=object, copy=False), "weight": cols["weight"]},
                       copy=False)
    del cols
    if len(new):
        g.edges[INTERACTED] = pd.concat([cur, new], ignore_index=True) if len(cur) else new
        delta.created[INTERACTED] = new[["seq"]].copy()
        delta.changes.relationships_created += len(new)
    elif INTERACTED not in g.edges:
        g.edges[INTERACTED] = cur
    return delta


def add_relations(g: KnowledgeGraph, rel: pd.DataFrame) -> Delta:
    """Add product-to-product edges (rows from `check_relations`); unknown `other_id`s become
    products outside the catalog (in_catalog=False), never recommended."""
    delta = Delta()
    others = pd.DataFrame({"id": pd.unique(rel["other_id"]), "title": "", "description": "",
                           "price": np.nan, "in_catalog": False})
    _upsert_nodes(g, PRODUCT, others, delta, update=False)
    pmap = g.id_map(PRODUCT)
    for t, part in rel.groupby("type", sort=True):
        edges = pd.DataFrame({"src": pmap.indices(part["product_id"]), "dst": pmap.indices(part["other_id"])})
        _add_edges(g, str(t), edges, ["src", "dst"], delta, PRODUCT, PRODUCT)
    return delta

