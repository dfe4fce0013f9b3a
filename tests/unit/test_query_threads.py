"""fusion.Recommender under concurrent use: queries from many threads while products are being added."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from fusion import Recommender
from fusion.serving.results import RESULT_COLUMNS
from query_fixtures import HashEncoder, trained_model


class ExclusiveEncoder(HashEncoder):
    """Fails when two threads are inside it at once (the real encoder's tokenizer is not thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self._busy = threading.Lock()

    def _guard(self, fn, arg):
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("two threads inside the text encoder at once")
        try:
            threading.Event().wait(0.0005)  # widen the window a concurrent call would hit
            return fn(arg)
        finally:
            self._busy.release()

    def encode_texts(self, texts):
        return self._guard(super().encode_texts, texts)

    def encode_query(self, query):
        return self._guard(super().encode_query, query)


@pytest.mark.parametrize("index", ["exact", "faiss"])
def test_queries_from_many_threads_while_adding_products(index):
    if index == "faiss":
        pytest.importorskip("faiss")
    rec = Recommender.load(trained_model()[0], index=index, text_encoder=ExclusiveEncoder())
    users = ["a1", "a3", "b2", "b7", "x"]
    stop = threading.Event()
    known = set(rec.product_ids)

    def reader(i: int) -> int:
        calls = 0
        while not stop.is_set() or calls < 5:
            u = users[(i + calls) % len(users)]
            out = rec.recommend(u, k=5, categories="Tools" if calls % 2 else None)
            assert tuple(out.columns) == RESULT_COLUMNS and out["rank"].tolist() == list(range(1, len(out) + 1))
            assert out["score"].is_monotonic_decreasing
            found = rec.search(f"steel hammer {i} {calls}", k=5, user_id=u)
            assert len(found) == 5
            sim = rec.similar("B3", k=5)
            assert "B3" not in set(sim["product_id"]) and len(sim) == 5
            batch = rec.recommend_batch(users, k=3)
            assert len(batch) == 3 * len(users)
            ids = set(out["product_id"]) | set(found["product_id"]) | set(sim["product_id"])
            assert ids <= known | {f"N{j}" for j in range(30)}
            calls += 1
        return calls

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(reader, i) for i in range(6)]
        try:
            for j in range(30):
                rec.add_products(pd.DataFrame([{"product_id": f"N{j}", "title": f"Steel hammer model {j}",
                                                "brand": "Bolt", "categories": "Tools > Hammers"}]))
        finally:
            stop.set()
        calls = [f.result() for f in futures]  # re-raises any reader's assertion or error
    assert min(calls) >= 5
    assert rec.product_ids[-30:] == [f"N{j}" for j in range(30)]
    assert rec.product_vectors.shape[0] == 51
    assert "N29" in set(rec.search("steel hammer model 29", k=3)["product_id"])
    assert "N0" in set(rec.recommend("b1", k=51, brands="Bolt")["product_id"])
