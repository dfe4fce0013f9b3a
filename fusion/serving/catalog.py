"""What the query API knows about each recommendable product besides its vector: id, title, brand, category
tree, product relations and popularity; brand/category filters; and new products (validated, appended).

A `Catalog` is immutable: `extend()` returns a new one, so readers holding the old one are never disturbed.
Brand and category indices are the graph's node indices; brands and categories first seen in new products
are appended after them (and have no graph embedding).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kg.export import (category_parents, category_path, category_path_text, column_index, product_brands,
                       product_leaves, product_relation_pairs)
from kg.graph import KnowledgeGraph
from kg.readers import LINE
from kg.schema import (BRAND, CATEGORY, INTERACTED, PRODUCT, category_key, normalize_brand,
                       split_category_paths)
from kg.validate import PRODUCT_COLUMNS, check_products, check_relations

from .results import UnknownIdError

__all__ = ["Catalog", "ProductInputError", "parse_new_products", "parse_new_relations"]


class ProductInputError(ValueError):
    """Bad rows given to `Recommender.add_products`; the message names each row, field and value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        super().__init__(f"add_products: {len(problems)} problem(s):\n  " + "\n  ".join(problems[:5]) + more)


@dataclass(frozen=True)
class Catalog:
    """Per-product metadata in column order (column j = row j of the product vectors).

    Attributes:
        ids, titles, brand_text, category_text: object [n]; `brand_text` is the brand's display name and
            `category_text` the root-to-leaf paths joined by " > " and " | " (empty when none).
        descriptions: object [n].
        brand: int64 [n] brand index (-1 = none).
        leaves: per product, a tuple of leaf category indices.
        cat_matrix: CSR bool [n, num_categories]: the product's categories and all their ancestors.
        brand_keys / brand_names: per brand index, the key (normalised, case-folded) and display name.
        cat_keys / cat_names / cat_levels / cat_parent: per category index (parent -1 for a root).
        graph_brands / graph_categories: how many brands / categories come from the graph (have embeddings).
        related: product column -> tuple of (other column, relation type, outgoing?).
        popularity: float64 [n] interaction count in the store (0 for products added later).
    """

    ids: np.ndarray
    titles: np.ndarray
    descriptions: np.ndarray
    brand_text: np.ndarray
    category_text: np.ndarray
    brand: np.ndarray
    leaves: tuple[tuple[int, ...], ...]
    cat_matrix: sp.csr_matrix
    brand_keys: np.ndarray
    brand_names: np.ndarray
    cat_keys: np.ndarray
    cat_names: np.ndarray
    cat_levels: np.ndarray
    cat_parent: np.ndarray
    graph_brands: int
    graph_categories: int
    related: dict[int, tuple[tuple[int, str, bool], ...]]
    popularity: np.ndarray
    _col: pd.Index
    _brand_of_key: dict[str, int]
    _cat_of_key: dict[str, int]

    # --- construction ------------------------------------------------------------------------------
    @classmethod
    def from_graph(cls, graph: KnowledgeGraph, items: np.ndarray) -> "Catalog":
        """The catalog of `graph`: `items` are the product indices of the columns (`TrainData.items`)."""
        n = len(items)
        column_of = column_index(graph.num_nodes(PRODUCT), items)
        prod = graph.nodes[PRODUCT].iloc[items]
        brands, cats = graph.nodes[BRAND], graph.nodes[CATEGORY]
        brand = product_brands(graph, column_of)  # the same brand and category paths as kg.export.products_frame
        parent = category_parents(graph)
        leaves = product_leaves(graph, column_of)
        related: dict[int, list[tuple[int, str, bool]]] = {}
        for rel, a, b in product_relation_pairs(graph, column_of):
            for x, y in zip(a, b):
                related.setdefault(int(x), []).append((int(y), rel, True))
                related.setdefault(int(y), []).append((int(x), rel, False))
        inter = graph.edges_of(INTERACTED)
        pc = column_of[inter["dst"].to_numpy(np.int64)]
        popularity = np.bincount(pc[pc >= 0], minlength=n).astype(np.float64)
        b_names = brands["name"].to_numpy(dtype=object)
        cat = cls(
            ids=prod["id"].astype(str).to_numpy(dtype=object),
            titles=prod["title"].fillna("").astype(str).to_numpy(dtype=object),
            descriptions=prod["description"].fillna("").astype(str).to_numpy(dtype=object),
            brand_text=np.where(brand >= 0, b_names[np.maximum(brand, 0)] if len(b_names) else "", "").astype(object),
            category_text=np.empty(n, dtype=object),
            brand=brand, leaves=tuple(tuple(x) for x in leaves), cat_matrix=sp.csr_matrix((n, len(cats)), dtype=bool),
            brand_keys=brands["id"].astype(str).to_numpy(dtype=object), brand_names=b_names,
            cat_keys=cats["id"].astype(str).to_numpy(dtype=object),
            cat_names=cats["name"].astype(str).to_numpy(dtype=object),
            cat_levels=cats["level"].to_numpy(np.int64), cat_parent=parent,
            graph_brands=len(brands), graph_categories=len(cats),
            related={k: tuple(v) for k, v in related.items()}, popularity=popularity,
            _col=pd.Index(prod["id"].astype(str).to_numpy(dtype=object)),
            _brand_of_key={k: i for i, k in enumerate(brands["id"].astype(str))},
            _cat_of_key={k: i for i, k in enumerate(cats["id"].astype(str))},
        )
        return cat._with_category_views()

    def _with_category_views(self, start: int = 0) -> "Catalog":
        """Fill `category_text` and `cat_matrix` for products from column `start` on."""
        n = len(self.ids)
        text = self.category_text.copy()
        rows, cols = [], []
        for p in range(start, n):
            paths = [self.ancestors(c) for c in self.leaves[p]]
            text[p] = category_path_text(paths, self.cat_names)
            for path in paths:
                rows += [p] * len(path)
                cols += path
        m = sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(n, len(self.cat_keys)))
        m.sum_duplicates()
        if start:
            old = self.cat_matrix.copy()
            old.resize((start, len(self.cat_keys)))
            m = sp.vstack([old, m[start:]], format="csr")
        return replace(self, category_text=text, cat_matrix=m.astype(bool))

    # --- lookups -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, product_id: object) -> bool:
        return product_id in self._col

    def column(self, product_id: str) -> int:
        """Column of a product id; UnknownIdError naming it."""
        try:
            return int(self._col.get_loc(product_id))
        except KeyError:
            raise UnknownIdError(f"unknown product id {product_id!r}: not in the catalog") from None

    def columns(self, product_ids: list[str]) -> np.ndarray:
        idx = self._col.get_indexer(pd.Index(product_ids, dtype=object))
        if (idx < 0).any():
            bad = product_ids[int(np.flatnonzero(idx < 0)[0])]
            raise UnknownIdError(f"unknown product id {bad!r}: not in the catalog")
        return idx.astype(np.int64)

    def ancestors(self, category: int) -> list[int]:
        """Category indices from the root down to `category`."""
        return category_path(self.cat_parent, category)

    @cached_property
    def popularity_order(self) -> np.ndarray:
        """Columns by popularity, most popular first (ties: column order)."""
        return np.argsort(-self.popularity, kind="stable")

    def category_size(self) -> np.ndarray:
        """int [num_categories]: catalog products in each category's subtree."""
        return np.asarray(self.cat_matrix.sum(axis=0)).ravel().astype(np.int64)

    # --- filters -----------------------------------------------------------------------------------
    def allowed(self, brands=None, categories=None) -> np.ndarray | None:
        """bool [n] of products matching any of `brands` (names or ids, any case) and any of `categories`
        (a category id = its path "tools > fasteners", or a level name "Fasteners", which matches every
        category of that name; products in subcategories match too). None when no filter is given.
        Unknown names raise ValueError naming them."""
        mask = None
        if brands is not None:
            wanted = []
            for b in _names(brands, "brands"):
                i = self._brand_of_key.get(normalize_brand(b))
                if i is None:
                    raise ValueError(f"unknown brand {b!r}: no product in the catalog has it")
                wanted.append(i)
            mask = np.isin(self.brand, wanted)
        if categories is not None:
            wanted = []
            for c in _names(categories, "categories"):
                hits = self._categories_named(c)
                if not hits:
                    raise ValueError(f"unknown category {c!r}: neither a category id (its path, e.g. "
                                     f"'tools > fasteners') nor the name of a category level")
                wanted += hits
            m = np.asarray(self.cat_matrix[:, wanted].sum(axis=1)).ravel() > 0
            mask = m if mask is None else mask & m
        return mask

    def _categories_named(self, value: str) -> list[int]:
        """Category indices for a category id (root-to-leaf path, any case) or a level name."""
        paths = split_category_paths(value)
        if len(paths) != 1:
            return []
        i = self._cat_of_key.get(category_key(paths[0]))
        if i is not None:
            return [i]
        if len(paths[0]) == 1:
            name = paths[0][0].casefold()
            return [j for j, nm in enumerate(self.cat_names) if str(nm).casefold() == name]
        return []

    # --- new products ------------------------------------------------------------------------------
    def extend(self, rows: pd.DataFrame, related: pd.DataFrame | None = None) -> "Catalog":
        """A new catalog with `rows` (from `parse_new_products`) appended; `related` rows (product_id, type,
        other_id) link them to products already in the catalog or among themselves."""
        n0 = len(self.ids)
        brand_keys, brand_names = list(self.brand_keys), list(self.brand_names)
        b_of, c_of = dict(self._brand_of_key), dict(self._cat_of_key)
        cat_keys, cat_names = list(self.cat_keys), list(self.cat_names)
        levels, parents = list(self.cat_levels), list(self.cat_parent)
        brand, leaves = [], []
        for key, name, cats in zip(rows["brand_key"], rows["brand"], rows["categories"]):
            if key:
                if key not in b_of:
                    b_of[key] = len(brand_keys)
                    brand_keys.append(key)
                    brand_names.append(name)
                brand.append(b_of[key])
            else:
                brand.append(-1)
            mine = []
            for path in split_category_paths(cats):
                prev = -1
                for depth in range(1, len(path) + 1):
                    k = category_key(path[:depth])
                    if k not in c_of:
                        c_of[k] = len(cat_keys)
                        cat_keys.append(k)
                        cat_names.append(path[depth - 1])
                        levels.append(depth - 1)
                        parents.append(prev)
                    prev = c_of[k]
                if prev not in mine:
                    mine.append(prev)
            leaves.append(tuple(mine))
        ids = np.concatenate([self.ids, rows["product_id"].to_numpy(dtype=object)])
        brand_arr = np.concatenate([self.brand, np.asarray(brand, dtype=np.int64)])
        bn = np.asarray(brand_names, dtype=object)
        rel = {k: list(v) for k, v in self.related.items()}
        col = pd.Index(ids)
        if related is not None:
            src, dst = col.get_indexer(related["product_id"]), col.get_indexer(related["other_id"])
            for a, t, b in zip(src, related["type"], dst):
                if a >= 0 and b >= 0:
                    rel.setdefault(int(a), []).append((int(b), str(t), True))
                    rel.setdefault(int(b), []).append((int(a), str(t), False))
        m = self.cat_matrix.copy()
        m.resize((n0, len(cat_keys)))
        out = replace(
            self, ids=ids,
            titles=np.concatenate([self.titles, rows["title"].to_numpy(dtype=object)]),
            descriptions=np.concatenate([self.descriptions, rows["description"].to_numpy(dtype=object)]),
            brand_text=np.concatenate([self.brand_text,
                                       np.array([bn[b] if b >= 0 else "" for b in brand], dtype=object)]),
            category_text=np.concatenate([self.category_text, np.full(len(rows), "", dtype=object)]),
            brand=brand_arr, leaves=self.leaves + tuple(leaves), cat_matrix=m,
            brand_keys=np.asarray(brand_keys, dtype=object), brand_names=bn,
            cat_keys=np.asarray(cat_keys, dtype=object), cat_names=np.asarray(cat_names, dtype=object),
            cat_levels=np.asarray(levels, dtype=np.int64), cat_parent=np.asarray(parents, dtype=np.int64),
            related={k: tuple(v) for k, v in rel.items()},
            popularity=np.concatenate([self.popularity, np.zeros(len(rows))]),
            _col=col, _brand_of_key=b_of, _cat_of_key=c_of,
        )
        return out._with_category_views(start=n0)

    def frame(self, cols: np.ndarray) -> pd.DataFrame:
        """Products as the text template reads them (title, brand, categories, description)."""
        return pd.DataFrame({"product_id": self.ids[cols], "title": self.titles[cols],
                             "description": self.descriptions[cols], "brand": self.brand_text[cols],
                             "categories": self.category_text[cols]})


def _names(values, what: str) -> list[str]:
    if isinstance(values, str):
        values = [values]
    try:
        out = list(values)
    except TypeError:
        raise ValueError(f"{what} must be a str or a list of str, got {type(values).__name__}") from None
    for v in out:
        if not isinstance(v, str):
            raise ValueError(f"{what} must be a str or a list of str, got {type(v).__name__} {v!r}")
    if not out:
        raise ValueError(f"{what} is empty: pass None for no filter")
    return out


def parse_new_products(df: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Validate rows for `Recommender.add_products` with the products-file rules (`kg.validate.check_products`)
    -> clean rows (product_id, title, description, brand, brand_key, categories, price). Raises
    ProductInputError naming row, field and value: missing product_id column or value, bad price, a
    product_id repeated with other fields, a product_id already in the catalog."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"add_products expected a pandas DataFrame of products, got {type(df).__name__}")
    required, optional = PRODUCT_COLUMNS
    if "product_id" not in df.columns:
        raise ProductInputError([f"missing required column 'product_id' (found: {', '.join(map(str, df.columns))})"])
    unknown = [c for c in df.columns if c not in (*required, *optional)]
    if unknown:
        raise ProductInputError([f"unknown column(s) {unknown}; expected {[*required, *optional]}"])
    if df.empty:
        raise ProductInputError(["no rows"])
    raw = pd.DataFrame(index=range(len(df)))
    for c in (*required, *optional):
        col = df[c] if c in df.columns else pd.Series([""] * len(df))
        raw[c] = [("" if _missing(v) else str(v).strip()) for v in col.tolist()]
    raw[LINE] = np.arange(len(df), dtype=np.int64)
    rows, problems = check_products(raw, "")
    labels = list(df.index)
    msgs = [_where(p.line, labels) + f": field {p.field!r} = {p.value!r}: {p.reason}" for p in problems]
    for line, pid in zip(rows[LINE], rows["product_id"]):
        if pid in catalog:
            msgs.append(_where(int(line), labels) + f": field 'product_id' = {pid!r}: already in the catalog "
                        "(add_products only adds new products)")
    if msgs:
        raise ProductInputError(msgs)
    return rows.drop(columns=LINE).reset_index(drop=True)


def _where(pos: int, labels: list) -> str:
    return f"row {pos}" + (f" (index {labels[pos]!r})" if labels[pos] != pos else "")


def _missing(v) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def parse_new_relations(relations: pd.DataFrame | None, rows: pd.DataFrame,
                        catalog: Catalog) -> pd.DataFrame | None:
    """Validate `add_products(relations=...)` like a relations file; each row must touch a new product."""
    if relations is None:
        return None
    if not isinstance(relations, pd.DataFrame):
        raise ValueError(f"relations must be a pandas DataFrame, got {type(relations).__name__}")
    missing = [c for c in ("product_id", "relation", "other_id") if c not in relations.columns]
    if missing:
        raise ValueError(f"relations: missing required column {missing[0]!r} "
                         f"(found: {', '.join(map(str, relations.columns))})")
    raw = pd.DataFrame({c: [str(v).strip() if pd.notna(v) else "" for v in relations[c].tolist()]
                        for c in ("product_id", "relation", "other_id")})
    raw[LINE] = np.arange(len(raw))
    new = set(rows["product_id"])
    known = pd.Index([*catalog.ids, *new], dtype=object)
    out, problems = check_relations(raw, "relations", known)
    msgs = [f"relations row {p.line}: field {p.field!r} = {p.value!r}: {p.reason}" for p in problems]
    for line, a, b in zip(out[LINE], out["product_id"], out["other_id"]):
        if a not in new and b not in new:
            msgs.append(f"relations row {line}: neither {a!r} nor {b!r} is one of the products being added")
    if msgs:
        more = f" ... and {len(msgs) - 5} more" if len(msgs) > 5 else ""
        raise ValueError("add_products: " + "; ".join(msgs[:5]) + more)
    return out.drop(columns=LINE).reset_index(drop=True)
