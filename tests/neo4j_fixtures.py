"""Shared by the Neo4j tests: the tiny catalog both the unit and the live tests build, and the fake driver
the unit tests run `Neo4jStore` against."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import neo4j
from neo4j.exceptions import ConstraintError, ServiceUnavailable

import kg
from kg import cypher
from kg.schema import NODE_LABELS, OUTPUT_REL_SPECS, OUTPUT_REL_TYPES, REL_SPECS, REL_TYPES

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


def write_files(tmp_path: Path) -> dict[str, Path]:
    """products.csv, interactions.csv, relations.csv in tmp_path."""
    out = {}
    for name, text in (("products", PRODUCTS), ("interactions", INTERACTIONS), ("relations", RELATIONS)):
        out[name] = tmp_path / f"{name}.csv"
        out[name].write_text(text, encoding="utf-8")
    return out


# --- a fake driver -------------------------------------------------------------------------------------
class _Counters(SimpleNamespace):
    def __init__(self):
        super().__init__(nodes_created=0, relationships_created=0, relationships_deleted=0, properties_set=0)


class _Result:
    def __init__(self, records):
        self._records = records

    def keys(self):
        return list(self._records[0]) if self._records else []

    def values(self):
        return [list(r.values()) for r in self._records]


class FakeDriver:
    """Records `execute_query` calls and applies them to dicts: nodes[label][id] = props,
    rels[type][(src_id, dst_id, *keys)] = props (output types: keys = (model,)), indexes[name] = the
    row SHOW INDEXES gives. Like Neo4j, `CREATE ... INDEX name IF NOT EXISTS` keeps an existing index
    of that name whatever its options."""

    def __init__(self, connect_failures: int = 0, connect_error: Exception | None = None):
        self.calls: list[SimpleNamespace] = []
        self.connect_attempts = 0
        self.connect_failures = connect_failures
        self.connect_error = connect_error or ServiceUnavailable("Couldn't connect to localhost:7687")
        self.closed = False
        self.nodes: dict[str, dict[str, dict]] = {label: {} for label in NODE_LABELS}
        self.rels: dict[str, dict[tuple, dict]] = {t: {} for t in (*REL_TYPES, *OUTPUT_REL_TYPES)}
        self.indexes: dict[str, dict] = {}
        self.meta: dict | None = None
        self.handlers = {}
        for s in cypher.schema_statements():
            self.handlers[s] = ("schema", None)
        # the first-load CREATE statements act like the MERGE ones, but refuse what already exists
        # (Neo4j: a duplicate id breaks the uniqueness constraint; a duplicate relationship would be a bug)
        self.create_statements: set[str] = set()
        for label in NODE_LABELS:
            self.handlers[cypher.upsert_nodes(label)] = ("upsert", label)
            self.handlers[cypher.create_nodes(label)] = ("upsert", label)
            self.create_statements.add(cypher.create_nodes(label))
            self.handlers[cypher.read_nodes(label)] = ("read_nodes", label)
            self.handlers[cypher.delete_nodes(label)] = ("delete_nodes", label)
        for t in REL_TYPES:
            self.handlers[cypher.merge_relationships(t)] = ("merge", t)
            self.handlers[cypher.create_relationships(t)] = ("merge", t)
            self.create_statements.add(cypher.create_relationships(t))
            self.handlers[cypher.delete_relationships(t)] = ("delete", t)
            self.handlers[cypher.read_relationships(t)] = ("read_rels", t)
            self.handlers[cypher.max_order(t)] = ("max_order", t)
            self.handlers[cypher.delete_all_relationships(t)] = ("delete_all", t)
        for k in ("ANY_GRAPH_NODE", "READ_META", "WRITE_META", "DELETE_META", "DROP_VECTOR_INDEX", "SHOW_INDEXES",
                  "AWAIT_INDEX", "SET_EMBEDDINGS", "CLEAR_OTHER_EMBEDDINGS"):
            self.handlers[getattr(cypher, k)] = (k, None)
        for t in OUTPUT_REL_TYPES:
            self.handlers[cypher.output_model_index(t)] = ("model_index", t)
            self.handlers[cypher.merge_output(t)] = ("merge_output", t)
            self.handlers[cypher.prune_output(t)] = ("prune_output", t)
            self.handlers[cypher.output_models(t)] = ("output_models", t)
            self.handlers[cypher.delete_output_model(t)] = ("delete_output_model", t)
            self.handlers[cypher.delete_all_output(t)] = ("delete_all", t)

    def _handler(self, query):
        m = re.search(r"`vector\.dimensions`: (\d+), `vector\.similarity_function`: '(\w+)'", query)
        if m and query == cypher.vector_index(int(m[1]), m[2]):  # the one statement with values in its text
            return ("vector_index", (int(m[1]), m[2]))
        return self.handlers[query]  # KeyError: a statement that is not from kg.cypher

    # driver API
    def verify_connectivity(self):
        self.connect_attempts += 1
        if self.connect_attempts <= self.connect_failures:
            raise self.connect_error

    def close(self):
        self.closed = True

    def execute_query(self, query_, parameters_=None, routing_=neo4j.RoutingControl.WRITE, database_=None,
                      result_transformer_=None, **kwargs):
        kind, name = self._handler(query_)
        self.calls.append(SimpleNamespace(kind=kind, name=name, query=query_, params=parameters_,
                                          routing=routing_, database=database_))
        counters = _Counters()
        if query_ in self.create_statements:
            self._refuse_existing(kind, name, parameters_ or {})
        records = getattr(self, f"_{kind.lower()}")(name, parameters_ or {}, counters)
        if result_transformer_ is not None:
            return result_transformer_(_Result(records))
        return SimpleNamespace(records=records, summary=SimpleNamespace(counters=counters))

    # statement semantics
    def _refuse_existing(self, kind, name, params):
        if kind == "upsert":
            dup = [r["id"] for r in params["rows"] if r["id"] in self.nodes[name]]
            if dup:
                raise ConstraintError(f"Node already exists with label `{name}` and property `id` = {dup[0]!r}")
        else:
            dup = [self._key(name, r) for r in params["rows"] if self._key(name, r) in self.rels[name]]
            assert not dup, f"CREATE of {name} relationships that exist already: {dup[:3]}"

    def _schema(self, name, params, c):
        for label in NODE_LABELS:  # each uniqueness constraint comes with an index of its name
            self.indexes.setdefault(f"{label.lower()}_id", {"name": f"{label.lower()}_id", "type": "RANGE",
                                                            "options": {"indexConfig": {}}})
        return []

    def _vector_index(self, spec, params, c):
        d, sim = spec
        self.indexes.setdefault(cypher.VECTOR_INDEX, {
            "name": cypher.VECTOR_INDEX, "type": "VECTOR",
            "options": {"indexProvider": "vector-2.0",
                        "indexConfig": {"vector.dimensions": d, "vector.similarity_function": sim.upper()}}})
        return []

    def _model_index(self, t, params, c):
        name = f"{t.lower()}_model"
        self.indexes.setdefault(name, {"name": name, "type": "RANGE", "options": {"indexConfig": {}}})
        return []

    def _drop_vector_index(self, name, params, c):
        self.indexes.pop(cypher.VECTOR_INDEX, None)
        return []

    def _show_indexes(self, name, params, c):
        return [dict(ix) for ix in self.indexes.values()]

    def _await_index(self, name, params, c):
        assert params["name"] in self.indexes, f"awaiting index {params['name']} that does not exist"
        return []

    def _set_embeddings(self, name, params, c):
        written = 0
        for row in params["rows"]:
            node = self.nodes["Product"].get(row["id"])
            if node is not None:
                self._set(node, {cypher.EMBEDDING: row["embedding"], cypher.EMBEDDING_MODEL: params["model"]}, c)
                written += 1
        return [{"written": written}]

    def _clear_other_embeddings(self, name, params, c):
        stale = [n for n in self.nodes["Product"].values()
                 if cypher.EMBEDDING in n and n.get(cypher.EMBEDDING_MODEL) != params["model"]][: params["batch"]]
        for n in stale:
            n.pop(cypher.EMBEDDING)
            n.pop(cypher.EMBEDDING_MODEL, None)
        return [{"cleared": len(stale)}]

    def _merge_output(self, t, params, c):
        spec, written = OUTPUT_REL_SPECS[t], 0
        for row in params["rows"]:
            if row["src_id"] not in self.nodes[spec.src] or row["dst_id"] not in self.nodes[spec.dst]:
                continue
            key = (row["src_id"], row["dst_id"], params["model"])
            rel = self.rels[t].get(key)
            if rel is None:
                rel = self.rels[t][key] = {"model": params["model"]}
                c.relationships_created += 1
            self._set(rel, {"score": row["score"], "rank": row["rank"]}, c)
            written += 1
        return [{"written": written}]

    def _prune_output(self, t, params, c):
        keep = {row["src_id"]: set(row["keep"]) for row in params["rows"]}
        for key in [k for k in self.rels[t] if k[0] in keep and k[2] == params["model"] and k[1] not in keep[k[0]]]:
            del self.rels[t][key]
            c.relationships_deleted += 1
        return []

    def _output_models(self, t, params, c):
        counts: dict = {}
        for r in self.rels[t].values():
            counts[r.get("model")] = counts.get(r.get("model"), 0) + 1
        return [{"model": m, "relationships": n}
                for m, n in sorted(counts.items(), key=lambda x: (x[0] is None, x[0] or ""))]

    def _delete_output_model(self, t, params, c):
        keys = [k for k, r in self.rels[t].items() if r.get("model") == params["old"]][: params["batch"]]
        for k in keys:
            del self.rels[t][k]
        c.relationships_deleted += len(keys)
        return [{"deleted": len(keys)}]

    @staticmethod
    def _set(target: dict, props: dict, c):
        for k, v in props.items():
            if v is None:
                target.pop(k, None)  # SET += {k: null} removes k
            else:
                target[k] = v
                c.properties_set += 1

    def _upsert(self, label, params, c):
        for row in params["rows"]:
            node = self.nodes[label].get(row["id"])
            if node is None:
                node = self.nodes[label][row["id"]] = {"id": row["id"]}
                c.nodes_created += 1
            self._set(node, row["props"], c)
        return []

    def _key(self, t, row):
        return (row["src_id"], row["dst_id"], *(row[k] for k in cypher.REL_KEYS[t]))

    def _merge(self, t, params, c):
        spec = REL_SPECS[t]
        for row in params["rows"]:
            if row["src_id"] not in self.nodes[spec.src] or row["dst_id"] not in self.nodes[spec.dst]:
                continue  # MATCH finds no endpoint: the row does nothing
            key = self._key(t, row)
            rel = self.rels[t].get(key)
            if rel is None:
                rel = self.rels[t][key] = {k: row[k] for k in cypher.REL_KEYS[t]}
                c.relationships_created += 1
            self._set(rel, row["props"], c)
        return []

    def _delete(self, t, params, c):
        for row in params["rows"]:
            if self.rels[t].pop(self._key(t, row), None) is not None:
                c.relationships_deleted += 1
        return []

    def _max_order(self, t, params, c):
        vals = [r[cypher.REL_ORDER[t]] for r in self.rels[t].values() if cypher.REL_ORDER[t] in r]
        return [{"max_order": max(vals) if vals else None}]

    def _read_nodes(self, label, params, c):
        cols = [cypher.NODE_INDEX, cypher.NODE_KEY, *kg.schema.NODE_PROPERTIES[label]]
        rows = [{k: n.get(k) for k in cols} for n in self.nodes[label].values()]
        return sorted(rows, key=lambda r: (r["idx"] is None, r["idx"] or 0))

    def _read_rels(self, t, params, c):
        spec, order = REL_SPECS[t], cypher.REL_ORDER[t]
        rows = []
        for key, r in self.rels[t].items():
            row = {"src": self.nodes[spec.src][key[0]].get("idx"), "dst": self.nodes[spec.dst][key[1]].get("idx")}
            row.update({p: r.get(p) for p in spec.properties})
            rows.append((r.get(order), row))
        return [row for _, row in sorted(rows, key=lambda x: (x[0] is None, x[0] or 0))]

    def _delete_all(self, t, params, c):
        keys = list(self.rels[t])[: params["batch"]]
        for k in keys:
            del self.rels[t][k]
        c.relationships_deleted += len(keys)
        return [{"deleted": len(keys)}]

    def _delete_nodes(self, label, params, c):
        ids = list(self.nodes[label])[: params["batch"]]
        for i in ids:
            del self.nodes[label][i]
            for t, spec in {**REL_SPECS, **OUTPUT_REL_SPECS}.items():
                for key in [k for k in self.rels[t] if (spec.src == label and k[0] == i)
                            or (spec.dst == label and k[1] == i)]:
                    del self.rels[t][key]
        return [{"deleted": len(ids)}]

    def _any_graph_node(self, name, params, c):
        return [{"found": int(any(self.nodes.values()))}]

    def _read_meta(self, name, params, c):
        return [] if self.meta is None else [dict(self.meta)]

    def _write_meta(self, name, params, c):
        m = self.meta or {"format_version": None, "version": 0, "written_at": None, "info_json": None,
                          "counts_json": None}
        m = {**m, **params["props"], "version": m["version"] + 1}
        self.meta = m
        return [{"version": m["version"]}]

    def _delete_meta(self, name, params, c):
        self.meta = None
        return []




# --- a stand-in for fusion.Recommender -----------------------------------------------------------------
class FakeRecommender:
    """The attributes of `fusion.Recommender` that the export uses, over the tiny catalog above: fixed
    product vectors, a user's vector is the mean of their history's, scores are inner products (cosine
    for `similar_batch`), seen products are excluded. Ranks are 1-based, best first."""

    HISTORY = {"U1": ["B0001", "B0002"], "U2": ["B0001", "B0003"]}
    TITLES = {"B0001": "Rose Cream", "B0002": "Lip Balm", "B0003": "Shampoo"}

    def __init__(self, model_version: str = "fake-v1", vectors=None, user_ids=None) -> None:
        import numpy as np
        self.product_ids = ["B0001", "B0002", "B0003"]
        self.product_vectors = (np.array([[1, 0, 0, 0], [0.8, 0.6, 0, 0], [0, 0.6, 0.8, 0]], dtype=np.float32)
                                if vectors is None else np.asarray(vectors, dtype=np.float32))
        self.user_ids = list(self.HISTORY) if user_ids is None else list(user_ids)
        self.model_version = model_version
        self.calls: list[tuple[str, list[str], int]] = []

    def _top(self, scores, exclude, k):
        import numpy as np
        order = [j for j in np.argsort(-scores, kind="stable") if self.product_ids[j] not in exclude]
        return [(rank + 1, self.product_ids[j], float(scores[j])) for rank, j in enumerate(order[:k])]

    def recommend_batch(self, user_ids, k=10, exclude_seen=True):
        import pandas as pd
        self.calls.append(("recommend", list(user_ids), k))
        index = {p: i for i, p in enumerate(self.product_ids)}
        rows = []
        for u in user_ids:
            seen = self.HISTORY.get(u, [])
            uv = self.product_vectors[[index[p] for p in seen]].mean(axis=0)
            for rank, p, s in self._top(self.product_vectors @ uv, set(seen) if exclude_seen else set(), k):
                rows.append({"user_id": u, "rank": rank, "product_id": p, "title": self.TITLES[p], "score": s})
        return pd.DataFrame(rows, columns=["user_id", "rank", "product_id", "title", "score"])

    def similar_batch(self, product_ids, k=10):
        import numpy as np
        import pandas as pd
        self.calls.append(("similar", list(product_ids), k))
        v = self.product_vectors / np.linalg.norm(self.product_vectors, axis=1, keepdims=True)
        index = {p: i for i, p in enumerate(self.product_ids)}
        rows = []
        for p in product_ids:
            for rank, q, s in self._top(v @ v[index[p]], {p}, k):
                rows.append({"source_id": p, "rank": rank, "product_id": q, "title": self.TITLES[q], "score": s})
        return pd.DataFrame(rows, columns=["source_id", "rank", "product_id", "title", "score"])
