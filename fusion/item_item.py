"""Item-item memory: a sparse "goes with what you have" term added to the fused dot-product score.

A dot product of d-dimensional vectors (d = 64..128) blurs which exact products are bought together; a
closed-form item-item model remembers them. The fusion model's score becomes

    s(u, i) = <U_u, F_i> + gamma * sum_{j in H_u} W[j, i]          H_u: the user's distinct products

W [n_items, n_items] holds EASE weights (Steck, WWW 2019) fitted on the training interactions,

    P = (X^T X + reg I)^-1,   B_ji = -P_ji / P_ii (j != i),  B_ii = 0,

pruned to the `top_k` largest positive weights of each product's column, so that the term is sparse (top-k
retrieval stays exact: see `fusion.serving.query`), never negative, and W[j, i] reads as "having j speaks for i".
gamma = weight * std(<U, F>) / std(X W), measured on the model's own scores, so that `weight` (chosen on
validation with `reg`, see `choose_item_item`) is comparable across models and catalogs.

The head may also hold a next-item memory: T [n_items, n_items] from the time-ordered histories, T[j, i] =
c_ji / sqrt(c_j. c_.i) with c_ji how often i came right after j in a user's history, read from the user's most
recent product only: s(u, i) += next_gamma * T[last_u, i] ("bought right after X"). The network's order-aware
tower sees the order too, but through d-dimensional vectors; on amazon-scientific's validation users this sparse
memory added 0.1022 -> 0.1063 NDCG@10 on top of the item-item term. Its weight (0 competes) is chosen on
validation after (reg, weight), see `choose_next_item`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .metrics import ndcg_at_k, top_k as top_k_cols

__all__ = ["ItemItemHead", "check_item_item_size", "ease_weights", "prune_columns", "item_item_weights", "score_scale",
           "choose_item_item", "history_rows", "save_csr", "load_csr", "HEAD_FILE", "next_item_weights",
           "last_items", "last_rows", "choose_next_item", "choose_term_weight"]

HEAD_FILE = "item_item.npz"


def check_item_item_size(num_active: int, max_items: int | None) -> None:
    """ValueError when `num_active` products with interactions are more than the dense inverse may take."""
    if max_items is not None and num_active > max_items:
        raise ValueError(f"{num_active} products have interactions, more than item_item.max_items={max_items}: "
                         f"the item-item term needs a dense {num_active}^2 inverse; raise max_items or set "
                         f"item_item.enabled=false")


def ease_weights(user_items: sp.csr_matrix, reg: float, max_items: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """EASE closed form over the products with at least one interaction.

    Returns (active [a] column indices, B [a, a] float32 with zero diagonal); s_u = x_u[active] @ B.
    Raises ValueError when more than `max_items` (None: no limit) products have interactions: the closed
    form inverts a dense matrix of that size (20,000 products take 1.6 GB and about a minute here).
    """
    import torch  # the inverse is ~2x faster in torch (threads) than numpy here

    if reg <= 0:
        raise ValueError(f"reg must be > 0, got {reg}")
    x = user_items.tocsc()
    active = np.flatnonzero(np.diff(x.indptr) > 0)
    check_item_item_size(len(active), max_items)
    xa = x[:, active]
    g = torch.from_numpy((xa.T @ xa).toarray().astype(np.float32))  # float32: 2x faster, ample for ranking
    g.diagonal().add_(float(reg))
    p = torch.linalg.inv(g)
    b = -p / p.diagonal()[None, :]
    b.diagonal().zero_()
    return active, b.numpy()


def prune_columns(b: np.ndarray, top_k: int) -> sp.csr_matrix:
    """Keep the `top_k` largest positive entries of each column of a dense [a, a] matrix -> CSR."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    pos = np.where(b > 0, b, 0).astype(np.float32)
    if top_k < pos.shape[0]:
        # k-th largest of each column (ties at the threshold may keep a few more)
        thr = -np.partition(-pos, top_k - 1, axis=0)[top_k - 1]
        pos[pos < thr[None, :]] = 0
    out = sp.csr_matrix(pos)
    out.eliminate_zeros()
    return out


def item_item_weights(user_items: sp.csr_matrix, reg: float, top_k: int, max_items: int) -> sp.csr_matrix:
    """W [n_items, n_items] CSR (rows: products a user has, columns: products scored) from the training
    interactions; products without interactions have empty rows and columns. ValueError above `max_items`
    products with interactions (see `ease_weights`).
    """
    n = user_items.shape[1]
    active, b = ease_weights(user_items, reg, max_items)
    w = prune_columns(b, top_k).tocoo()
    return sp.csr_matrix((w.data, (active[w.row], active[w.col])), shape=(n, n), dtype=np.float32)


def score_scale(model_scores: np.ndarray, item_item_scores: np.ndarray) -> float:
    """std(model scores) / std(item-item scores) over the same users x products (0 when the latter is flat)."""
    s = float(np.std(item_item_scores))
    return float(np.std(model_scores)) / s if s > 0 else 0.0


@dataclass
class ItemItemHead:
    """The fitted term: `gamma * (x_u @ weights) + next_gamma * (e_last @ next_weights)`.

    Attributes:
        weights: CSR [n_items, n_items] (see `item_item_weights`; empty when only the next-item memory won).
        gamma: scale of the term in the score.
        reg, weight: the EASE L2 and the relative weight it was built with (for the record).
        next_weights: CSR [n_items, n_items] T of the next-item memory (see `next_item_weights`), or None.
        next_gamma, next_weight: its scale in the score and the relative weight chosen on validation.
    """

    weights: sp.csr_matrix
    gamma: float
    reg: float
    weight: float
    next_weights: sp.csr_matrix | None = None
    next_gamma: float = 0.0
    next_weight: float = 0.0

    @property
    def num_items(self) -> int:
        return self.weights.shape[0]

    @property
    def uses_last(self) -> bool:
        """True when the score reads the user's most recent product (the next-item memory is on)."""
        return self.next_weights is not None and self.next_gamma != 0

    def with_weights(self, weights: sp.csr_matrix, gamma: float) -> "ItemItemHead":
        """This head with another item-item matrix and scale (the next-item memory kept)."""
        return replace(self, weights=weights, gamma=gamma)

    def scores(self, user_items: sp.csr_matrix, last: np.ndarray | None = None) -> np.ndarray:
        """float32 [B, n_items] = gamma * X W (+ next_gamma * T[last]) for binary user rows X [B, n_items] and
        each user's most recent product column `last` [B] (-1: none)."""
        return self._times(user_items, last).toarray()

    def lift(self, histories: Sequence[np.ndarray], last: np.ndarray | None = None) -> sp.csr_matrix:
        """CSR [B, n_items]: the term for each user's distinct product columns and most recent product `last`
        [B] (-1: none; columns beyond the head, products added after training, are ignored); its stored entries
        are the products the term lifts."""
        return self._times(history_rows(histories, self.num_items), last)

    def _times(self, x: sp.csr_matrix, last: np.ndarray | None = None) -> sp.csr_matrix:
        """gamma * x W (+ next_gamma * T[last]) as float32 CSR without stored zeros."""
        out = (x @ self.weights).tocsr().astype(np.float32)
        out.data *= np.float32(self.gamma)
        if self.uses_last and last is not None:
            t = (last_rows(last, self.num_items) @ self.next_weights).tocsr().astype(np.float32)
            t.data *= np.float32(self.next_gamma)
            out = (out + t).tocsr()
        out.eliminate_zeros()
        return out

    def save(self, directory: str | Path) -> Path:
        nxt = {}
        if self.next_weights is not None:
            t = sp.csr_matrix(self.next_weights)
            nxt = {"next_data": t.data, "next_indices": t.indices, "next_indptr": t.indptr,
                   "next_gamma": self.next_gamma, "next_weight": self.next_weight}
        return save_csr(Path(directory) / HEAD_FILE, self.weights, gamma=self.gamma, reg=self.reg,
                        weight=self.weight, **nxt)

    @classmethod
    def load(cls, directory: str | Path) -> "ItemItemHead | None":
        """The head saved in `directory`, or None when there is none (a model without the term)."""
        path = Path(directory) / HEAD_FILE
        if not path.exists():
            return None
        w, z = load_csr(path)
        head = cls(w, float(z["gamma"]), float(z["reg"]), float(z["weight"]))
        if "next_data" in z:  # heads saved before the next-item memory have none
            t = sp.csr_matrix((z["next_data"], z["next_indices"], z["next_indptr"]), shape=w.shape)
            head = replace(head, next_weights=t, next_gamma=float(z["next_gamma"]),
                           next_weight=float(z["next_weight"]))
        return head


def next_item_weights(indptr: np.ndarray, items: np.ndarray, num_items: int) -> sp.csr_matrix:
    """T [num_items, num_items] float32 CSR of the next-item memory from time-ordered histories (CSR-style:
    user u's product columns are items[indptr[u]:indptr[u+1]], oldest first): T[j, i] = c_ji / sqrt(c_j. c_.i),
    c_ji the times i came right after j (j != i). Symmetric normalisation beat row-normalised and raw counts
    on amazon-scientific's validation users (0.1063 vs 0.1049 / 0.1063 at a narrower weight range)."""
    items = np.asarray(items, dtype=np.int64)
    nxt = np.ones(len(items), dtype=bool)
    nxt[np.asarray(indptr[1:], dtype=np.int64) - 1] = False  # a user's last item has no successor
    nxt[-1:] = False
    src = np.flatnonzero(nxt)
    a, b = items[src], items[src + 1]
    keep = (a != b) & (a < num_items) & (b < num_items)
    c = sp.coo_matrix((np.ones(int(keep.sum()), np.float64), (a[keep], b[keep])), shape=(num_items, num_items)).tocsr()
    out_deg, in_deg = np.asarray(c.sum(1)).ravel(), np.asarray(c.sum(0)).ravel()
    inv = lambda d: np.where(d > 0, 1 / np.sqrt(np.maximum(d, 1e-12)), 0.0)  # noqa: E731
    t = sp.diags(inv(out_deg)) @ c @ sp.diags(inv(in_deg))
    return sp.csr_matrix(t, dtype=np.float32)


def last_items(indptr: np.ndarray, items: np.ndarray, users: np.ndarray) -> np.ndarray:
    """int64 [B]: each user's most recent product column from time-ordered histories (-1: no history)."""
    users = np.asarray(users, dtype=np.int64)
    end = np.asarray(indptr, dtype=np.int64)[users + 1]
    has = end > np.asarray(indptr, dtype=np.int64)[users]
    return np.where(has, np.asarray(items, dtype=np.int64)[np.maximum(end - 1, 0)] if len(items) else -1, -1)


def last_rows(last: np.ndarray, num_items: int) -> sp.csr_matrix:
    """One-hot CSR [B, num_items] of `last` (rows of -1, or columns >= num_items, stay empty)."""
    last = np.asarray(last, dtype=np.int64)
    ok = (last >= 0) & (last < num_items)
    indptr = np.concatenate([[0], np.cumsum(ok)])
    return sp.csr_matrix((np.ones(int(ok.sum()), np.float32), last[ok], indptr), shape=(len(last), num_items))


def choose_next_item(scores: np.ndarray, next_scores: np.ndarray, scale_of: np.ndarray, seen: sp.csr_matrix,
                     rel: sp.csr_matrix, weights: Sequence[float], log: Callable[[str], None] | None = None
                     ) -> tuple[float, float, list[dict]]:
    """The next-item memory's weight by validation NDCG@10 of scores + weight * scale * next_scores (0 competes).

    Args:
        scores: float32 [B, n_items] validation scores with the chosen item-item term.
        next_scores: float32 [B, n_items] T[last_u] of each validation user.
        scale_of: the network's own scores [B, n_items]: scale = std(them) / std(next_scores).
        seen, rel: the users' training rows (masked) and validation items.
    Returns (weight, scale, rows of {"next_weight", "valid_ndcg@10"}).
    """
    return choose_term_weight(scores, next_scores, scale_of, seen, rel, weights, "next_weight", "next-item", log)


def choose_term_weight(scores: np.ndarray, term: np.ndarray, scale_of: np.ndarray, seen: sp.csr_matrix,
                       rel: sp.csr_matrix, weights: Sequence[float], key: str, label: str,
                       log: Callable[[str], None] | None = None) -> tuple[float, float, list[dict]]:
    """The weight of a term added on top of `scores` by validation NDCG@10 of scores + weight * scale * term, with
    scale = std(scale_of) / std(term) and weight 0 always competing (the first of equals wins); rows are
    {key: weight, "valid_ndcg@10"}. Serves the next-item memory and `fusion.last_text`."""
    k = min(10, scores.shape[1])
    scale = score_scale(scale_of, term)

    def ndcg(s: np.ndarray) -> float:
        return ndcg_at_k(top_k_cols(s, k, seen), rel, k)

    rows = [{key: 0.0, "valid_ndcg@10": ndcg(scores)}]
    best = rows[0]
    for wt in weights if scale > 0 else ():
        rows.append({key: float(wt), "valid_ndcg@10": ndcg(scores + np.float32(wt * scale) * term)})
        if rows[-1]["valid_ndcg@10"] > best["valid_ndcg@10"]:
            best = rows[-1]
        if log:
            log(f"    {label} weight={wt:g}: valid NDCG@10 {rows[-1]['valid_ndcg@10']:.4f} "
                f"(without {rows[0]['valid_ndcg@10']:.4f})")
    return best[key], scale, rows


def history_rows(histories: Sequence[np.ndarray], num_items: int) -> sp.csr_matrix:
    """Binary CSR [B, num_items] of each user's distinct product columns; columns >= num_items (products added
    after a term was fitted) are dropped."""
    kept = [np.asarray(c, dtype=np.int64) for c in histories]
    kept = [c[c < num_items] for c in kept]
    indptr = np.concatenate([[0], np.cumsum([len(c) for c in kept])])
    indices = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(kept), num_items))


def save_csr(path: Path, matrix: sp.spmatrix, **values) -> Path:
    """`matrix` as CSR arrays plus named `values` in one compressed .npz at `path` (see `load_csr`)."""
    w = sp.csr_matrix(matrix)
    np.savez_compressed(path, data=w.data, indices=w.indices, indptr=w.indptr, shape=np.array(w.shape), **values)
    return path


def load_csr(path: Path) -> tuple[sp.csr_matrix, dict]:
    """(the CSR matrix, the other arrays by name) of a file written by `save_csr`."""
    z = np.load(path)
    w = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(int(s) for s in z["shape"]))
    return w, {k: z[k] for k in z.files if k not in ("data", "indices", "indptr", "shape")}


def choose_item_item(model_scores: np.ndarray, user_items: sp.csr_matrix, users: np.ndarray,
                     valid: sp.csr_matrix, regs: Sequence[float], weights: Sequence[float], top_k: int,
                     max_items: int, log: Callable[[str], None] | None = None, fitted: dict | None = None
                     ) -> tuple[float, float, list[dict]]:
    """Pick (reg, weight) by validation NDCG@10 of model_scores + gamma * X W; weight 0 (no term) competes.

    Args:
        model_scores: float32 [len(users), n_items] the model's own scores of the validation `users`.
        user_items: training interactions [num_users, n_items] (W is fitted on them, and they are masked).
        valid: validation items [num_users, n_items].
        fitted: when given, receives "weights", the W of the chosen reg (None when the term lost), so that a
            caller that scores the same users again need not refit it, and "scores", model_scores plus the
            chosen term (the next-item memory is chosen on top of them).
    Returns (reg, weight, rows of {"reg", "weight", "valid_ndcg@10"}).
    """
    seen, rel = user_items[users], valid[users]
    k = min(10, model_scores.shape[1])

    def ndcg(scores: np.ndarray) -> float:
        return ndcg_at_k(top_k_cols(scores, k, seen), rel, k)

    base = ndcg(model_scores)
    rows = [{"reg": 0.0, "weight": 0.0, "valid_ndcg@10": base}]
    best, best_w, best_s = rows[0], None, model_scores
    for reg in regs:
        w = item_item_weights(user_items, reg, top_k, max_items)
        e = (seen @ w).toarray().astype(np.float32)
        scale = score_scale(model_scores, e)
        for wt in weights:
            s = model_scores + np.float32(wt * scale) * e
            rows.append({"reg": float(reg), "weight": float(wt), "valid_ndcg@10": ndcg(s)})
            if rows[-1]["valid_ndcg@10"] > best["valid_ndcg@10"]:  # the first of equals, as max() picks
                best, best_w, best_s = rows[-1], w, s
            if log:
                log(f"    item-item reg={reg:g} weight={wt:g}: valid NDCG@10 {rows[-1]['valid_ndcg@10']:.4f} "
                    f"(model alone {base:.4f})")
    if fitted is not None:
        fitted["weights"], fitted["scores"] = best_w, best_s
    return best["reg"], best["weight"], rows
