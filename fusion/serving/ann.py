"""Approximate maximum-inner-product search with faiss, for catalogs of millions of products.

`FaissIndex` answers exactly what `fusion.serving.topk.ExactIndex` answers (`size`, `search`, `add`; see
`fusion.serving.topk.TopKIndex`), approximately: the best k columns by inner product <query, product>, best first,
padded with (-inf, -1). Filters stay exact: `exclude` (per query row) and `allowed` (a bool mask over
columns) are applied to an over-fetched candidate list (k + the longest exclude list, scaled up by
n / |allowed|), which grows 4x until k candidates survive; a row that still lacks them, or an `allowed`
mask of at most `exact_below` columns, is answered exactly over the qualifying columns. So a filtered search
never returns an excluded or disallowed column and returns k columns whenever k qualify.

Structures (`ANNConfig.kind`), chosen by measurement on 1,000,000 realistic 128-d vectors (real Scientific
product vectors plus neighbourhood-scaled noise, real user vectors as queries; `scripts/bench_query.py`):

- `ivf_flat` (default): `IndexIVFFlat` (inverted lists around `nlist` k-means centroids, `nprobe` lists
  scanned per query) over vectors augmented to make inner product a Euclidean distance (Bachrach et al.,
  2014): x -> [x, sqrt(M^2 - |x|^2)], q -> [q, 0], so |q' - x'|^2 = |q|^2 + M^2 - 2<q, x> with M the largest
  norm at build time (times 1.05). Lists built this way are far better MIPS candidates than lists built with
  the inner-product metric on the raw vectors. Candidates are re-scored exactly (raw vectors read back
  through a direct map). Measured (docs/benchmarks.md, "Query latency"): nlist 4000, nprobe 32: recall@10 0.994,
  0.77 ms p99 per single query, 19 s build on 2 idle cores. Vectors added later with a norm above M cannot be placed on that sphere: they are
  stored by direction (scaled to norm M) and also kept in a small overflow list that every query scores
  exactly, so they are never missed; rebuild the index when that list grows large (`num_overflow`).
- `hnsw`: `IndexHNSWFlat` with `METRIC_INNER_PRODUCT`, a graph over the raw vectors (scores are exact inner
  products). On the same data it is worse for MIPS: m 32, ef_search 512 reaches recall@10 0.85 only
  (174 s build); on the augmented vectors it does worse still.
- `flat`: `IndexFlatIP`, exhaustive (a reference; `ExactIndex` does the same with numpy).

faiss is imported on first use: `pip install faiss-cpu` (or the project's `ann` extra).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from .topk import TopKIndex, select_top_k

__all__ = ["ANNConfig", "FaissIndex", "recall_at_k"]

KINDS = ("hnsw", "ivf_flat", "flat")
_NORM_HEADROOM = 1.05  # ivf_flat: M = 1.05 * the largest norm at build time, so that small drift still fits


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as e:  # pragma: no cover - message pinned by tests through a patched import
        raise ImportError("FaissIndex needs faiss, which is not installed: pip install faiss-cpu "
                          "(or pip install -e '.[ann]' in this repository)") from e
    return faiss


@dataclass
class ANNConfig:
    """Settings of a `FaissIndex`.

    Args:
        kind: `ivf_flat` (default), `hnsw` or `flat`.
        m: HNSW neighbours per node (32; memory grows by about 8*m bytes per product).
        ef_construction: HNSW candidate-list size while building (100; higher = better graph, slower build).
        ef_search: HNSW candidate-list size per query (64; raised to the number of columns fetched).
        nlist: IVF lists; None = 4 * sqrt(n), at most n / 39 (faiss wants 39 training points per list).
        nprobe: IVF lists scanned per query (32; raise it for recall, each list costs about n / nlist dot
            products).
        train_size: IVF: at most this many vectors (seeded sample) train the coarse quantizer.
        exact_below: an `allowed` mask of at most this many columns is searched exactly (no graph walk).
        max_fetch: over-fetching grows up to this many columns per query before the exact fallback.
        threads: faiss OpenMP threads (`faiss.omp_set_num_threads`, process-wide); None keeps faiss's default.
            faiss parallelises over the queries of a batch, so a single query runs on one thread anyway.
        seed: seed of the IVF training sample and k-means.
    """

    kind: str = "ivf_flat"
    m: int = 32
    ef_construction: int = 100
    ef_search: int = 64
    nlist: int | None = None
    nprobe: int = 32
    train_size: int = 200_000
    exact_below: int = 20_000
    max_fetch: int = 4096
    threads: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"ANNConfig.kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("m", "ef_construction", "ef_search", "nprobe", "train_size", "max_fetch"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ANNConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if self.nlist is not None and self.nlist < 1:
            raise ValueError(f"ANNConfig.nlist must be >= 1 or None, got {self.nlist!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"ANNConfig.threads must be >= 1 or None, got {self.threads!r}")
        if self.exact_below < 0:
            raise ValueError(f"ANNConfig.exact_below must be >= 0, got {self.exact_below!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class FaissIndex:
    """Approximate maximum-inner-product top-k over product vectors (the `TopKIndex` interface).

    Args:
        vectors: float32 [n, d] product vectors (not normalised: the score is the plain inner product).
        config: `ANNConfig()` defaults (IVF-Flat on augmented vectors, nlist 4 sqrt(n), nprobe 32).
    """

    def __init__(self, vectors: np.ndarray, config: ANNConfig | None = None) -> None:
        self.config = config or ANNConfig()
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        if v.ndim != 2:
            raise ValueError(f"vectors must be 2-D [n, d], got shape {v.shape}")
        faiss = _faiss()
        if self.config.threads is not None:
            faiss.omp_set_num_threads(int(self.config.threads))
        self._faiss = faiss
        self._d = v.shape[1]
        self._max_norm = 0.0  # ivf_flat: M of the augmentation
        self._over_cols = np.zeros(0, np.int64)  # ivf_flat: columns added with a norm above M (scored exactly)
        self._over_vecs = np.zeros((0, v.shape[1]), np.float32)
        self.index = self._build(v)

    # --- building --------------------------------------------------------------------------------
    def _build(self, v: np.ndarray) -> Any:
        faiss, cfg, d = self._faiss, self.config, self._d
        if cfg.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, int(cfg.m), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(cfg.ef_construction)
            index.hnsw.efSearch = int(cfg.ef_search)
        elif cfg.kind == "flat":
            index = faiss.IndexFlatIP(d)
        else:
            if len(v) == 0:
                raise ValueError("an ivf_flat index trains its lists on the vectors it is built with: got 0 vectors")
            nlist = cfg.nlist or int(round(4 * math.sqrt(len(v))))
            nlist = max(1, min(nlist, len(v) // 39 or 1))
            self._max_norm = float(np.sqrt((v.astype(np.float64) ** 2).sum(1).max())) * _NORM_HEADROOM
            quantizer = faiss.IndexFlatL2(d + 1)
            index = faiss.IndexIVFFlat(quantizer, d + 1, nlist, faiss.METRIC_L2)
            index.cp.seed = int(cfg.seed)
            rows = np.arange(len(v))
            if len(v) > cfg.train_size:
                rows = np.sort(np.random.default_rng(cfg.seed).choice(len(v), cfg.train_size, replace=False))
            index.train(self._augment(v[rows]))
            index.nprobe = min(int(cfg.nprobe), nlist)
            index.make_direct_map()  # raw vectors by column, for exact re-scoring
            self._quantizer = quantizer  # the IVF index does not own it: keep it alive
            index.add(self._augment(v))
            return index
        if len(v):
            index.add(v)
        return index

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return self._d

    @property
    def vectors(self) -> np.ndarray:
        """float32 [n, d] raw vectors: a view into faiss's storage for `hnsw` and `flat` (do not modify),
        a copy read back from the inverted lists for `ivf_flat`."""
        n = self.size
        if n == 0:
            return np.zeros((0, self._d), np.float32)
        if self.config.kind == "ivf_flat":
            out = np.ascontiguousarray(self.index.reconstruct_n(0, n)[:, : self._d])
            out[self._over_cols] = self._over_vecs  # stored scaled: the originals are kept aside
            return out
        flat = self._faiss.downcast_index(self.index.storage if self.config.kind == "hnsw" else self.index)
        return self._faiss.rev_swig_ptr(flat.get_xb(), n * self._d).reshape(n, self._d)

    def _rows(self, cols: np.ndarray) -> np.ndarray:
        """Raw vectors [len(cols), d] of the given columns."""
        if self.config.kind != "ivf_flat":
            return self.vectors[cols]
        cols = np.ascontiguousarray(cols, dtype=np.int64)
        if not len(cols):
            return np.zeros((0, self._d), np.float32)
        out = np.ascontiguousarray(self.index.reconstruct_batch(cols)[:, : self._d])
        if len(self._over_cols):
            pos = np.searchsorted(self._over_cols, cols).clip(max=len(self._over_cols) - 1)
            hit = self._over_cols[pos] == cols
            out[hit] = self._over_vecs[pos[hit]]
        return out

    @property
    def num_overflow(self) -> int:
        """ivf_flat: columns added after the build with a norm above the build's M (scored exactly per query)."""
        return len(self._over_cols)

    def _augment(self, v: np.ndarray) -> np.ndarray:
        """[x, sqrt(M^2 - |x|^2)]; a vector longer than M is scaled to norm M first (its direction kept)."""
        norm2 = (v.astype(np.float64) ** 2).sum(1)
        scale = np.where(norm2 > self._max_norm ** 2, self._max_norm / np.sqrt(np.maximum(norm2, 1e-300)), 1.0)
        extra = np.sqrt(np.maximum(self._max_norm ** 2 - norm2 * scale ** 2, 0.0))
        return np.ascontiguousarray(np.hstack([v * scale[:, None], extra[:, None]]).astype(np.float32))

    def add(self, vectors: np.ndarray) -> None:
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != self._d:
            raise ValueError(f"vectors to add must be [m, {self._d}], got shape {v.shape}")
        if not len(v):
            return
        if self.config.kind == "ivf_flat":
            over = np.flatnonzero((v.astype(np.float64) ** 2).sum(1) > self._max_norm ** 2)
            if len(over):
                self._over_cols = np.concatenate([self._over_cols, self.size + over])
                self._over_vecs = np.concatenate([self._over_vecs, v[over]])
            v = self._augment(v)
        self.index.add(v)

    # --- searching -------------------------------------------------------------------------------
    def _raw_search(self, q: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """faiss candidates (scores [B, fetch] inner products, columns [B, fetch], -1 where none)."""
        faiss, cfg = self._faiss, self.config
        if cfg.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(int(cfg.ef_search), fetch))
            return self.index.search(q, fetch, params=params)
        if cfg.kind == "flat":
            return self.index.search(q, fetch)
        params = faiss.SearchParametersIVF(nprobe=min(int(cfg.nprobe), int(self.index.nlist)))
        _, cols = self.index.search(np.hstack([q, np.zeros((len(q), 1), np.float32)]), fetch, params=params)
        scores = np.full(cols.shape, -np.inf, np.float32)
        ok = cols >= 0
        rows = np.nonzero(ok)[0]
        scores[ok] = np.einsum("ij,ij->i", self._rows(cols[ok]), q[rows])  # exact re-scoring
        if len(self._over_cols):  # every overflow column is a candidate, scored exactly, listed once
            dup = np.isin(cols, self._over_cols)
            cols[dup], scores[dup] = -1, -np.inf
            cols = np.hstack([cols, np.broadcast_to(self._over_cols, (len(q), len(self._over_cols)))])
            scores = np.hstack([scores, q @ self._over_vecs.T])
        return scores, cols

    def search(self, queries: np.ndarray, k: int, exclude: Sequence[np.ndarray] | None = None,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self._d:
            raise ValueError(f"queries must have {self._d} columns, got {q.shape[-1]}")
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        b, n = q.shape[0], self.size
        out_s = np.full((b, k), -np.inf, np.float32)
        out_c = np.full((b, k), -1, np.int64)
        if exclude is not None and len(exclude) != b:
            raise ValueError(f"exclude must have one entry per query ({b}), got {len(exclude)}")
        ex = [np.unique(np.asarray(e if e is not None else (), dtype=np.int64)) for e in exclude] \
            if exclude is not None else [np.zeros(0, np.int64)] * b
        mask = None
        if allowed is not None:
            mask = np.asarray(allowed, dtype=bool)
            if mask.ndim != 1 or len(mask) < n:
                raise ValueError(f"allowed must be a bool mask over the {n} columns, got shape {mask.shape}")
            mask = mask[:n]
        if k == 0 or b == 0 or n == 0:
            return out_s, out_c
        n_ok = n if mask is None else int(mask.sum())
        if n_ok == 0:
            return out_s, out_c
        if mask is not None and n_ok <= self.config.exact_below:
            self._exact_rows(q, k, ex, mask, np.arange(b), out_s, out_c)
            return out_s, out_c
        longest = max((len(e) for e in ex), default=0)
        fetch = min(n, int(math.ceil((k + longest) * n / n_ok * (1.0 if mask is None else 1.5))))
        cap = min(n, self.config.max_fetch)
        rows = np.arange(b)
        while len(rows) and fetch <= cap:
            scores, cols = self._raw_search(q[rows], fetch)
            short = []
            for i, r in enumerate(rows):
                c, s = cols[i], scores[i]
                keep = c >= 0
                everything = int(keep.sum()) >= n  # the whole catalog came back: nothing more can qualify
                if mask is not None:
                    keep &= mask[np.where(keep, c, 0)]
                if len(ex[r]):
                    keep &= ~np.isin(c, ex[r])
                c, s = c[keep], s[keep]
                if len(c) < k and not everything:  # more may qualify: fetch more (or answer exactly)
                    short.append(r)
                    continue
                order = np.lexsort((c, -s))[:k]
                out_s[r, :len(order)], out_c[r, :len(order)] = s[order], c[order]
            rows = np.asarray(short, dtype=np.int64)
            if fetch == cap:
                break
            fetch = min(cap, fetch * 4)
        if len(rows):
            self._exact_rows(q, k, ex, mask, rows, out_s, out_c)
        return out_s, out_c

    def _exact_rows(self, q: np.ndarray, k: int, ex: list[np.ndarray], mask: np.ndarray | None, rows: np.ndarray,
                    out_s: np.ndarray, out_c: np.ndarray) -> None:
        """Exact answer for `rows`, scoring only the qualifying columns."""
        n = self.size
        cand = np.flatnonzero(mask) if mask is not None else None
        sub = self._rows(cand) if cand is not None else self.vectors
        scores = q[rows] @ sub.T
        for i, r in enumerate(rows):
            if len(ex[r]):
                if cand is None:
                    bad = ex[r][(ex[r] >= 0) & (ex[r] < n)]
                else:
                    bad = np.flatnonzero(np.isin(cand, ex[r]))
                scores[i, bad] = -np.inf
        s, c = select_top_k(scores, k)
        if cand is not None:
            c = np.where(c >= 0, cand[np.maximum(c, 0)], -1)
        out_s[rows], out_c[rows] = s, c

    def __repr__(self) -> str:
        cfg = self.config
        detail = {"hnsw": f"m={cfg.m}, ef_search={cfg.ef_search}",
                  "ivf_flat": f"nlist={getattr(self.index, 'nlist', cfg.nlist)}, nprobe={cfg.nprobe}",
                  "flat": ""}[cfg.kind]
        return f"{type(self).__name__}(kind={cfg.kind!r}, size={self.size}, dim={self._d}{', ' + detail if detail else ''})"


def recall_at_k(approx: TopKIndex, exact: TopKIndex, queries: np.ndarray, k: int,
                exclude: Sequence[np.ndarray] | None = None, allowed: np.ndarray | None = None) -> float:
    """Mean over queries of |approximate top k ∩ exact top k| / |exact top k| (rows with no exact result skipped)."""
    _, a = approx.search(queries, k, exclude=exclude, allowed=allowed)
    _, e = exact.search(queries, k, exclude=exclude, allowed=allowed)
    per_row = []
    for ar, er in zip(a, e):
        truth = set(er[er >= 0].tolist())
        if truth:
            per_row.append(len(truth & set(ar[ar >= 0].tolist())) / len(truth))
    return float(np.mean(per_row)) if per_row else 1.0
