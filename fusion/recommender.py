"""The fusion model behind the `RankingModel` interface (`fit` on a training graph, `score` users), so that
the evaluation harness measures it exactly like every baseline; `save` / `load` a trained model directory;
`warm_start` continues a saved model on a grown graph (`fusion.warm_start`)."""
from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from .cold_graph import (COLD_GRAPH_FILE, ColdGraphTerm, cold_graph_weights, combine_cold_graph, combined_head,
                         product_adjacency)
from .cold_mix import MIX_FILE, ColdTextMix, choose_cold_mix, cold_columns, pick_cold_row, score_spread
from .config import FusionConfig
from .data import Histories, TrainData, build_histories, build_path_sampler
from .features import build_inputs, entity_ids, text_embeddings
from .kg_similarity import kg_adjacency, kg_similarity_columns, projection_dim, random_projection
from .item_item import (HEAD_FILE, ItemItemHead, check_item_item_size, choose_item_item, choose_next_item,
                        item_item_weights, last_items, last_rows, next_item_weights, score_scale)
from .last_text import LastTextTerm, choose_last_text, last_text_scores
from .model import FusionModel
from .ranking_model import RankingModel
from .trainer import TrainState, score_users, train_model, validation_users
from .vectors import history_means, unit_rows

__all__ = ["FusionRecommender", "ENTITIES_FILE"]

ENTITIES_FILE = "entities.json"


class FusionRecommender(RankingModel):
    """Trains a `FusionModel` and scores with it.

    Args:
        config: model and training configuration (`FusionConfig()` defaults).
        name: reported name (`fusion` or an ablation name).
        tuning: optional TrainData with `valid` set (training rows without validation): the model is first trained
            on it with early stopping on validation NDCG@10; `fit(final)` then retrains from scratch on `final`
            (train + validation rows) for the best number of epochs (`refit=True`, the protocol every iterative
            baseline follows), or only re-binds the tuned model to the final graph (`refit=False`). Without it,
            `fit` trains on what it is given (early stopping if that has `valid`).
        out_dir: checkpoint directory (resumable) or None.

    After training, the item-item term (`fusion.item_item`) is chosen on validation (reg, weight; weight 0
    = none) with the tuned network and fitted on the final training rows (`item_item_`). So is the cold
    products' text mix (`fusion.cold_mix`: its weight on the tuning data's validation cold products, `cold_mix_`).
    """

    def __init__(self, config: FusionConfig | None = None, name: str = "fusion", tuning: TrainData | None = None,
                 out_dir: str | None = None, show_progress: bool = False, refit: bool = True) -> None:
        self.config = config or FusionConfig()
        self.name = name
        self._tuning = tuning
        self._out_dir = out_dir
        self._show = show_progress
        self.refit = refit
        self.tuning_history_: list[dict] = []
        self.model_: FusionModel | None = None
        self.state_: TrainState | None = None
        self._text = None
        self._hist: Histories | None = None
        self._item_ids: list[str] = []
        self._entity_ids: dict[str, list[str]] | None = None
        self._pretrained = False
        self._user_items: sp.csr_matrix | None = None
        self.item_item_: ItemItemHead | None = None
        self.item_item_choice_: tuple[float, float] | None = None
        self.item_item_tuning_: list[dict] = []
        self.item_item_valid_: float | None = None
        self.item_item_seconds_ = 0.0
        self.next_item_choice_ = 0.0  # the next-item memory's weight (`fusion.item_item.next_item_weights`)
        self.next_item_tuning_: list[dict] = []
        self._tuning_item_item: sp.csr_matrix | None = None  # W of the chosen reg on the choosing rows (transient)
        self.last_text_: LastTextTerm | None = None  # the latest product's text term (`fusion.last_text`)
        self.last_text_choice_ = 0.0
        self.last_text_tuning_: list[dict] = []
        self.cold_mix_: ColdTextMix | None = None
        self.cold_mix_choice_: float | None = None
        self.cold_mix_tuning_: list[dict] = []
        self.cold_mix_valid_: float | None = None
        self.cold_graph_: ColdGraphTerm | None = None  # the cold products' graph term (`fusion.cold_graph`)
        self.cold_graph_choice_: float = 0.0
        self.cold_graph_kg_choice_: float = 0.0  # rho: the KG similarity's share of the term (`fusion.kg_similarity`)
        self._unit_text: np.ndarray | None = None
        self._cold_cols: np.ndarray | None = None
        self.network_seconds_ = 0.0
        self.warm_start_: dict = {}  # set by `warm_start` (written to meta.json)

    def params(self) -> dict:
        return self.config.to_dict()

    @property
    def text_embeddings(self) -> torch.Tensor | None:
        """float32 [num_items, d_text]: the frozen text embeddings the model scores with (None without text)."""
        return self._text

    def without_item_item(self, name: str = "fusion_no_item_item") -> "FusionRecommender":
        """A copy of this trained model that scores with the network alone (the `fusion_no_item_item`
        ablation: the term is added after training, so nothing is retrained); `fit` only re-binds it."""
        rec = copy.copy(self)
        rec.config = self.config.ablation(name)
        rec.item_item_, rec.item_item_valid_, rec._pretrained = None, None, True
        rec.last_text_ = None  # a post-training term of the same stage: the network alone
        return rec

    def without_cold_mix(self, name: str = "fusion_no_cold_mix") -> "FusionRecommender":
        """A copy of this trained model whose cold products rank by the network alone (the mix is chosen after
        training, so nothing is retrained); `fit` only re-binds it."""
        rec = copy.copy(self)
        rec.config = copy.deepcopy(self.config)
        rec.config.cold_mix.enabled = False
        rec.name, rec.cold_mix_, rec.cold_mix_valid_, rec._pretrained = name, None, None, True
        rec.cold_graph_, rec.cold_graph_choice_, rec.cold_graph_kg_choice_ = None, 0.0, 0.0
        return rec

    def scoring_head(self):
        """The sparse term added to the network's scores (`fusion.item_item.ItemItemHead`, or None): the
        item-item term's columns plus the cold products' graph term's (`fusion.cold_graph.combined_head`)."""
        return combined_head(self.item_item_, self.cold_graph_)

    def _text_for(self, data: TrainData) -> torch.Tensor | None:
        if not self.config.use_text:
            return None
        if self._text is None:
            self._text = text_embeddings(data.graph, data.items, self.config.encoder, data.cache_dir,
                                         show_progress=self._show)
        return self._text

    def _build(self, data: TrainData) -> FusionModel:
        text = self._text_for(data)
        inputs = build_inputs(data.graph, data.items, self.config.relations, self.config.external_products,
                              self.config.external_links)
        dim = text.shape[1] if text is not None else 384
        return FusionModel(self.config, inputs.index, inputs.item_entity, text_dim=dim)

    def bind(self, data: TrainData) -> "FusionRecommender":
        """Point a trained model at `data`'s graph (message passing) and histories (user vectors)."""
        inputs = build_inputs(data.graph, data.items, self.config.relations, self.config.external_products,
                              self.config.external_links)
        if self.model_ is None:
            raise RuntimeError("bind() needs a trained or loaded model: call fit() or load() first")
        if inputs.index.total != self.model_.gnn.index.total:
            raise ValueError("the graph to bind has a different number of entities than the trained model")
        self.model_.gnn.index = inputs.index
        self._entity_ids = entity_ids(data.graph, self.config.external_products)
        self._hist = build_histories(data.graph, data.column_of)
        self._user_items = data.user_items
        self._cold_cols = None
        return self

    def fit(self, train: TrainData) -> "FusionRecommender":
        t0 = time.perf_counter()
        try:
            return self._fit(train)
        finally:
            self.fit_seconds_ = time.perf_counter() - t0

    def _fit(self, train: TrainData) -> "FusionRecommender":
        if self._pretrained:  # loaded weights: only re-bind to this graph and these histories
            return self.bind(train)
        if self._tuning is None:
            self._train_on(train, train.valid, "")
            self.network_seconds_ = self.state_.seconds
            self._choose_item_item(train)
            self._fit_item_item(train)
            self._choose_cold_mix(train)
            self._fit_cold_mix(train)
            return self
        # 1) find the epoch count with early stopping on validation; 2) retrain from scratch on `train`
        #    (training + validation rows, what the baselines are refitted on) for that many epochs.
        self._train_on(self._tuning, self._tuning.valid, "tune")
        tuned = self.state_
        self.network_seconds_ = tuned.seconds  # checkpointed: counts the time before a resume too
        self._choose_item_item(self._tuning)
        self._choose_cold_mix(self._tuning)
        if not self.refit:
            self.bind(train)
            self._fit_item_item(train)
            self._fit_cold_mix(train)
            return self
        best = max(1, tuned.best_epoch)
        self.config.train.epochs = best
        self._train_on(train, None, "final")
        self.network_seconds_ += self.state_.seconds
        self.state_.best_ndcg, self.state_.best_epoch = tuned.best_ndcg, best
        self.tuning_history_ = tuned.history
        self._fit_item_item(train)
        self._fit_cold_mix(train)
        return self

    def _unit_text_vectors(self) -> np.ndarray:
        if self._unit_text is None:
            self._unit_text = unit_rows(self._text.detach().cpu().numpy().astype(np.float32))
        return self._unit_text

    def _choose_cold_mix(self, data: TrainData) -> None:
        """The cold mix weight w by NDCG@10 on `data`'s validation cold products (`fusion.cold_mix`)."""
        try:
            self._choose_cold_mix_on(data)
        finally:
            self._tuning_item_item = None  # only the warm check below reuses it

    def _choose_cold_mix_on(self, data: TrainData) -> None:
        mc = self.config.cold_mix
        self.cold_mix_choice_, self.cold_mix_tuning_, self.cold_mix_valid_ = None, [], None
        self.cold_graph_choice_, self.cold_graph_kg_choice_ = 0.0, 0.0
        if not mc.enabled or self._text is None:
            return
        self.cold_mix_choice_, self.cold_graph_choice_ = float(mc.weight), float(mc.graph_weight)
        self.cold_graph_kg_choice_ = float(mc.graph_kg)
        if data.valid_cold is None or data.valid_cold.nnz == 0:
            return
        cols = np.flatnonzero(np.asarray(data.valid_cold.getnnz(axis=0)).ravel() > 0).astype(np.int64)
        users = validation_users(data.valid_cold, seed=self.config.train.seed)
        text = self._unit_text_vectors()
        cold = cold_columns(data.user_items)
        scores = score_users(self.model_, self._text, self._hist, users, cols=cols)
        parts = self._cold_graph_parts(data, cold)  # every cold column once: the validation ones and the warm check
        base, warm0 = None, {}  # warm0: v = 0's warm figure, the same for every share
        rows: list[dict] = []
        for i, rho in enumerate(self._kg_shares(parts)):
            g = combine_cold_graph(*parts, rho)
            graph = None if g is None else (data.user_items[users] @ g[:, cols]).toarray().astype(np.float32)
            # v = 0 leaves G (and so rho) out: its rows are scored once, with the first share
            vs = mc.graph_weights if i == 0 or graph is None else [v for v in mc.graph_weights if v]
            if graph is not None and parts[1] is not None:
                self._log(f"  cold graph: KG similarity share rho={rho:g}")
            _, _, r = choose_cold_mix(scores, data.user_items, users, data.valid_cold, cols, text,
                                      text[cold].mean(axis=0), mc.weights, log=self._log, graph=graph,
                                      graph_weights=vs)
            # the term lifts cold products into the full ranking: what does it cost there?
            if graph is not None and base is None:
                base = self._warm_base(data)
            warm = None
            if graph is not None:
                warm = warm0 | self._warm_cost(data, g, cold, sorted({x["graph_weight"] for x in r} - warm0.keys()),
                                               base)
                warm0 = {v: x for v, x in warm.items() if not v}
            pick_cold_row(r, warm, mc.graph_warm_tolerance)  # marks each row's warm_ok
            for x in r:
                x["graph_kg"] = float(rho) if graph is not None and x["graph_weight"] else 0.0
            rows += r
        ok = [i for i, r in enumerate(rows) if r["warm_ok"]]
        best = max(ok, key=lambda i: (rows[i]["valid_cold_ndcg@10"], -i))  # ties: the first (rho = 0 first)
        w = rows[best]["weight"]
        self.cold_mix_choice_, self.cold_graph_choice_ = w, rows[best]["graph_weight"]
        self.cold_graph_kg_choice_ = rows[best]["graph_kg"] if rows[best]["graph_weight"] else 0.0
        self.cold_mix_tuning_ = rows
        self.cold_mix_valid_ = rows[best]["valid_cold_ndcg@10"]
        net = next((r["valid_cold_ndcg@10"] for r in rows if r["weight"] == 0 and not r["graph_weight"]), None)
        txt = next((r["valid_cold_ndcg@10"] for r in rows if r["weight"] == 1 and not r["graph_weight"]), None)
        has_graph = any(r["graph_weight"] for r in rows)
        self._log(f"cold mix: w={w:g}" + (f", graph v={self.cold_graph_choice_:g} rho={self.cold_graph_kg_choice_:g}"
                                          if has_graph else "")
                  + f", validation cold NDCG@10 {self.cold_mix_valid_:.4f} on {len(cols):,} products "
                  f"(network alone {net if net is None else round(net, 4)}, text order "
                  f"{txt if txt is None else round(txt, 4)})")

    def _kg_shares(self, parts: tuple) -> list[float]:
        """The shares rho of the KG similarity to try: `cold_mix.graph_kg_mix`, only 1 without relation paths
        and only 0 without the KG similarity ([0] also when neither is there: one pass without a term)."""
        rel, kg = parts
        if kg is None:
            return [0.0]
        if rel is None:
            return [1.0]
        return [float(r) for r in self.config.cold_mix.graph_kg_mix]

    def _warm_base(self, data: TrainData):
        """(users, scores, seen, rel) of the warm check: up to 3,000 validation users, scored by the network
        plus the chosen item-item term and next-item memory; None without validation rows."""
        if data.valid is None or data.valid.nnz == 0:
            return None
        users = validation_users(data.valid, max_users=3000, seed=self.config.train.seed)
        if not len(users):
            return None
        scores = score_users(self.model_, self._text, self._hist, users)
        seen = data.user_items[users]
        ic = self.config.item_item
        if self.item_item_choice_ is not None and self.item_item_choice_[1]:
            reg, weight = self.item_item_choice_
            w = self._tuning_item_item  # fitted on these rows while choosing reg; refitted only when not kept
            w = item_item_weights(data.user_items, reg, ic.top_k, ic.max_items) if w is None else w
            e = (seen @ w).toarray()
            net = scores.copy()
            scores += np.float32(weight * score_scale(scores, e)) * e.astype(np.float32)
            if self.next_item_choice_:
                t = self._next_scores(users, scores.shape[1])
                scores += np.float32(self.next_item_choice_ * score_scale(net, t)) * t
        return users, scores, seen, data.valid[users]

    def _warm_cost(self, data: TrainData, g: sp.csr_matrix, cold: np.ndarray, vs: list[float],
                   base=None) -> dict[float, float]:
        """Validation NDCG@10 over the whole catalog (network + the chosen item-item term + v times the cold
        graph term `g` on the cold columns `cold` of `data`) for each v: the cold graph term may only be chosen
        where it keeps warm ranking within `cold_mix.graph_warm_tolerance` of v = 0. `base`: `_warm_base`'s."""
        from .metrics import ndcg_at_k, top_k as top_k_cols

        base = self._warm_base(data) if base is None else base
        if base is None:
            return {}
        users, scores, seen, rel = base
        term = (seen @ g[:, cold]).toarray().astype(np.float32)
        c = score_spread(scores[:, cold], term)
        mc = self.config.cold_mix  # each user's cold products give back their offset, as the fitted term will
        term -= ColdGraphTerm(g, 1.0, 0.0, mc.graph_hop2, mc.graph_offset, cold).offsets(seen)[:, None]
        k = min(10, scores.shape[1])
        out = {}
        for v in vs:
            s = scores.copy()
            s[:, cold] += np.float32(v * c) * term
            out[v] = ndcg_at_k(top_k_cols(s, k, seen), rel, k)
            self._log(f"  cold graph v={v:g}: warm validation NDCG@10 {out[v]:.4f}")
        return out

    def _cold_graph_parts(self, data: TrainData, cold: np.ndarray) -> tuple:
        """(G_rel, M) for the columns `cold` on `data`'s graph: `_relation_paths` and `_kg_columns`."""
        return self._relation_paths(data, cold), self._kg_columns(data, cold)

    def _relation_paths(self, data: TrainData, cold: np.ndarray) -> sp.csr_matrix | None:
        """G_rel of `fusion.cold_graph` for the columns `cold` on `data`'s graph; None without product relations
        reaching them, or when the term is off (`cold_mix.graph_weights` all 0)."""
        mc = self.config.cold_mix
        if not len(cold) or not any(mc.graph_weights):
            return None
        adj = product_adjacency(data.graph, data.column_of, data.num_items, self.config.external_links)
        g = cold_graph_weights(adj, cold, mc.graph_hop2, mc.graph_top_k, data.user_items, mc.graph_cf)
        return g if g.nnz else None

    def _kg_columns(self, data: TrainData, cold: np.ndarray) -> sp.csr_matrix | None:
        """M of `fusion.kg_similarity` for the columns `cold` on `data`'s graph; None when the term is off, when
        `cold_mix.graph_kg_mix` and `graph_kg` are all 0, or when the graph exceeds `graph_kg_max_gib`."""
        mc = self.config.cold_mix
        if not len(cold) or not any(mc.graph_weights) or not (any(mc.graph_kg_mix) or mc.graph_kg):
            return None
        adj = kg_adjacency(data.graph, data.items)
        dim = projection_dim(adj.shape[0], mc.graph_kg_dim, mc.graph_kg_max_gib)
        if dim < mc.graph_kg_dim:
            self._log(f"cold graph: KG similarity " + (f"with {dim} dimensions" if dim else "skipped") +
                      f": {adj.shape[0]:,} nodes x {mc.graph_kg_dim} dimensions exceed "
                      f"cold_mix.graph_kg_max_gib={mc.graph_kg_max_gib:g}")
        if not dim:
            return None
        emb = random_projection(adj, dim, mc.graph_kg_hops, seed=self.config.train.seed, rows=data.num_items)
        m = kg_similarity_columns(emb, cold, mc.graph_kg_top_k)
        return m if m.nnz else None

    def _fit_cold_mix(self, data: TrainData) -> None:
        """F_bar, t_bar and a on `data` (the bound training rows) for the chosen w (none when w = 0), then the
        cold graph term for the chosen v."""
        self.cold_mix_ = None
        self._fit_cold_graph(data)
        w = self.cold_mix_choice_
        if not w or self._text is None:
            return
        text = self._unit_text_vectors()
        cold = cold_columns(data.user_items)
        with torch.no_grad():
            self.model_.eval()
            ent = self.model_.entity_embeddings()
            items = self.model_.item_vectors(ent, self._text)
        fused = items.numpy()
        if not len(cold):  # no cold product now: keep w for products added later, measure a on every product
            cold = np.arange(len(text), dtype=np.int64)
        t_mean, f_mean = text[cold].mean(axis=0), fused[cold].mean(axis=0)
        users = np.flatnonzero(np.diff(data.user_items.indptr) > 0)
        if len(users) > 2000:
            users = np.sort(np.random.default_rng(self.config.train.seed).choice(users, 2000, replace=False))
        scores = score_users(self.model_, self._text, self._hist, users, cols=cold, embedded=(ent, items))
        tau = history_means(data.user_items[users], text) @ (text[cold] - t_mean).T
        self.cold_mix_ = ColdTextMix(float(w), score_spread(scores, tau), f_mean.astype(np.float32),
                                     t_mean.astype(np.float32), self.cold_mix_valid_)

    def _fit_cold_graph(self, data: TrainData) -> None:
        """G on `data`'s graph for its cold products (with the chosen KG share rho) and gamma = v * the
        network's cold-score spread over G's."""
        self.cold_graph_ = None
        v = self.cold_graph_choice_
        if not v or self._text is None or not self.config.cold_mix.enabled:
            return
        cold = cold_columns(data.user_items)
        rho = float(self.cold_graph_kg_choice_ or 0.0)
        rel = self._relation_paths(data, cold)
        kg = self._kg_columns(data, cold) if rho > 0 or rel is None else None  # rho = 0 leaves M out: not built
        if rel is None and kg is not None:
            rho = 1.0  # no relation paths here: the KG similarity is the whole term
        g = combine_cold_graph(rel, kg, rho)
        if g is None:
            return
        users = np.flatnonzero(np.diff(data.user_items.indptr) > 0)
        if len(users) > 2000:
            users = np.sort(np.random.default_rng(self.config.train.seed).choice(users, 2000, replace=False))
        scores = score_users(self.model_, self._text, self._hist, users, cols=cold)
        term = (data.user_items[users] @ g[:, cold]).toarray()
        self.cold_graph_ = ColdGraphTerm(g, float(v) * score_spread(scores, term), float(v),
                                         float(self.config.cold_mix.graph_hop2), self.config.cold_mix.graph_offset,
                                         cold, kg_share=rho)

    def _choose_item_item(self, data: TrainData) -> None:
        """(reg, weight) of the item-item term by validation NDCG@10 of the trained network plus the term."""
        ic = self.config.item_item
        self.item_item_choice_, self.item_item_tuning_, self._tuning_item_item = None, [], None
        self.next_item_choice_, self.next_item_tuning_ = 0.0, []
        self.last_text_choice_, self.last_text_tuning_ = 0.0, []
        if not ic.enabled:
            return
        if data.valid is None:
            self.item_item_choice_, self.next_item_choice_ = (ic.reg, ic.weight), float(ic.next_weight)
            self.last_text_choice_ = float(ic.text_weight) if self._text is not None else 0.0
            return
        try:  # before any scoring: on a large catalog the validation scores alone take GBs
            check_item_item_size(int(np.unique(data.user_items.indices).size), ic.max_items)
        except ValueError as e:  # too many products for the dense inverse: the network alone
            self._log(f"item-item term skipped: {e}")
            return
        users = validation_users(data.valid, seed=self.config.train.seed)
        if not len(users):
            self.item_item_choice_, self.next_item_choice_ = (ic.reg, ic.weight), float(ic.next_weight)
            self.last_text_choice_ = float(ic.text_weight) if self._text is not None else 0.0
            return
        t0 = time.perf_counter()
        scores = score_users(self.model_, self._text, self._hist, users)
        fitted: dict = {}
        try:
            reg, weight, rows = choose_item_item(scores, data.user_items, users, data.valid, ic.regs, ic.weights,
                                                 ic.top_k, ic.max_items, log=self._log, fitted=fitted)
        except ValueError as e:  # too many products for the dense inverse: the network alone
            self._log(f"item-item term skipped: {e}")
            return
        self.item_item_choice_, self.item_item_tuning_ = (reg, weight), rows
        self._tuning_item_item = fitted.get("weights")  # the cold graph's warm check scores with it; then dropped
        self.item_item_valid_ = max(r["valid_ndcg@10"] for r in rows)
        chosen = fitted["scores"]
        if ic.next_weights:  # the next-item memory, on top of the chosen term
            n = data.user_items.shape[1]
            t = self._next_scores(users, n)
            nw, nscale, nrows = choose_next_item(fitted["scores"], t, scores, data.user_items[users],
                                                 data.valid[users], ic.next_weights, log=self._log)
            self.next_item_choice_, self.next_item_tuning_ = nw, nrows
            self.item_item_valid_ = max(self.item_item_valid_, max(r["valid_ndcg@10"] for r in nrows))
            if nw:  # in place unless it is the network's own array (the term lost): beauty's is ~1 GB
                if chosen is scores:
                    chosen = chosen.copy()
                chosen += np.float32(nw * nscale) * t
            del t
        fitted.pop("scores", None)
        if ic.text_weights and self._text is not None:  # the latest product's text, on top of both
            last = last_items(self._hist.indptr, self._hist.items, users)
            term = last_text_scores(self._unit_text_vectors(), last)
            term[:, cold_columns(data.user_items)] = 0.0  # cold products rank by their own mix
            tw, _, trows = choose_last_text(chosen, term, scores,
                                            data.user_items[users], data.valid[users], ic.text_weights, log=self._log)
            self.last_text_choice_, self.last_text_tuning_ = tw, trows
            self.item_item_valid_ = max(self.item_item_valid_, max(r["valid_ndcg@10"] for r in trows))
        self.item_item_seconds_ += time.perf_counter() - t0
        self._log(f"item-item term: reg={reg:g} weight={weight:g}, next-item weight={self.next_item_choice_:g}, "
                  f"latest-product text weight={self.last_text_choice_:g}, valid NDCG@10 {self.item_item_valid_:.4f} "
                  f"(network alone {rows[0]['valid_ndcg@10']:.4f})")

    def _next_matrix(self, num_items: int) -> sp.csr_matrix:
        """T of the next-item memory from the histories the model is bound to (`fusion.item_item`)."""
        return next_item_weights(self._hist.indptr, self._hist.items, num_items)

    def _next_scores(self, users: np.ndarray, num_items: int, t: sp.csr_matrix | None = None) -> np.ndarray:
        """float32 [len(users), num_items]: T[last product] of each user (zeros without history)."""
        t = self._next_matrix(num_items) if t is None else t
        last = last_items(self._hist.indptr, self._hist.items, users)
        return (last_rows(last, num_items) @ t).toarray().astype(np.float32)

    def _fit_item_item(self, data: TrainData) -> None:
        """Fit W on `data`'s interactions with the chosen reg; gamma from the network's score spread; then the
        latest product's text term with its chosen weight."""
        shared: dict = {}  # both scale their term by the network's scores of the same users: scored once
        try:
            self._fit_item_item_head(data, shared)
        finally:
            self._fit_last_text(data, shared)

    def _scale_users(self, data: TrainData, shared: dict) -> tuple[np.ndarray, np.ndarray]:
        """(users, the network's scores [users, products]): up to 2,000 of `data`'s users with a history, the
        rows each post-training term's gamma is measured on; computed once per fit and kept in `shared`."""
        if "users" not in shared:
            users = np.flatnonzero(np.diff(data.user_items.indptr) > 0)
            if len(users) > 2000:
                users = np.sort(np.random.default_rng(self.config.train.seed).choice(users, 2000, replace=False))
            shared["users"], shared["net"] = users, score_users(self.model_, self._text, self._hist, users)
        return shared["users"], shared["net"]

    def _fit_last_text(self, data: TrainData, shared: dict | None = None) -> None:
        """gamma of the latest product's text term: its chosen weight times the network's score spread over the
        term's, on up to 2,000 of `data`'s users with a history (`fusion.last_text`)."""
        self.last_text_ = None
        tw = float(self.last_text_choice_ or 0.0)
        if not tw or self._text is None or not self.config.item_item.enabled:
            return
        t0 = time.perf_counter()
        users, net = self._scale_users(data, {} if shared is None else shared)
        last = last_items(self._hist.indptr, self._hist.items, users)
        term = last_text_scores(self._unit_text_vectors(), last)
        term[:, cold_columns(data.user_items)] = 0.0
        scale = score_scale(net, term)
        if scale > 0:
            valid = max((r["valid_ndcg@10"] for r in self.last_text_tuning_), default=None)
            self.last_text_ = LastTextTerm(tw, tw * scale, valid)
        self.item_item_seconds_ += time.perf_counter() - t0

    def _fit_item_item_head(self, data: TrainData, shared: dict | None = None) -> None:
        self.item_item_ = None
        nw = float(self.next_item_choice_ or 0.0)
        if self.item_item_choice_ is None or (self.item_item_choice_[1] == 0 and not nw):
            return
        t0 = time.perf_counter()
        ic = self.config.item_item
        reg, weight = self.item_item_choice_
        n = data.user_items.shape[1]
        try:
            w = item_item_weights(data.user_items, reg, ic.top_k, ic.max_items) if weight else \
                sp.csr_matrix((n, n), dtype=np.float32)
        except ValueError as e:  # too many products for the dense inverse: the network alone
            self._log(f"item-item term skipped: {e}")
            return
        users, net = self._scale_users(data, {} if shared is None else shared)
        scale = score_scale(net, (data.user_items[users] @ w).toarray()) if weight else 0.0
        head = ItemItemHead(w, weight * scale, reg, weight)
        if nw:  # the next-item memory from the same rows' time-ordered histories
            t = self._next_matrix(n)
            head = ItemItemHead(w, weight * scale, reg, weight, next_weights=t,
                                next_gamma=nw * score_scale(net, self._next_scores(users, n, t)), next_weight=nw)
        self.item_item_ = head
        self.item_item_seconds_ += time.perf_counter() - t0

    def _log(self, msg: str) -> None:
        from . import distributed
        if distributed.is_main():  # one voice when several processes train together
            print(msg, file=sys.stderr, flush=True)

    def _train_on(self, data: TrainData, valid, stage: str, init=None) -> "FusionRecommender":
        """Build a fresh model on `data` (then `init(model)`, e.g. a warm start's weights) and train it."""
        self._item_ids = data.graph.nodes["Product"]["id"].to_numpy()[data.items].tolist()
        self._entity_ids = entity_ids(data.graph, self.config.external_products)
        torch.manual_seed(self.config.train.seed)  # the initial weights too: two fits of one config agree
        self.model_ = self._build(data)
        if init is not None:
            init(self.model_)
        hist = build_histories(data.graph, data.column_of)
        paths = build_path_sampler(data.graph, data.column_of, self.config.loss.kg_path_groups)
        out = None if self._out_dir is None else str(Path(self._out_dir) / f"checkpoint{'-' + stage if stage else ''}")
        self.state_ = train_model(self.model_, self._text_for(data), hist, paths, data.user_items, valid,
                                  out_dir=out, show_progress=self._show)
        self.best_epoch_ = self.state_.best_epoch
        self._hist = hist
        self._user_items = data.user_items
        return self

    @classmethod
    def warm_start(cls, model_dir: str | Path, data: TrainData, epochs: int | None = None, lr: float | None = None,
                   out_dir: str | None = None, show_progress: bool = False) -> "FusionRecommender":
        """Continue training a saved model on `data`, whose graph may have grown (new users, products,
        interactions): a model built on `data.graph` takes the saved weights row by row (`fusion.warm_start`),
        trains `epochs` epochs (default `fusion.warm_start.default_epochs` of meta.json's best epoch count: a
        quarter, rounded up) at `lr` (default the saved one), early-stopped when `data.valid` is set, then refits
        the item-item term with the saved (reg, weight) on `data`'s interactions. The config is the saved one;
        the text embeddings of known products are the saved ones (only new products are encoded)."""
        from .warm_start import WARM_LR_SCALE, default_epochs, transfer_text, transfer_weights

        t0 = time.perf_counter()
        d = Path(model_dir)
        meta = json.loads((d / "meta.json").read_text()) if (d / "meta.json").exists() else {}
        cfg = FusionConfig.load(d) if (d / "config.json").exists() else None
        if cfg is None:
            raise FileNotFoundError(f"{d} is not a fusion model directory (no config.json)")
        best = int(meta.get("best_epoch") or cfg.train.epochs)
        cfg.train.epochs = int(epochs) if epochs is not None else default_epochs(best)
        cfg.train.lr = float(lr) if lr is not None else cfg.train.lr * WARM_LR_SCALE
        if cfg.train.epochs < 1:
            raise ValueError(f"warm-start epochs must be >= 1, got {cfg.train.epochs}")
        rec = cls(cfg, name=meta.get("name", "fusion"), out_dir=out_dir, show_progress=show_progress)
        if cfg.use_text:  # the saved vectors of known products; only new ones are encoded
            ids = data.graph.nodes["Product"]["id"].to_numpy()[data.items].astype(str).tolist()
            rec._text, n_encoded = transfer_text(d, ids, lambda pos: text_embeddings(
                data.graph, data.items[pos], cfg.encoder, data.cache_dir, show_progress=show_progress))
            if rec._text is None:  # no text.pt: encode the whole catalog
                rec._text_for(data)
            elif n_encoded:
                rec._log(f"warm start: encoded the text of {n_encoded:,} new products")
        reports = []
        rec._train_on(data, data.valid, "warm",
                      init=lambda m: reports.append(transfer_weights(m, d, rec._entity_ids, rec._item_ids)))
        rec._log(str(reports[0]))
        rec.network_seconds_ = rec.state_.seconds
        ii = meta.get("item_item")  # None: the saved model had no term (disabled, or weight 0 chosen)
        rec.item_item_choice_ = None if not ii or not cfg.item_item.enabled else (float(ii["reg"]), float(ii["weight"]))
        rec.next_item_choice_ = float((ii or {}).get("next_weight") or 0.0)
        saved_text = LastTextTerm.from_dict(meta.get("last_text"))
        rec.last_text_choice_ = 0.0 if saved_text is None or not cfg.item_item.enabled else saved_text.weight
        rec._fit_item_item(data)
        saved_mix = ColdTextMix.load(d)
        rec.cold_mix_choice_ = None if saved_mix is None or not cfg.cold_mix.enabled else saved_mix.weight
        rec.cold_mix_valid_ = None if saved_mix is None else saved_mix.valid_ndcg
        saved_graph = ColdGraphTerm.load(d)
        rec.cold_graph_choice_ = 0.0 if saved_graph is None or not cfg.cold_mix.enabled else saved_graph.weight
        rec.cold_graph_kg_choice_ = 0.0 if saved_graph is None else saved_graph.kg_share
        rec._fit_cold_mix(data)
        warm_epochs = rec.state_.epoch
        if data.valid is None:
            rec.state_.best_ndcg = None  # nothing validated this run
        rec.best_epoch_ = best  # the from-scratch epoch count, so that warm starts chain with the same default
        rec.fit_seconds_ = time.perf_counter() - t0
        rec.warm_start_ = {"warm_start_from": str(d.resolve()), "warm_epochs": warm_epochs, "warm_lr": cfg.train.lr,
                           "warm_seconds": round(rec.fit_seconds_, 1), "warm_start": reports[0].to_dict()}
        return rec

    def save(self, directory: str | Path, extra: dict | None = None) -> Path:
        """Write config.json, model.pt (weights), items.json (product id of each column), text.pt (frozen
        text embeddings) and meta.json, so that the directory reloads on its own with the store."""
        if self.model_ is None:
            raise RuntimeError("call fit() first")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.config.save(d)
        torch.save(self.model_.state_dict(), d / "model.pt")
        if self._text is not None:
            torch.save(self._text, d / "text.pt")
        (d / "items.json").write_text(json.dumps(self._item_ids))
        if self._entity_ids is not None:  # whose rows the entity embeddings are (warm start, grown stores)
            (d / ENTITIES_FILE).write_text(json.dumps(self._entity_ids))
        if self.item_item_ is not None:
            self.item_item_.save(d)
        elif (d / HEAD_FILE).exists():
            (d / HEAD_FILE).unlink()  # a stale term from an earlier run in the same directory
        if self.cold_mix_ is not None:
            self.cold_mix_.save(d)
        elif (d / MIX_FILE).exists():
            (d / MIX_FILE).unlink()
        if self.cold_graph_ is not None:
            self.cold_graph_.save(d)
        elif (d / COLD_GRAPH_FILE).exists():
            (d / COLD_GRAPH_FILE).unlink()
        cg = self.cold_graph_
        mix = self.cold_mix_
        head = self.item_item_
        meta = {"name": self.name, "best_epoch": self.best_epoch_,
                "best_valid_ndcg@10": None if self.state_ is None else self.state_.best_ndcg,
                "item_item": None if head is None else {"reg": head.reg, "weight": head.weight, "gamma": head.gamma,
                                                        "next_weight": head.next_weight,
                                                        "next_gamma": head.next_gamma,
                                                        "valid_ndcg@10": self.item_item_valid_,
                                                        "next_tuning": self.next_item_tuning_},
                "last_text": None if self.last_text_ is None else {**self.last_text_.to_dict(),
                                                                   "tuning": self.last_text_tuning_},
                "cold_mix": {"weight": 0.0 if mix is None else mix.weight, "scale": None if mix is None else mix.scale,
                             "graph_weight": 0.0 if cg is None else cg.weight,
                             "graph_gamma": None if cg is None else cg.gamma,
                             "graph_offset": None if cg is None else cg.offset,
                             "graph_kg": None if cg is None else cg.kg_share,
                             "valid_cold_ndcg@10": self.cold_mix_valid_, "tuning": self.cold_mix_tuning_},
                # a resumed run's own wall time misses the epochs before the kill: count those too
                "train_seconds": round(max(getattr(self, "fit_seconds_", 0.0),
                                           self.network_seconds_ + self.item_item_seconds_), 1),
                "network_seconds": round(self.network_seconds_, 1), "item_item_seconds": round(self.item_item_seconds_, 1),
                **self.warm_start_, **(extra or {})}
        (d / "meta.json").write_text(json.dumps(meta, indent=2))
        return d

    @classmethod
    def load(cls, directory: str | Path, data: TrainData) -> "FusionRecommender":
        """A trained model from `save()`, bound to `data` (the same store's catalog: checked by product ids)."""
        d = Path(directory)
        if not (d / "config.json").exists():
            raise FileNotFoundError(f"{d} is not a fusion model directory (no config.json)")
        meta = json.loads((d / "meta.json").read_text())
        rec = cls(FusionConfig.load(d), name=meta.get("name", "fusion"))
        ids = json.loads((d / "items.json").read_text())
        have = data.graph.nodes["Product"]["id"].to_numpy()[data.items].tolist()
        if ids != have:
            raise ValueError(f"{d} was trained on a different catalog ({len(ids)} products) than the store "
                             f"given ({len(have)} products)")
        if (d / "text.pt").exists():
            rec._text = torch.load(d / "text.pt")
        rec.model_ = rec._build(data)
        rec.model_.load_state_dict(torch.load(d / "model.pt"))
        rec.model_.eval()
        rec.best_epoch_ = meta.get("best_epoch", 0)
        rec.best_valid_ = meta.get("best_valid_ndcg@10")
        rec.network_seconds_ = float(meta.get("network_seconds") or meta.get("train_seconds") or 0.0)
        rec._item_ids = ids
        rec._pretrained = True
        rec._hist = build_histories(data.graph, data.column_of)
        rec._user_items = data.user_items
        if rec.config.item_item.enabled:
            rec.item_item_ = ItemItemHead.load(d)
            rec.item_item_valid_ = (meta.get("item_item") or {}).get("valid_ndcg@10")
            if rec._text is not None:
                rec.last_text_ = LastTextTerm.from_dict(meta.get("last_text"))
        if rec.item_item_ is not None and rec.item_item_.num_items != len(ids):
            raise ValueError(f"{d / HEAD_FILE} covers {rec.item_item_.num_items} products, the model {len(ids)}")
        if rec.config.cold_mix.enabled and rec._text is not None:
            rec.cold_mix_ = ColdTextMix.load(d)
            rec.cold_mix_valid_ = None if rec.cold_mix_ is None else rec.cold_mix_.valid_ndcg
            rec.cold_graph_ = ColdGraphTerm.load(d)
            if rec.cold_graph_ is not None and rec.cold_graph_.num_items != len(ids):
                raise ValueError(f"{d / COLD_GRAPH_FILE} covers {rec.cold_graph_.num_items} products, the model "
                                 f"{len(ids)}")
        return rec

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        if self.model_ is None or self._hist is None:
            raise RuntimeError("call fit() first")
        user_idx = np.asarray(user_idx, dtype=np.int64)
        scores = score_users(self.model_, self._text, self._hist, user_idx)
        mix = self.cold_mix_
        if mix is not None:
            if self._cold_cols is None:
                self._cold_cols = cold_columns(self._user_items)
            c = self._cold_cols
            if len(c):
                text = self._unit_text_vectors()
                block = scores[:, c]
                scores[:, c] = mix.mix(block, block.mean(axis=1), history_means(self._user_items[user_idx], text),
                                       text[c])
        head = self.scoring_head()  # after the mix, as the query API adds it to the mixed rows' dot products
        if head is not None:
            last = last_items(self._hist.indptr, self._hist.items, user_idx) if head.uses_last else None
            scores += head.scores(self._user_items[user_idx], last)
        if self.cold_graph_ is not None:
            self.cold_graph_.apply_offsets(scores, self._user_items[user_idx])
        if self.last_text_ is not None:  # products with interactions: cold ones rank by their own mix
            last = last_items(self._hist.indptr, self._hist.items, user_idx)
            term = self.last_text_.scores(self._unit_text_vectors(), last)
            if self._cold_cols is None:
                self._cold_cols = cold_columns(self._user_items)
            term[:, self._cold_cols] = 0.0
            scores += term
        return scores
