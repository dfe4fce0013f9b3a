"""The day-to-day query API over a trained fusion model: recommendations, search, similar products,
explanations and products added after training.

    from fusion import Recommender
    rec = Recommender.load("work/scientific/model")          # store from meta.json; index="exact" | "faiss"
    rec.recommend("42", k=10, brands=["Stanley"])            # DataFrame: rank, product_id, title, score, ...
    rec.search("stainless steel staples", user_id="42")
    rec.similar("1"); rec.explain("42", "1")
    rec.add_products(new_rows)                               # cold start, no retraining
    rec.record("42", "7", event="purchase")                  # real time: the next recommend sees it

At load the model is bound to the whole store (every interaction, so histories and `exclude_seen` use all
that is known), and everything a query needs is precomputed as numpy: the fused product vectors F [n, d],
every known user's vector U [num_users, d], and top-k indexes over F (recommend), unit-length F (similar)
and [F^ | T | F] (search, see `fusion.serving.search`). A recommendation is then one matrix-vector product and a
partial sort, joined with the few products the model's sparse item-item term lifts for the user's history
(`fusion.item_item`: that term is never negative, so the index's top k plus those products hold the exact
top k of the full score). Those arrays, the catalog and the indexes form an immutable snapshot; `add_products` builds a
new one (copying the indexes) and swaps it in atomically, so every method may be called from several
threads at once. An index without `copy()` (such as `fusion.serving.ann.FaissIndex`) is grown in place instead,
under a write lock that its searches share as readers. The text encoder loads on the first call that needs
it (search, add_products, recommend_new_user with a query) and runs under a lock.

Events (`record`, `record_batch`): a user's new click or purchase reaches their history, their vector and the
item-item term at once, without retraining (see `fusion.serving.live`); a user the store did not know becomes
known from their first event. Each event is first appended to an event log beside the store (`events.csv`,
see `fusion.serving.events`), which `load` replays (rows the store already holds are skipped by the build's
identity rules) and `scripts/apply_events.py` folds into the store. The store may have gained users and
interactions since training: users the model has no node for are scored by the history encoder alone.

Unknown users: `recommend` falls back to the most popular products (interaction count in the store, `score`
= that count, `source` = "popular") with an `UnknownUserWarning`; `on_unknown="raise"` raises
`UnknownIdError` instead. Unknown products raise `UnknownIdError`; bad arguments raise `ValueError`.
"""
from __future__ import annotations

import hashlib
import json
import threading
import warnings
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from ..data import TrainData
from ..cold_graph import COLD_GRAPH_FILE
from ..item_item import HEAD_FILE, ItemItemHead
from ..cold_mix import MIX_FILE, cold_columns, mixed_rows
from ..recommender import FusionRecommender
from ..vectors import unit_rows
from ..recommender import ENTITIES_FILE
from .catalog import Catalog, parse_new_products, parse_new_relations
from .cold_start import GraphNeighbourhood, fuse, product_neighbours
from .events import EVENT_COLUMNS, EventLog, check_events, event_row
from .explain import explain_paths, recency_weights
from .live import HistoryEncoder, LiveHistory, LiveUser, UserGraph
from .results import Explanation, UnknownIdError, batch_frame, check_id, check_id_list, check_k, result_frame
from .search import SearchBlend, calibrate, search_matrix, search_query
from .snapshot import ReadWriteLock, Snapshot, clone_index, frozen, index_factory, torch_threads
from .topk import ExactIndex, TopKIndex
from .users import UserHistory, compute_user_vectors

__all__ = ["Recommender", "UnknownUserWarning"]

_ON_UNKNOWN = ("popular", "raise")
_BATCH = 1024
EVENTS_FILE = "events.csv"


def _event_log(event_log, store_path, durability: str) -> EventLog | None:
    """"auto": events.csv beside an embedded store (none for a graph object); a path; None: memory only."""
    if event_log is None:
        return None
    if isinstance(event_log, str) and event_log == "auto":
        return None if store_path is None else EventLog(Path(store_path) / EVENTS_FILE, durability)
    return EventLog(event_log, durability)


def frozen_ints(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.int64)
    a.flags.writeable = False
    return a


class UnknownUserWarning(UserWarning):
    """A recommendation for a user the store does not know fell back to the most popular products."""


def _trained_graph(graph, model_dir: Path):
    """The store's graph restricted to the users the model has nodes for (the store may have gained users since
    training: `entities.json` names the trained ones), and each store user's model index (-1: none)."""
    from kg import KnowledgeGraph
    from kg.schema import INTERACTED, USER

    n = graph.num_nodes(USER)
    f = model_dir / ENTITIES_FILE
    if not f.exists():
        return graph, np.arange(n, dtype=np.int64)
    trained = pd.Index(json.loads(f.read_text())[USER], dtype=object)
    ids = pd.Index(graph.nodes[USER]["id"].astype(str).to_numpy(dtype=object))
    if len(trained) == n and trained.equals(ids):
        return graph, np.arange(n, dtype=np.int64)
    where = ids.get_indexer(trained)  # store index of each trained user
    if (where < 0).any():
        gone = trained[where < 0]
        raise ValueError(f"{model_dir} was trained on {len(gone)} user(s) the store does not hold "
                         f"(e.g. {gone[0]!r}): load it with the store it was trained on")
    model_user = trained.get_indexer(ids).astype(np.int64)  # -1: a user the model has never seen
    nodes = dict(graph.nodes)
    nodes[USER] = graph.nodes[USER].iloc[where].reset_index(drop=True)
    edges = dict(graph.edges)
    e = graph.edges_of(INTERACTED)
    src = model_user[e["src"].to_numpy(np.int64)]
    edges[INTERACTED] = e[src >= 0].assign(src=src[src >= 0]).reset_index(drop=True)
    return KnowledgeGraph(nodes=nodes, edges=edges), model_user


def _user_graph(model, layers: list[torch.Tensor], entities: torch.Tensor, bound, column_of: np.ndarray,
                model_user: np.ndarray) -> UserGraph | None:
    """What `record` needs to re-propagate a trained user's graph embedding (None: the model has none)."""
    from kg.schema import INTERACTED, USER

    if not model.config.use_user_embedding:
        return None
    index = model.gnn.index
    users = index.slice(USER)
    n_items = len(model.item_entity)
    if INTERACTED not in index.relations or len(layers) < 2:  # no propagation to repeat: e_u is fixed
        return UserGraph(entities[users].numpy(), np.zeros((0, n_items, entities.shape[1]), np.float32),
                         np.zeros(n_items), model_user)
    item_layers = np.stack([layers[l][model.item_entity].numpy() for l in range(len(layers) - 1)])
    cols = column_of[bound.edges_of(INTERACTED)["dst"].to_numpy(np.int64)]
    degree = np.bincount(cols[cols >= 0], minlength=n_items).astype(np.float64)
    return UserGraph(layers[0][users].numpy(), item_layers.astype(np.float32), degree, model_user)


def _load_graph(store, model_dir: Path, meta: dict):
    from kg import EmbeddedStore, KnowledgeGraph

    if store is None:
        store = meta.get("store")
        if not store:
            raise ValueError(f"{model_dir / 'meta.json'} names no store: pass store=PATH")
    if isinstance(store, KnowledgeGraph):
        return store, None
    if hasattr(store, "load") and not isinstance(store, (str, Path)):
        return store.load(), getattr(store, "path", None)
    path = Path(store)
    s = EmbeddedStore(path)
    if not s.exists():
        raise FileNotFoundError(f"no graph store at {path} (expected {path / 'CURRENT'}); pass store=PATH")
    return s.load(), path


class Recommender:
    """Recommendations, search, similar products and explanations from a trained fusion model.

    Build with `Recommender.load(model_dir, store=None, index="exact")`.

    Args (of `load`):
        model_dir: a directory written by `scripts/train.py` (config.json, model.pt, items.json, text.pt,
            meta.json).
        store: the graph store (path, a store object with `load()`, or a `kg.KnowledgeGraph`); default the
            `store` recorded in meta.json. It must hold the entities the model was trained on (it may hold
            more interactions between them: the model is bound to all of them).
        index: "exact" (`fusion.serving.topk.ExactIndex`), "faiss" (`fusion.serving.ann.FaissIndex`), a callable
            `vectors -> TopKIndex` used for all three indexes, or a `TopKIndex` instance that already holds
            `product_vectors` in `product_ids` order (it serves `recommend`; similar and search use exact ones).
        text_encoder: an object with `encode_query(str)` and `encode_texts(list[str])` to use instead of the
            model's own encoder (`text.TextEncoder` with the model's `encoder` setting, loaded on first use).
        search_blend: `fusion.serving.search.SearchBlend` weights (default alpha 0.1, beta 0.25, measured on
            Scientific).
        on_unknown: "popular" (default: unknown users get the most popular products and a warning) or "raise".
    """

    def __init__(self, *, model, snapshot: Snapshot, history: UserHistory, user_vectors: np.ndarray,
                 neighbourhood: GraphNeighbourhood, item_entity: np.ndarray, scales, model_version: str,
                 text_encoder=None, search_blend: SearchBlend | None = None, on_unknown: str = "popular",
                 index_factory: Callable[[np.ndarray], TopKIndex] = ExactIndex,
                 item_item: ItemItemHead | None = None, user_graph: UserGraph | None = None,
                 event_log: EventLog | None = None, cold_mix=None) -> None:
        if on_unknown not in _ON_UNKNOWN:
            raise ValueError(f"on_unknown must be one of {_ON_UNKNOWN}, got {on_unknown!r}")
        self.model = model
        self._state = snapshot
        self._history = history if isinstance(history, LiveHistory) else LiveHistory(history)
        self._users = frozen(user_vectors)       # at load; a user's recorded events give them a LiveUser
        self._user_graph = user_graph
        self._log = event_log
        self._extra_degree = np.zeros(len(item_entity))  # recorded events per trained product column
        self._encode_history = HistoryEncoder(model)
        self._neighbourhood = neighbourhood
        self._item_entity = item_entity
        self._scales = scales
        self._version = model_version
        self._encoder = text_encoder
        self.search_blend = search_blend or SearchBlend()
        self.on_unknown = on_unknown
        self._factory = index_factory
        self._item_item = item_item
        self._cold_mix = cold_mix
        self._recency = recency_weights(model, max(1, history.max_length))
        self._write_lock = threading.RLock()     # one writer (add_products, record) at a time
        self._index_lock = ReadWriteLock()      # indexes grown in place (`Snapshot.shared`)
        self._encoder_lock = threading.RLock()   # the text encoder is not thread-safe
        self._query_cache: OrderedDict[str, np.ndarray] = OrderedDict()

    # --- loading -------------------------------------------------------------------------------------
    @classmethod
    @torch.no_grad()
    def load(cls, model_dir: str | Path, store=None, index="exact", *, text_encoder=None,
             search_blend: SearchBlend | None = None, on_unknown: str = "popular",
             event_log: str | Path | None = "auto", durability: str = "flush") -> "Recommender":
        d = Path(model_dir)
        for f in ("config.json", "model.pt", "items.json"):
            if not (d / f).exists():
                raise FileNotFoundError(f"{d} is not a fusion model directory (no {f})")
        if on_unknown not in _ON_UNKNOWN:
            raise ValueError(f"on_unknown must be one of {_ON_UNKNOWN}, got {on_unknown!r}")
        factory = index_factory(index)
        meta = json.loads((d / "meta.json").read_text()) if (d / "meta.json").exists() else {}
        graph, store_path = _load_graph(store, d, meta)
        log = _event_log(event_log, store_path, durability)
        bound, model_user = _trained_graph(graph, d)
        data = TrainData.from_graph(bound, cache_dir=str(Path(store_path) / "text_cache") if store_path else None)
        fr = FusionRecommender.load(d, data)  # binds to the whole graph; checks the catalog
        model = fr.model_.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        # the model's own view of the graph: content-only (cold) products have no free embedding
        layers = model.gnn.layers(model.content_only_entities())
        entities = torch.stack(layers).mean(dim=0)
        items = model.item_vectors(entities, fr.text_embeddings)
        history = UserHistory.from_graph(graph, data.column_of)
        users = compute_user_vectors(model, entities, items, history, model_user=model_user)
        vectors = items.numpy()
        normed = unit_rows(vectors)
        text = None if fr.text_embeddings is None or not model.config.use_text else \
            fr.text_embeddings.numpy().astype(np.float32)
        scales = calibrate(model, text, normed, vectors, users) if text is not None else None
        mix = fr.cold_mix_ if text is not None else None
        graph_term = fr.cold_graph_ if fr.cold_graph_ is not None and fr.cold_graph_.shifts else None
        mixed = None
        if mix is not None:  # cold products (no interaction in the bound graph) rank with their text mixed in
            cold = np.zeros(len(vectors), dtype=bool)
            cold[cold_columns(data.user_items)] = True
            mixed = mixed_rows(mix, vectors, unit_rows(text), cold)
        if graph_term is not None:  # its per-user offset: one more column, -1 on the cold products it shifts
            c = np.zeros((len(vectors), 1), dtype=np.float32)
            c[graph_term.cold, 0] = -1.0
            mixed = np.concatenate([vectors if mixed is None else mixed, c], axis=1)
        last_text = fr.last_text_ if text is not None else None
        if last_text is not None:  # the latest product's text term: the unit text of every product with
            lt = unit_rows(text)      # interactions, one more block (cold products rank by their own mix)
            lt[cold_columns(data.user_items)] = 0.0
            mixed = np.concatenate([vectors if mixed is None else mixed, lt], axis=1)
        rec_rows = vectors if mixed is None else mixed
        if factory is None:
            if index.size != len(rec_rows) or getattr(index, "dim", rec_rows.shape[1]) != rec_rows.shape[1]:
                raise ValueError(f"the index given holds {index.size} vectors, the catalog has {len(vectors)} products"
                                 + ("" if mixed is None else f" ({rec_rows.shape[1]}-d rows with the cold text mix or graph offset)"))
            rec_index, factory = index, ExactIndex
        else:
            rec_index = factory(rec_rows)
        sim_index = factory(normed)
        search_index = None if text is None else factory(search_matrix(normed, text, vectors))
        # an index that cannot be copied is grown in place by add_products, searched under a read lock
        shared = not all(ix is None or isinstance(ix, ExactIndex) or callable(getattr(ix, "copy", None))
                         for ix in (rec_index, sim_index, search_index))
        snap = Snapshot(
            catalog=Catalog.from_graph(graph, data.items), vectors=frozen(vectors), normed=frozen(normed),
            text=None if text is None else frozen(text), rec_index=rec_index, sim_index=sim_index,
            search_index=search_index, shared=shared, mixed=None if mixed is None else frozen(mixed),
            profile=mix is not None, cold_graph=graph_term, last_text=0.0 if last_text is None else last_text.gamma)
        digest = hashlib.sha256((d / "model.pt").read_bytes())
        if fr.item_item_ is not None:  # the term changes the rankings: it is part of the version
            digest.update((d / HEAD_FILE).read_bytes())
        if fr.cold_graph_ is not None:  # so does the cold products' graph term
            digest.update((d / COLD_GRAPH_FILE).read_bytes())
        if mix is not None:
            digest.update((d / MIX_FILE).read_bytes())
        if last_text is not None:
            digest.update(repr(last_text.gamma).encode())
        version = digest.hexdigest()[:12]
        rec = cls(model=model, snapshot=snap, history=history, user_vectors=users,
                  neighbourhood=GraphNeighbourhood.from_encoder(model.gnn, layers),
                  item_entity=model.item_entity.numpy(), scales=scales, model_version=version,
                  text_encoder=text_encoder, search_blend=search_blend, on_unknown=on_unknown,
                  index_factory=factory, item_item=fr.scoring_head(), cold_mix=mix,
                  user_graph=_user_graph(model, layers, entities, bound, data.column_of, model_user), event_log=log)
        if log is not None:
            rec._replay(graph)
        return rec

    # --- properties ----------------------------------------------------------------------------------
    @property
    def model_version(self) -> str:
        """First 12 hex digits of the SHA-256 of model.pt (then item_item.npz, when the model has the term):
        a stable id of what ranks."""
        return self._version

    @property
    def product_ids(self) -> list[str]:
        """Every recommendable product id, in vector order (products added later at the end)."""
        return [str(x) for x in self._state.catalog.ids]

    @property
    def product_vectors(self) -> np.ndarray:
        """float32 [n_products, d] fused product vectors (read-only): a user's score is the dot product with
        them plus the item-item term of their history (`item_item`)."""
        return self._state.vectors

    @property
    def catalog(self) -> Catalog:
        """The products behind the vectors (ids, titles, brands, category tree; immutable, see `fusion.serving.catalog`)."""
        return self._state.catalog

    @property
    def product_text_vectors(self) -> np.ndarray | None:
        """float32 [n_products, d_text] the products' text-encoder vectors (read-only; None: a model without text)."""
        return self._state.text

    @property
    def item_item(self) -> ItemItemHead | None:
        """The model's sparse item-item term (None: a model without one)."""
        return self._item_item

    @property
    def event_log(self) -> Path | None:
        """The file `record` appends to (None: events are kept in memory only)."""
        return None if self._log is None else self._log.path

    @property
    def num_users(self) -> int:
        return self._history.num_users

    @property
    def user_ids(self) -> list[str]:
        """Every known user id: the store's in store order, then those who arrived through `record`."""
        return self._history.ids

    def history(self, user_id: str) -> pd.DataFrame:
        """A known user's catalog interactions, oldest first: product_id, title, event (UnknownIdError for an
        unknown user)."""
        u = self._history.user(check_id(user_id, "user"))
        view, c = self._history.pinned(u), self._state.catalog
        cols = view.items_of(u)
        return pd.DataFrame({"product_id": c.ids[cols].astype(str), "title": c.titles[cols],
                             "event": view.events_of(u)})

    def user_vectors(self, user_ids: Sequence[str]) -> np.ndarray:
        """float32 [B, d] vectors of known users (UnknownIdError for an unknown one)."""
        ids = check_id_list(user_ids, "user")
        return self._views([self._history.user(u) for u in ids])[0]

    def __repr__(self) -> str:
        st = self._state
        return (f"Recommender(model_version={self._version!r}, products={len(st.catalog)}, users={self.num_users}, "
                f"dim={st.vectors.shape[1]}, index={type(st.rec_index).__name__})")

    # --- recommendations -----------------------------------------------------------------------------
    def recommend(self, user_id: str, k: int = 10, exclude_seen: bool = True, brands=None, categories=None,
                  on_unknown: str | None = None) -> pd.DataFrame:
        """Top-k products for a known user: U[user] . F, without what the user already interacted with
        (`exclude_seen`), optionally only `brands` / `categories` (names or ids; a category matches its
        subcategories). Columns: rank, product_id, title, score, brand, category, source."""
        k, uid = check_k(k), check_id(user_id, "user")
        st = self._state
        allowed = st.catalog.allowed(brands, categories)
        u = self._history.find(uid)
        if u < 0:
            self._unknown([uid], on_unknown)
            return self._frame(st, *self._popular(st, k, allowed, None), "popular")
        vectors, seen, last = self._views([u])
        scores, cols = self._rank(st, vectors, seen, k, seen if exclude_seen else None, allowed, last)
        return self._frame(st, scores[0], cols[0], "model")

    def recommend_batch(self, user_ids: Sequence[str], k: int = 10, exclude_seen: bool = True, brands=None,
                        categories=None, on_unknown: str | None = None) -> pd.DataFrame:
        """`recommend` for many users at once (one matrix product per chunk of 1,024 users): one long frame
        with a `user_id` column first, users in the order given."""
        k = check_k(k)
        ids = check_id_list(user_ids, "user")
        st = self._state
        allowed = st.catalog.allowed(brands, categories)
        us = np.array([self._history.find(u) for u in ids], dtype=np.int64)
        unknown = us < 0
        if unknown.any():
            self._unknown([ids[i] for i in np.flatnonzero(unknown)], on_unknown)
        scores = np.full((len(ids), k), -np.inf, dtype=np.float32)
        cols = np.full((len(ids), k), -1, dtype=np.int64)
        known = np.flatnonzero(~unknown)
        for s in range(0, len(known), _BATCH):
            rows = known[s:s + _BATCH]
            vectors, seen, last = self._views(us[rows])
            scores[rows], cols[rows] = self._rank(st, vectors, seen, k, seen if exclude_seen else None, allowed,
                                                  last)
        if unknown.any():
            ps, pc = self._popular(st, k, allowed, None)
            scores[unknown], cols[unknown] = ps, pc
        sources = np.where(unknown, "popular", "model").tolist()
        c = st.catalog
        return batch_frame("user_id", ids, c.ids, c.titles, c.brand_text, c.category_text, cols, scores, sources)

    def recommend_new_user(self, product_ids: Iterable[str] = (), query: str | None = None, k: int = 10,
                           brands=None, categories=None) -> pd.DataFrame:
        """Recommendations for someone with no account yet: from products they chose (their history, oldest
        first, through the model's history encoder) and/or a text `query` (the search blend with that history
        as the user). With neither, the most popular products (source "popular"). The given products are
        never recommended back. On Scientific, such a history-only vector finds a user's held-out next item
        nearly as well as the known user's own vector (HR@10 0.106 against 0.113, 1,500 loo test users)."""
        k = check_k(k)
        ids = check_id_list(product_ids, "product", allow_empty=True)
        st = self._state
        allowed = st.catalog.allowed(brands, categories)
        cols = st.catalog.columns(ids) if ids else np.zeros(0, dtype=np.int64)
        exclude = [np.unique(cols)] if len(cols) else None
        if not len(cols) and query is None:
            return self._frame(st, *self._popular(st, k, allowed, exclude), "popular")
        user = self._encode_history(st.vectors, cols) if len(cols) else None
        if query is not None:
            scores, out = self._search_top(st, query, user, k, exclude, allowed)
        else:
            scores, out = self._rank(st, user[None], [np.unique(cols)], k, exclude, allowed, cols[-1:])
        return self._frame(st, scores[0], out[0], "model")

    # --- search and similar products -----------------------------------------------------------------
    def search(self, query: str, k: int = 10, user_id: str | None = None, exclude_seen: bool = False,
               brands=None, categories=None) -> pd.DataFrame:
        """Products for a text query; with `user_id`, personalised (the user's dot-product score joins the
        blend, see `fusion.serving.search`; the item-item term does not: the query, not the history, leads search;
        an unknown user gets the plain search and an `UnknownUserWarning`), and with `exclude_seen` without
        what that user already interacted with."""
        k = check_k(k)
        st = self._state
        allowed = st.catalog.allowed(brands, categories)
        user, exclude = None, None
        if user_id is not None:
            u = self._history.find(check_id(user_id, "user"))
            if u < 0:
                self._unknown([user_id], None, "searching without personalisation")
            else:
                vectors, seen, _ = self._views([u])
                user = vectors[0]
                exclude = seen if exclude_seen else None
        scores, cols = self._search_top(st, query, user, k, exclude, allowed)
        return self._frame(st, scores[0], cols[0], "model")

    def similar(self, product_id: str, k: int = 10, text_weight: float = 0.0) -> pd.DataFrame:
        """The k products closest to this one (itself excluded): cosine of the fused vectors, the model's view,
        which on purchase data puts what is bought alongside first (staples -> brads, screws, files, tape). With
        `text_weight` w > 0 the score is (1 - w) cos(F) + w cos(T), T the text embeddings: w = 1 gives
        look-alike products (other staples)."""
        out = self.similar_batch([product_id], k, text_weight)
        return out.drop(columns="source_id").reset_index(drop=True)

    def similar_batch(self, product_ids: Sequence[str], k: int = 10, text_weight: float = 0.0) -> pd.DataFrame:
        """`similar` for many products: one long frame with a `source_id` column first."""
        k = check_k(k)
        if isinstance(text_weight, bool) or not isinstance(text_weight, (int, float)) or not 0 <= text_weight <= 1:
            raise ValueError(f"text_weight must be a number in [0, 1], got {text_weight!r}")
        ids = check_id_list(product_ids, "product")
        st = self._state
        if text_weight and st.search_index is None:
            raise ValueError("this model was trained without text (use_text=False): text_weight must be 0")
        cols = st.catalog.columns(ids)
        scores = np.empty((len(ids), k), dtype=np.float32)
        out = np.empty((len(ids), k), dtype=np.int64)
        for s in range(0, len(ids), _BATCH):
            c = cols[s:s + _BATCH]
            if text_weight:  # the search index holds [F^ | T | F]
                w = float(text_weight)
                q = np.concatenate([(1 - w) * st.normed[c], w * st.text[c], np.zeros_like(st.vectors[c])], axis=1)
                index = st.search_index
            else:
                q, index = st.normed[c], st.sim_index
            scores[s:s + _BATCH], out[s:s + _BATCH] = self._top(st, index, q, k, [np.array([x]) for x in c], None)
        cat = st.catalog
        return batch_frame("source_id", ids, cat.ids, cat.titles, cat.brand_text, cat.category_text, out, scores,
                           ["model"] * len(ids))

    # --- explanations --------------------------------------------------------------------------------
    def explain(self, user_id: str, product_id: str, max_paths: int = 3) -> list[Explanation]:
        """Knowledge-graph paths from the user's history to the product, best first (see `fusion.serving.explain`):
        same brand, shared category, product relations, other customers. [] when there is none."""
        max_paths = check_k(max_paths, "max_paths")
        u = self._history.user(check_id(user_id, "user"))
        st = self._state
        p = st.catalog.column(check_id(product_id, "product"))
        view = self._history.pinned(u)  # one consistent history while a writer may record
        n = len(view.items_of(u))
        recency = self._recency if n <= len(self._recency) else recency_weights(self.model, n)
        return explain_paths(u, p, view, st.catalog, st.normed, recency, max_paths)

    # --- real time ---------------------------------------------------------------------------------
    def record(self, user_id: str, product_id: str, event: str = "interaction", timestamp=None,
               weight: float = 1.0) -> None:
        """Take one event: the next `recommend` / `search(user_id=...)` / `explain` for this user reflects it.

        Args:
            user_id: any id; a user the store does not know becomes a known user.
            product_id: a catalog product (`UnknownIdError` otherwise).
            event: e.g. "purchase", "view", "cart" (lower-cased, as the build stores it).
            timestamp: epoch seconds, a datetime, an ISO string, or None for now; the history stays in time
                order (a back-dated event is placed where it belongs).
            weight: a finite number, stored with the interaction.

        Returns once the event is in the event log (it survives a crash of the process from then on) and in
        the user's state. A bad timestamp, event or weight is a `ValueError` naming the field; nothing is kept.
        """
        self._record([event_row(user_id, product_id, event, timestamp, weight, self._state.catalog)])

    def record_batch(self, events: pd.DataFrame) -> int:
        """`record` for many events at once: a frame in the interactions format (user_id, product_id; optional
        timestamp, event, weight). Every row is checked first (errors name the row and field; then nothing is
        kept); returns the number of events taken."""
        rows = list(check_events(events, self._state.catalog).itertuples(index=False, name=None))
        if rows:
            self._record(rows)
        return len(rows)

    def _record(self, rows: list[tuple], log: bool = True) -> None:
        """Log, then apply, validated (user_id, product_id, timestamp, event, weight) rows."""
        with self._write_lock:
            if log and self._log is not None:
                self._log.append(rows)  # durable first: a crash after this line loses nothing
            self._apply(rows)

    def _apply(self, rows: list[tuple]) -> None:
        """Fold validated events into the users' states (the caller holds the write lock)."""
        st, hist = self._state, self._history
        by_user: dict[str, list[tuple[int, int, str]]] = {}
        for user_id, product_id, timestamp, event, _ in rows:
            c = st.catalog.column(product_id)
            if c < len(self._extra_degree):
                self._extra_degree[c] += 1.0
            by_user.setdefault(user_id, []).append((c, int(timestamp), event))
        link_cols, link_users = [], []
        for uid, evs in by_user.items():
            u = hist.index_for(uid)
            prev = hist.state(u)
            new_cols = np.array([e[0] for e in evs], dtype=np.int64)
            items = np.concatenate([hist.items_of(u), new_cols])
            events = np.concatenate([hist.events_of(u), np.array([e[2] for e in evs], dtype=object)])
            times = np.concatenate([hist.times_of(u), np.array([e[1] for e in evs], dtype=np.int64)])
            if len(times) > 1 and (np.diff(times) < 0).any():  # a back-dated event goes where it belongs
                by_time = np.argsort(times, kind="stable")
                items, events, times = items[by_time], events[by_time], times[by_time]
            vector = self._user_vector(st, u, items)
            hist.put(u, uid, LiveUser(frozen_ints(items), events, times, vector,
                                      (prev.recorded if prev else 0) + len(evs)), new_cols)
            link_cols.append(new_cols)
            link_users.append(np.full(len(new_cols), u, dtype=np.int64))
        if link_cols:
            hist.link(np.concatenate(link_cols), np.concatenate(link_users))

    def _user_vector(self, st: Snapshot, u: int, items: np.ndarray) -> np.ndarray:
        """u = e_u + h(history), recomputed for one user (see `fusion.serving.live`)."""
        h = self._encode_history(st.vectors, items)
        e = None if self._user_graph is None else self._user_graph.embedding(u, items, self._extra_degree)
        v = h if e is None else h + e
        v = np.ascontiguousarray(v, dtype=np.float32)
        v.flags.writeable = False
        return v

    def _replay(self, graph) -> None:
        """Apply the event log's rows that the store does not hold yet (by the build's identity rules)."""
        from kg.ingest import unseen_interactions

        raw = self._log.read()
        if not len(raw):
            return
        good, bad = [], []
        cat = self._state.catalog
        for i, r in enumerate(raw.itertuples(index=False)):
            try:
                good.append(event_row(r.user_id, r.product_id, r.event, r.timestamp or None,
                                      float(r.weight) if r.weight else 1.0, cat, where=f"{self._log.path} row {i + 1}: "))
            except (UnknownIdError, ValueError) as e:
                bad.append(str(e))
        if bad:
            warnings.warn(f"{len(bad)} event(s) of {self._log.path} were not replayed (kept in the log): {bad[0]}",
                          stacklevel=3)
        if good:
            frame = pd.DataFrame(good, columns=list(EVENT_COLUMNS))
            fresh = unseen_interactions(graph, frame)
            self._apply([r for r, keep in zip(good, fresh) if keep])

    def _views(self, users) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Vectors [B, d], distinct product columns and most recent product column [B] (-1: none) of users, each
        from one consistent state."""
        vecs, seen, last = [], [], []
        for u in users:
            s = self._history.state(int(u))
            items = self._history.base.items_of(int(u)) if s is None else s.items
            vecs.append(self._users[int(u)] if s is None else s.vector)
            seen.append(np.unique(items))
            last.append(int(items[-1]) if len(items) else -1)
        vecs = np.stack(vecs) if vecs else np.zeros((0, self._users.shape[1]), np.float32)
        return vecs, seen, np.asarray(last, dtype=np.int64)

    # --- cold start ----------------------------------------------------------------------------------
    @torch.no_grad()
    def add_products(self, df: pd.DataFrame, relations: pd.DataFrame | None = None) -> list[str]:
        """Add catalog products without retraining; returns their ids. They are at once recommendable,
        searchable and similar-able.

        Args:
            df: rows like the products file (product_id; optional title, description, brand, categories,
                price), validated by the same rules (`kg.validate.check_products`); an id already in the
                catalog is an error. Errors name the row, field and value.
            relations: optional rows like the relations file (product_id, relation, other_id) linking the new
                products to each other or to catalog products (ALSO_BOUGHT, ...): used for the graph vector
                and for explanations.

        Each product's vector fuses a text embedding of its text (the encoder) with a graph vector from its
        brand, categories and related products through the trained graph encoder (`fusion.serving.cold_start`);
        brands and categories the graph does not know contribute nothing to the graph side (text only).
        """
        with self._write_lock:
            st = self._state
            rows = parse_new_products(df, st.catalog)
            rel = parse_new_relations(relations, rows, st.catalog)
            catalog = st.catalog.extend(rows, rel)
            n0, n1 = len(st.catalog), len(catalog)
            new = np.arange(n0, n1)
            text = None
            if st.text is not None:
                from text import product_text

                texts = product_text(catalog.frame(new)).tolist()
                with self._encoder_lock:
                    text = self._get_encoder().encode_texts(texts)
                text = np.asarray(text, dtype=np.float32).reshape(len(new), -1)
                if text.shape[1] != st.text.shape[1]:
                    raise ValueError(f"the text encoder gives {text.shape[1]}-d vectors, the model was trained on "
                                     f"{st.text.shape[1]}-d ones")
            graph = np.stack([self._graph_vector(catalog, c, rel) for c in new])
            vectors = fuse(self.model, torch.from_numpy(graph),
                           None if text is None else torch.from_numpy(text)).numpy()
            normed = unit_rows(vectors)
            mixed = None
            if st.mixed is not None:  # a new product is cold: its text is mixed in like the trained cold ones'
                mixed = vectors if not st.profile else \
                    mixed_rows(self._cold_mix, vectors, unit_rows(text), np.ones(len(new), dtype=bool))
                if st.cold_graph is not None:  # no graph term of its own: no offset either
                    mixed = np.concatenate([mixed, np.zeros((len(new), 1), dtype=np.float32)], axis=1)
                if st.last_text:  # cold: the latest product's text term leaves it to the mix
                    mixed = np.concatenate([mixed, np.zeros((len(new), text.shape[1]), dtype=np.float32)], axis=1)
            indexes = [st.rec_index, st.sim_index, st.search_index]
            blocks = [vectors if mixed is None else mixed, normed,
                      None if text is None else search_matrix(normed, text, vectors)]
            # copy-on-write: readers of the old snapshot keep their indexes; an index that cannot be copied
            # (decided at load: `shared`) grows in place, and every search of it holds this lock
            clones = indexes if st.shared else [None if ix is None else clone_index(ix) for ix in indexes]
            with self._index_lock.write() if st.shared else nullcontext():
                for ix, block in zip(clones, blocks):
                    if ix is not None:
                        ix.add(np.ascontiguousarray(block, dtype=np.float32))
            self._state = replace(
                st, catalog=catalog, vectors=frozen(np.concatenate([st.vectors, vectors])),
                normed=frozen(np.concatenate([st.normed, normed])),
                text=None if text is None else frozen(np.concatenate([st.text, text])),
                rec_index=clones[0], sim_index=clones[1], search_index=clones[2],
                mixed=None if mixed is None else frozen(np.concatenate([st.mixed, mixed])))
            return [str(x) for x in rows["product_id"]]

    def _graph_vector(self, catalog: Catalog, col: int, rel: pd.DataFrame | None) -> np.ndarray:
        nb = self._neighbourhood
        related = []
        if rel is not None:
            pid = catalog.ids[col]
            for a, t, b in zip(rel["product_id"], rel["type"], rel["other_id"]):
                other = b if a == pid else a if b == pid else None
                if other is not None and other in catalog:
                    oc = catalog.column(other)
                    if oc < len(self._item_entity):  # a trained product: it has an entity
                        related.append((int(self._item_entity[oc]), str(t)))
        neighbours = product_neighbours(
            int(catalog.brand[col]), catalog.leaves[col], related, graph_brands=catalog.graph_brands,
            graph_categories=catalog.graph_categories, cat_parent=catalog.cat_parent,
            brand_offset=nb.offsets.get("Brand"), category_offset=nb.offsets.get("Category"))
        return nb.vector(neighbours)

    # --- internals -----------------------------------------------------------------------------------
    def _get_encoder(self):
        with self._encoder_lock:
            if self._encoder is None:
                from text import EncoderConfig, TextEncoder

                self._encoder = TextEncoder(EncoderConfig(model_name_or_path=self.model.config.encoder,
                                                          num_threads=torch.get_num_threads()))
            return self._encoder

    def _encode_query(self, query: str) -> np.ndarray:
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"query must be a non-empty string, got {query!r}")
        with self._encoder_lock:
            hit = self._query_cache.get(query)
            if hit is not None:
                self._query_cache.move_to_end(query)
                return hit
            encoder = self._get_encoder()
            with torch_threads(1):  # one short text: threads only add wake-ups (5 ms vs 340 ms on 2 busy cores)
                x = np.asarray(encoder.encode_query(query), dtype=np.float32).reshape(-1)
            self._query_cache[query] = x
            if len(self._query_cache) > 1024:
                self._query_cache.popitem(last=False)
            return x

    def _search_top(self, st: Snapshot, query: str, user: np.ndarray | None, k: int, exclude, allowed):
        if st.search_index is None:
            raise ValueError("this model was trained without text (use_text=False): it cannot search")
        x = self._encode_query(query)
        if x.shape[0] != st.text.shape[1]:
            raise ValueError(f"the text encoder gives {x.shape[0]}-d vectors, the model was trained on "
                             f"{st.text.shape[1]}-d ones")
        with torch.no_grad():
            q = self.model.query_vectors(torch.from_numpy(x)[None])[0].numpy()
        row = search_query(q, x, user, self.search_blend, self._scales)
        return self._top(st, st.search_index, row[None], k, exclude, allowed)

    def _top(self, st: Snapshot, index: TopKIndex, queries: np.ndarray, k: int, exclude, allowed, **kw):
        """index.search, safe for indexes grown in place by a later snapshot (their extra columns dropped);
        `kw` goes to the index (`extra` for an ExactIndex)."""
        n = len(st.catalog)
        with self._index_lock.read() if st.shared else nullcontext():
            extra = max(0, index.size - n)
            if allowed is not None and extra:
                allowed = np.concatenate([allowed, np.zeros(extra, dtype=bool)])
            scores, cols = index.search(queries, k + extra, exclude, allowed, **kw)
        if extra:
            late = cols >= n
            scores, cols = np.where(late, -np.inf, scores), np.where(late, -1, cols)
            order = np.argsort(cols < 0, axis=1, kind="stable")[:, :k]
            scores, cols = np.take_along_axis(scores, order, 1), np.take_along_axis(cols, order, 1)
        return scores, cols

    def _rank(self, st: Snapshot, users: np.ndarray, seen: list[np.ndarray], k: int, exclude, allowed,
              last: np.ndarray | None = None):
        """Top k of the full score U . F + item-item term of each user's products `seen` [B] (columns) and most
        recent product `last` [B] (the next-item memory's row; -1 or None: none).

        An exact index adds the term to its dense scores. Another index (faiss) gives the top k by dot
        product; the term only lifts (>= 0) the products it names, so the top k lies among those two sets,
        and a lifted product below the index's k-th score cannot enter: only the few above it are rescored
        and merged (vectorised over the batch)."""
        head = self._item_item
        users = st.rec_users(users, seen, last)  # [u | p_u | o_u | l_u] with the cold mix / graph / text terms
        if head is None:
            return self._top(st, st.rec_index, users, k, exclude, allowed)
        if isinstance(st.rec_index, ExactIndex):  # dense scores anyway: add the term to them
            return self._top(st, st.rec_index, users, k, exclude, allowed, extra=head.lift(seen, last))
        scores, cols = self._top(st, st.rec_index, users, k, exclude, allowed)
        out_s, out_c = scores.copy(), cols.copy()
        for s in range(0, len(seen), 256):
            stop = min(s + 256, len(seen))
            merged = self._merge_lifted(st, head, users[s:stop], seen[s:stop], scores[s:stop], cols[s:stop], k,
                                        None if exclude is None else exclude[s:stop], allowed,
                                        None if last is None else last[s:stop])
            if merged is not None:
                out_s[s:stop], out_c[s:stop] = merged
        return out_s, out_c

    @staticmethod
    def _merge_lifted(st: Snapshot, head: ItemItemHead, users, seen, scores, cols, k, exclude, allowed, last=None):
        """`_rank` for one chunk: (scores, cols) [b, k], or None when the term changes nothing."""
        lift = head.lift(seen, last)
        rows = np.repeat(np.arange(len(seen)), np.diff(lift.indptr))
        c, bonus = lift.indices.astype(np.int64), lift.data
        keep = np.ones(len(c), dtype=bool) if allowed is None else allowed[c]
        if exclude is not None:
            n = np.int64(len(st.catalog))
            ex = np.concatenate([r * n + np.asarray(e, dtype=np.int64) for r, e in enumerate(exclude)])
            keep &= ~np.isin(rows * n + c, ex)
        rows, c, bonus = rows[keep], c[keep], bonus[keep]
        if not len(c):
            return None
        uc, inv = np.unique(c, return_inverse=True)
        full = (users @ st.rec_vectors[uc].T)[rows, inv] + bonus
        kth = np.where(cols[:, -1] >= 0, scores[:, -1], -np.inf)  # the index's k-th score per row
        up = full >= kth[rows]
        if not up.any():
            return None
        rows, c, full = rows[up], c[up], full[up]
        # the index's own top k, rescored exactly (an approximate index may round), plus the lifted ones
        found = cols >= 0
        tr, tc = np.nonzero(found)[0], cols[found]
        ts = np.einsum("ij,ij->i", users[tr], st.rec_vectors[tc])
        r_all, c_all, s_all = np.concatenate([rows, tr]), np.concatenate([c, tc]), np.concatenate([full, ts])
        order = np.lexsort((-s_all, c_all, r_all))  # (row, column), the lifted (higher) score first
        r_all, c_all, s_all = r_all[order], c_all[order], s_all[order]
        first = np.ones(len(r_all), dtype=bool)
        first[1:] = (r_all[1:] != r_all[:-1]) | (c_all[1:] != c_all[:-1])
        r_all, c_all, s_all = r_all[first], c_all[first], s_all[first]
        order = np.lexsort((c_all, -s_all, r_all))  # per row: score down, ties by column like the exact index
        r_all, c_all, s_all = r_all[order], c_all[order], s_all[order]
        pos = np.arange(len(r_all)) - np.searchsorted(r_all, r_all)
        sel = pos < k
        out_s = np.full(scores.shape, -np.inf, dtype=np.float32)
        out_c = np.full(cols.shape, -1, dtype=np.int64)
        out_s[r_all[sel], pos[sel]] = s_all[sel]
        out_c[r_all[sel], pos[sel]] = c_all[sel]
        return out_s, out_c

    def _popular(self, st: Snapshot, k: int, allowed, exclude) -> tuple[np.ndarray, np.ndarray]:
        """The k most popular products (ties: catalog order) among `allowed`, minus `exclude[0]`."""
        order = st.catalog.popularity_order
        keep = np.ones(len(order), dtype=bool) if allowed is None else allowed[order]
        if exclude:
            keep &= ~np.isin(order, exclude[0])
        cols = order[keep][:k]
        scores = st.catalog.popularity[cols].astype(np.float32)
        pad = k - len(cols)
        return (np.pad(scores, (0, pad), constant_values=-np.inf),
                np.pad(cols, (0, pad), constant_values=-1))

    def _unknown(self, ids: list[str], on_unknown: str | None, what: str = "recommending the most popular "
                 "products (source='popular')") -> None:
        mode = self.on_unknown if on_unknown is None else on_unknown
        if mode not in _ON_UNKNOWN:
            raise ValueError(f"on_unknown must be one of {_ON_UNKNOWN}, got {mode!r}")
        shown = ", ".join(repr(x) for x in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        if mode == "raise":
            raise UnknownIdError(f"unknown user id {shown}: no interaction of this user is in the store")
        warnings.warn(f"unknown user id {shown}: {what}", UnknownUserWarning, stacklevel=3)

    @staticmethod
    def _frame(st: Snapshot, scores: np.ndarray, cols: np.ndarray, source: str) -> pd.DataFrame:
        c = st.catalog
        return result_frame(c.ids, c.titles, c.brand_text, c.category_text, cols, scores, source)
