"""fusion.Recommender, the query API, on a tiny model trained once per session (see query_fixtures)."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch

from fusion import Explanation, Recommender, UnknownIdError, UnknownUserWarning
from fusion.serving.catalog import ProductInputError
from fusion.serving.results import RESULT_COLUMNS
from query_fixtures import HashEncoder, trained_model


@pytest.fixture(scope="module")
def paths():
    return trained_model()


@pytest.fixture
def rec(paths):
    """A fresh recommender per test (add_products changes it)."""
    return Recommender.load(paths[0], text_encoder=HashEncoder())


@pytest.fixture(scope="module")
def shared_rec(paths):
    """One recommender for the read-only tests."""
    return Recommender.load(paths[0], text_encoder=HashEncoder())


def _cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# --- loading and what it precomputes -------------------------------------------------------------------
def test_load_binds_whole_store_and_exposes_vectors(shared_rec, paths):
    rec = shared_rec
    assert len(rec.product_ids) == 21 and rec.product_ids[:2] == ["A0", "A1"]
    v = rec.product_vectors
    assert v.shape == (21, 16) and v.dtype == np.float32 and not v.flags.writeable
    digest = hashlib.sha256((paths[0] / "model.pt").read_bytes())
    digest.update((paths[0] / "item_item.npz").read_bytes())
    assert rec.model_version == digest.hexdigest()[:12]
    assert rec.user_vectors(["a1", "b2"]).shape == (2, 16)
    assert "products=21" in repr(rec) and rec.num_users == 21
    assert not rec.model.training


def test_scores_are_the_models_scores(shared_rec, paths):
    """recommend(exclude_seen=False) ranks exactly like FusionRecommender.score on the same graph."""
    from fusion import FusionRecommender
    from fusion.data import TrainData
    from kg import EmbeddedStore

    graph = EmbeddedStore(paths[1]).load()
    data = TrainData.from_graph(graph)
    fr = FusionRecommender.load(paths[0], data)
    u = graph.id_map("User").index("a3")
    expected = fr.score(np.array([u]))[0]
    out = shared_rec.recommend("a3", k=21, exclude_seen=False)
    ids = graph.nodes["Product"]["id"].to_numpy()[data.items]
    np.testing.assert_allclose(out["score"].to_numpy(), np.sort(expected)[::-1], rtol=1e-4, atol=1e-4)
    assert out["product_id"].iloc[0] == ids[np.argmax(expected)]


@pytest.mark.parametrize("index", ["exact", "faiss"])
def test_item_item_term_joins_the_ranking_exactly(paths, index, tmp_path):
    """With the term, the top k with filters and exclusions is the brute-force top k of U.F + gamma X W."""
    pytest.importorskip("faiss") if index == "faiss" else None
    import shutil

    import scipy.sparse as sp

    from fusion import ItemItemHead

    trained = Recommender.load(paths[0], text_encoder=HashEncoder()).item_item
    assert trained is not None and trained.gamma > 0 and trained.weights.nnz > 0
    # on this tiny catalog the trained term never changes a top 6: a strong random one must. It goes in
    # through the public path: a copy of the model directory with that term saved in it.
    n = trained.num_items
    w = sp.random(n, n, density=0.3, format="csr", dtype=np.float32, random_state=np.random.default_rng(0))
    model_dir = shutil.copytree(paths[0], tmp_path / "model")
    ItemItemHead(w, gamma=3.0, reg=1.0, weight=1.0).save(model_dir)
    r = Recommender.load(model_dir, text_encoder=HashEncoder(), index=index)
    head = r.item_item
    assert head.gamma == 3.0 and (head.weights != w).nnz == 0
    ids = np.array(r.product_ids)
    column = {p: j for j, p in enumerate(ids)}
    changed = 0
    for user, brands in (("a3", None), ("x", ["Bolt"]), ("b1", None)):
        seen = np.array([column[p] for p in r.history(user)["product_id"]], dtype=np.int64)
        dot = r.product_vectors @ r.user_vectors([user])[0]
        lifted = head.lift([seen])
        cols, vals = lifted.indices, lifted.data
        full = dot.copy()
        full[cols] += vals
        ok = np.ones(len(ids), dtype=bool)
        ok[seen] = False
        if brands:
            ok &= np.isin(ids, [f"B{k}" for k in range(10)])
        order = np.flatnonzero(ok)[np.argsort(-full[ok], kind="stable")][:6]
        dot_only = np.flatnonzero(ok)[np.argsort(-dot[ok], kind="stable")][:6]
        changed += list(order) != list(dot_only)
        out = r.recommend(user, k=6, brands=brands)
        np.testing.assert_allclose(out["score"].to_numpy(), full[order], rtol=1e-4, atol=1e-5)
        batch = r.recommend_batch([user], k=6, brands=brands)
        assert batch["product_id"].tolist() == out["product_id"].tolist()
    assert changed
    users = ["a3", "x", "b1", "a1", "b2"]
    together = r.recommend_batch(users, k=6)
    for u in users:
        assert together[together["user_id"] == u]["product_id"].tolist() == r.recommend(u, k=6)["product_id"].tolist()
    # a new user's chosen products lift their companions the same way
    new = r.recommend_new_user(["B0", "B1"], k=21)
    cols = head.lift([np.array([column["B0"], column["B1"]])]).indices
    assert set(ids[cols]) - {"B0", "B1"} <= set(new["product_id"])


@pytest.mark.parametrize("index", ["exact", "faiss"])
def test_next_item_memory_follows_the_users_latest_product(paths, index, tmp_path):
    """With the next-item memory, the served top k is the brute-force top k of U.F + gamma X W + g T[last], the
    evaluated model's scores are the served ones, and a recorded event moves `last` to the new product."""
    pytest.importorskip("faiss") if index == "faiss" else None
    import shutil

    import scipy.sparse as sp

    from fusion import FusionRecommender, ItemItemHead
    from fusion.data import TrainData
    from kg import EmbeddedStore

    trained = Recommender.load(paths[0], text_encoder=HashEncoder()).item_item
    n = trained.num_items
    rng = np.random.default_rng(3)
    t = sp.random(n, n, density=0.3, format="csr", dtype=np.float32, random_state=rng)
    model_dir = shutil.copytree(paths[0], tmp_path / "model")
    ItemItemHead(trained.weights, trained.gamma, trained.reg, trained.weight, next_weights=t, next_gamma=5.0,
                 next_weight=0.05).save(model_dir)
    # event_log=None: record() below must not write to the shared store that other tests read
    r = Recommender.load(model_dir, text_encoder=HashEncoder(), index=index, event_log=None)
    assert r.item_item.uses_last
    ids = np.array(r.product_ids)
    column = {p: j for j, p in enumerate(ids)}

    def brute(user):
        hist = [column[p] for p in r.history(user)["product_id"]]
        seen = np.unique(hist)
        full = r.product_vectors @ r.user_vectors([user])[0]
        lift = r.item_item.lift([seen], np.array([hist[-1]]))
        full[lift.indices] += lift.data
        ok = np.ones(len(ids), dtype=bool)
        ok[seen] = False
        order = np.flatnonzero(ok)[np.argsort(-full[ok], kind="stable")][:6]
        return order, full[order]

    for user in ("a3", "x", "b1"):
        order, scores = brute(user)
        out = r.recommend(user, k=6)
        np.testing.assert_allclose(out["score"].to_numpy(), scores, rtol=1e-4, atol=1e-5)
        assert r.recommend_batch([user], k=6)["product_id"].tolist() == out["product_id"].tolist()
    # the evaluated model scores as the API serves (exact index: every product's score)
    if index == "exact":
        graph = EmbeddedStore(paths[1]).load()
        fr = FusionRecommender.load(model_dir, TrainData.from_graph(graph, seed=0))
        u = graph.id_map("User").index("a3")
        expected = fr.score(np.array([u]))[0]
        served = r.recommend("a3", k=21, exclude_seen=False)
        np.testing.assert_allclose(served["score"].to_numpy(), np.sort(expected)[::-1], rtol=1e-4, atol=1e-4)
    # a new event makes its product the user's latest: the memory now reads that product's row
    before = r.recommend("x", k=6)
    r.record("x", "A5", "purchase")
    assert r.history("x")["product_id"].iloc[-1] == "A5"
    order, scores = brute("x")
    after = r.recommend("x", k=6)
    np.testing.assert_allclose(after["score"].to_numpy(), scores, rtol=1e-4, atol=1e-5)
    assert after["product_id"].tolist() != before["product_id"].tolist()
    # a new user's last chosen product leads the memory too
    new = r.recommend_new_user(["B0", "A7"], k=21)
    lifted = set(ids[t[column["A7"]].indices]) - {"B0", "A7"}
    assert lifted <= set(new["product_id"])


@pytest.mark.parametrize("index", ["exact", "faiss"])
def test_latest_product_text_term_is_served_exactly(paths, index, tmp_path):
    """With the latest product's text term (`fusion.last_text`), the served top k is the brute-force top k of
    U.F + item-item + gamma <t_last, t_i> over the products with interactions, the evaluated model scores as
    the API serves, and a recorded event or a new user's last chosen product moves t_last."""
    pytest.importorskip("faiss") if index == "faiss" else None
    import json
    import shutil

    from fusion import FusionRecommender
    from fusion.data import TrainData
    from fusion.vectors import unit_rows
    from kg import EmbeddedStore

    model_dir = shutil.copytree(paths[0], tmp_path / "model")
    meta = json.loads((model_dir / "meta.json").read_text())
    gamma = 4.0
    meta["last_text"] = {"weight": 0.2, "gamma": gamma, "valid_ndcg@10": None}
    (model_dir / "meta.json").write_text(json.dumps(meta))
    plain = Recommender.load(paths[0], text_encoder=HashEncoder(), event_log=None)
    r = Recommender.load(model_dir, text_encoder=HashEncoder(), index=index, event_log=None)
    assert r.model_version != plain.model_version  # the term changes the rankings: part of the version
    ids = np.array(r.product_ids)
    column = {p: j for j, p in enumerate(ids)}
    text = unit_rows(r.product_text_vectors)
    warm = np.zeros(len(ids), dtype=bool)
    for u in r.user_ids:
        warm[[column[p] for p in r.history(u)["product_id"] if p in column]] = True

    def brute(user):
        hist = [column[p] for p in r.history(user)["product_id"]]
        seen = np.unique(hist)
        full = r.product_vectors @ r.user_vectors([user])[0]
        head = r.item_item
        if head is not None:
            lift = head.lift([seen], np.array([hist[-1]]))
            full[lift.indices] += lift.data
        full += np.where(warm, gamma * (text @ text[hist[-1]]), 0.0)
        ok = np.ones(len(ids), dtype=bool)
        ok[seen] = False
        order = np.flatnonzero(ok)[np.argsort(-full[ok], kind="stable")][:6]
        return order, full[order]

    changed = 0
    for user in ("a3", "x", "b1"):
        order, scores = brute(user)
        out = r.recommend(user, k=6)
        np.testing.assert_allclose(out["score"].to_numpy(), scores, rtol=1e-4, atol=1e-4)
        assert r.recommend_batch([user], k=6)["product_id"].tolist() == out["product_id"].tolist()
        changed += out["product_id"].tolist() != plain.recommend(user, k=6)["product_id"].tolist()
    assert changed  # the term moves the rankings
    if index == "exact":  # the evaluated model scores as the API serves (every product's score)
        graph = EmbeddedStore(paths[1]).load()
        fr = FusionRecommender.load(model_dir, TrainData.from_graph(graph, seed=0))
        assert fr.last_text_ is not None and fr.last_text_.gamma == gamma
        u = graph.id_map("User").index("a3")
        expected = fr.score(np.array([u]))[0]
        served = r.recommend("a3", k=len(ids), exclude_seen=False)
        np.testing.assert_allclose(served["score"].to_numpy(), np.sort(expected)[::-1], rtol=1e-4, atol=1e-4)
        assert fr.without_item_item().last_text_ is None  # the network alone
    # a new event makes its product the latest: t_last follows it
    r.record("x", "A5", "purchase")
    order, scores = brute("x")
    np.testing.assert_allclose(r.recommend("x", k=6)["score"].to_numpy(), scores, rtol=1e-4, atol=1e-4)
    # a new user: the last chosen product leads the term
    a = r.recommend_new_user(["B0", "A7"], k=len(ids) - 2)
    b = r.recommend_new_user(["A7", "B0"], k=len(ids) - 2)
    assert set(a["product_id"]) == set(b["product_id"]) and a["product_id"].tolist() != b["product_id"].tolist()
    # a product added after training is cold: the term leaves it to the cold mix, and nothing breaks
    new = pd.DataFrame({"product_id": ["N1"], "title": ["steel staples"], "brand": ["B0"], "categories": ["c0"]})
    r.add_products(new)
    assert len(r.recommend("a3", k=len(ids) + 1)) == len(ids) + 1 - len(np.unique(r.history("a3")["product_id"]))


def test_load_errors(tmp_path, paths):
    with pytest.raises(FileNotFoundError, match="not a fusion model directory"):
        Recommender.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no graph store at"):
        Recommender.load(paths[0], store=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="index must be 'exact', 'faiss'"):
        Recommender.load(paths[0], index="annoy")
    with pytest.raises(ValueError, match="on_unknown must be one of"):
        Recommender.load(paths[0], on_unknown="ignore")


# --- recommend -------------------------------------------------------------------------------------
def test_recommend_frame_and_exclude_seen(shared_rec):
    out = shared_rec.recommend("a3", k=5)
    assert tuple(out.columns) == RESULT_COLUMNS
    assert out["rank"].tolist() == [1, 2, 3, 4, 5]
    assert out["score"].is_monotonic_decreasing and (out["source"] == "model").all()
    seen = {f"A{k}" for k in range(10) if k != 3}
    assert not seen & set(out["product_id"])
    assert out["product_id"].iloc[0] == "A3"  # the one fruit a3 has not bought yet
    row = out.iloc[0]
    assert row["title"] == "Fresh cherry" and row["brand"] == "Acme" and row["category"] == "Food > Fruit"
    with_seen = shared_rec.recommend("a3", k=5, exclude_seen=False)
    assert set(with_seen["product_id"]) & seen


def test_user_ids_and_history(shared_rec):
    assert "a3" in shared_rec.user_ids and "x" in shared_rec.user_ids
    h = shared_rec.history("x")
    assert h["product_id"].tolist() == ["A0", "B0"]  # oldest first
    assert list(h.columns) == ["product_id", "title", "event"]
    with pytest.raises(UnknownIdError, match="unknown user id 'nobody'"):
        shared_rec.history("nobody")


def test_recommend_k_larger_than_catalog(shared_rec):
    out = shared_rec.recommend("a3", k=100)
    assert len(out) == 21 - 9  # every product but the 9 seen ones


@pytest.mark.parametrize("kwargs, allowed", [
    ({"brands": ["bolt"]}, {f"B{k}" for k in range(10)}),
    ({"brands": "BOLT"}, {f"B{k}" for k in range(10)}),
    ({"categories": "Tools"}, {f"B{k}" for k in range(10)}),                      # a root: its subcategories too
    ({"categories": ["Hammers"]}, {"B0", "B1", "B4", "B5", "B8", "B9"}),          # a level name
    ({"categories": "tools > nails"}, {"B2", "B3", "B6", "B7"}),                  # a category id
    ({"categories": ["Juice", "Nails"]}, {"A5", "A6", "A7", "A8", "A9", "B2", "B3", "B6", "B7"}),
    ({"brands": ["Acme"], "categories": ["Fruit"]}, {"A0", "A1", "A2", "A3", "A4", "C0"}),
])
def test_recommend_filters(shared_rec, kwargs, allowed):
    out = shared_rec.recommend("x", k=21, **kwargs)
    assert len(out) and set(out["product_id"]) <= allowed
    assert set(out["product_id"]) == allowed - {"A0", "B0"}  # x's own products are excluded


def test_filter_errors_name_the_value(shared_rec):
    with pytest.raises(ValueError, match="unknown brand 'Nope'"):
        shared_rec.recommend("x", brands=["Nope"])
    with pytest.raises(ValueError, match="unknown category 'Garden'"):
        shared_rec.recommend("x", categories="Garden")
    with pytest.raises(ValueError, match="brands must be a str or a list of str, got int"):
        shared_rec.recommend("x", brands=[3])
    with pytest.raises(ValueError, match="brands is empty"):
        shared_rec.recommend("x", brands=[])


def test_unknown_user_falls_back_to_popular(shared_rec):
    with pytest.warns(UnknownUserWarning, match="unknown user id 'ghost': recommending the most popular"):
        out = shared_rec.recommend("ghost", k=3)
    assert (out["source"] == "popular").all()
    assert out["score"].tolist() == [10.0, 10.0, 9.0]  # A0 and B0: 9 block users + x; then 9 users each
    assert out["product_id"].tolist()[:2] == ["A0", "B0"]
    with pytest.warns(UnknownUserWarning):
        filtered = shared_rec.recommend("ghost", k=3, categories="Nails")
    assert filtered["product_id"].tolist() == ["B2", "B3", "B6"]


def test_unknown_user_raises_on_request(shared_rec, paths):
    with pytest.raises(UnknownIdError, match="unknown user id 'ghost'") as e:
        shared_rec.recommend("ghost", on_unknown="raise")
    assert isinstance(e.value, KeyError) and isinstance(e.value, ValueError)
    strict = Recommender.load(paths[0], on_unknown="raise")
    with pytest.raises(KeyError, match="ghost"):
        strict.recommend("ghost")
    with pytest.raises(UnknownIdError, match="unknown user id 'ghost'"):
        shared_rec.user_vectors(["a1", "ghost"])


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "3", None])
def test_bad_k(shared_rec, k):
    with pytest.raises(ValueError, match="k must be a positive int"):
        shared_rec.recommend("a1", k=k)


def test_bad_ids(shared_rec):
    with pytest.raises(ValueError, match=r"user id must be a str, got int 5 \(ids are strings: did you mean '5'\?\)"):
        shared_rec.recommend(5)
    with pytest.raises(ValueError, match="user_ids must be a list of ids, got a single str"):
        shared_rec.recommend_batch("a1")
    with pytest.raises(ValueError, match="product id must be a str, got NoneType"):
        shared_rec.similar(None)


def test_recommend_batch_matches_recommend(shared_rec):
    users = ["b4", "a3", "x", "b4"]
    out = shared_rec.recommend_batch(users, k=4)
    assert list(out.columns) == ["user_id", *RESULT_COLUMNS]
    assert out["user_id"].tolist() == [u for u in users for _ in range(4)]
    for u in ("b4", "a3", "x"):
        one = shared_rec.recommend(u, k=4)
        part = out[out["user_id"] == u].head(4).reset_index(drop=True)
        assert part["product_id"].tolist() == one["product_id"].tolist()
        np.testing.assert_allclose(part["score"], one["score"], rtol=1e-5)
    with pytest.warns(UnknownUserWarning, match="'nobody'"):
        mixed = shared_rec.recommend_batch(["a1", "nobody"], k=2, categories="Tools")
    assert mixed.groupby("user_id")["source"].first().to_dict() == {"a1": "model", "nobody": "popular"}
    assert mixed["product_id"].str.startswith("B").all()


# --- search, similar ------------------------------------------------------------------------------
def test_search_finds_by_text(shared_rec):
    out = shared_rec.search("claw hammer", k=3)
    assert tuple(out.columns) == RESULT_COLUMNS
    assert out["product_id"].iloc[0] == "B0"
    assert shared_rec.search("plum", k=1)["product_id"].tolist() == ["A2"]
    nails = shared_rec.search("hammer", k=3, categories="Nails")
    assert set(nails["product_id"]) <= {"B2", "B3", "B6", "B7"}


def test_search_score_is_the_documented_blend(shared_rec):
    from fusion.serving.search import SearchBlend

    rec = shared_rec
    x = HashEncoder().encode_query("steel hammer").numpy()
    with torch.no_grad():
        q = rec.model.query_vectors(torch.from_numpy(x)[None])[0].numpy()
    st, s, blend = rec._state, rec._scales, rec.search_blend
    assert blend == SearchBlend(alpha=0.1, beta=0.25)
    u = rec.user_vectors(["a1"])[0]
    expected = (blend.alpha * st.normed @ q / s.query + (1 - blend.alpha) * st.text @ x / s.text
                + blend.beta * st.vectors @ u / s.user)
    out = rec.search("steel hammer", k=21, user_id="a1")
    got = dict(zip(out["product_id"], out["score"]))
    for j, pid in enumerate(rec.product_ids):
        assert got[pid] == pytest.approx(expected[j], rel=1e-4, abs=1e-4)
    plain = rec.search("steel hammer", k=21)
    assert not np.allclose(plain.set_index("product_id")["score"].sort_index(),
                           out.set_index("product_id")["score"].sort_index())


def test_search_personalised_exclude_seen_and_unknown_user(shared_rec):
    out = shared_rec.search("fresh", k=21, user_id="a3", exclude_seen=True)
    assert not {f"A{k}" for k in range(10) if k != 3} & set(out["product_id"])
    with pytest.warns(UnknownUserWarning, match="searching without personalisation"):
        anon = shared_rec.search("fresh", k=5, user_id="ghost")
    assert anon["product_id"].tolist() == shared_rec.search("fresh", k=5)["product_id"].tolist()


@pytest.mark.parametrize("query", ["", "   ", None, 3])
def test_search_bad_query(shared_rec, query):
    with pytest.raises(ValueError, match="query must be a non-empty string"):
        shared_rec.search(query)


def test_similar(shared_rec):
    out = shared_rec.similar("B3", k=5)
    assert tuple(out.columns) == RESULT_COLUMNS and len(out) == 5
    assert "B3" not in set(out["product_id"]) and out["product_id"].str.startswith("B").sum() >= 4
    v = shared_rec.product_vectors
    j = shared_rec.product_ids.index(out["product_id"].iloc[0])
    assert out["score"].iloc[0] == pytest.approx(_cos(v[shared_rec.product_ids.index("B3")], v[j]), rel=1e-5)
    batch = shared_rec.similar_batch(["B3", "A1"], k=5)
    assert list(batch.columns) == ["source_id", *RESULT_COLUMNS]
    assert batch[batch["source_id"] == "B3"]["product_id"].tolist() == out["product_id"].tolist()
    mixed = shared_rec.similar("B3", k=20, text_weight=0.25)
    st, b3 = shared_rec._state, shared_rec.product_ids.index("B3")
    j = shared_rec.product_ids.index(mixed["product_id"].iloc[-1])
    assert mixed["score"].iloc[-1] == pytest.approx(0.75 * st.normed[b3] @ st.normed[j] + 0.25 * st.text[b3] @ st.text[j],
                                                    rel=1e-5)
    with pytest.raises(ValueError, match="text_weight must be a number in"):
        shared_rec.similar("B3", text_weight=2)
    with pytest.raises(UnknownIdError, match="unknown product id 'Z9'"):
        shared_rec.similar("Z9")
    with pytest.raises(UnknownIdError, match="unknown product id 'Z9'"):
        shared_rec.similar_batch(["A1", "Z9"])


# --- explain ---------------------------------------------------------------------------------------
def test_explain_paths_are_real_and_ranked(shared_rec):
    paths = shared_rec.explain("a1", "A1", max_paths=50)
    assert paths and all(isinstance(p, Explanation) for p in paths)
    assert [p.score for p in paths] == sorted((p.score for p in paths), reverse=True)
    kinds = {p.kind for p in paths}
    assert {"related", "brand", "category", "co_interaction"} <= kinds
    for p in paths:
        assert p.nodes[0] == ("User", "a1", "a1") and p.nodes[-1] == ("Product", "A1", "Fresh pear")
        assert len(p.relations) == len(p.nodes) - 1 and p.relations[0] == "INTERACTED"
        assert p.nodes[1][0] == "Product" and p.nodes[1][1] == p.via
    related = next(p for p in paths if p.kind == "related")
    assert related.via == "A0" and related.relations == ["INTERACTED", "ALSO_BOUGHT"]
    assert 'You interacted with "Fresh apple"; customers who bought it also bought this.' == related.text
    brand = next(p for p in paths if p.kind == "brand")
    assert brand.text.endswith("which has the same brand (Acme) as this.")
    assert brand.nodes[2] == ("Brand", "acme", "Acme")
    cat = next(p for p in paths if p.kind == "category")
    assert "same category: Fruit (Food > Fruit)" in cat.text
    assert cat.nodes[2:-1] == [("Category", "food > fruit", "Fruit")]  # X and P both sit in that leaf
    assert cat.relations == ["INTERACTED", "IN_CATEGORY", "IN_CATEGORY"]
    # the root "Food" holds 11 of 21 products: too broad to explain anything
    juice = [p for p in shared_rec.explain("a1", "A1", max_paths=50) if p.kind == "category"]
    assert all("Juice" not in p.text for p in juice)
    assert len(shared_rec.explain("a1", "A1")) == 3


def test_explain_co_interaction_and_no_path(shared_rec):
    co = [p for p in shared_rec.explain("b1", "A0", max_paths=10)]
    assert [p.kind for p in co] == ["co_interaction"]  # only x bought both A0 and B0
    assert co[0].nodes[2] == ("User", "x", "x") and "1 other customer who" in co[0].text
    assert shared_rec.explain("b1", "A3") == []


def test_explain_names_what_others_chose_right_after_the_latest_product(shared_rec):
    """x's latest product is B0; b2..b9 bought B1 right after B0 (b1 skipped B1, b0 never had B0)."""
    paths = shared_rec.explain("x", "B1", max_paths=10)
    nxt = [p for p in paths if p.kind == "next"]
    assert len(nxt) == 1 and nxt[0].via == "B0"
    assert nxt[0].text.endswith("most recently; 8 other customers chose this right after it.")
    assert nxt[0].nodes[0] == ("User", "x", "x") and nxt[0].nodes[2][0] == "User" and nxt[0].nodes[-1][1] == "B1"
    assert nxt[0].relations == ["INTERACTED", "INTERACTED", "INTERACTED"]
    # only the latest product (B0) leads it, and nobody chose A2 right after B0
    assert all(p.kind != "next" for p in shared_rec.explain("x", "A2", max_paths=10))


def test_explain_errors(shared_rec):
    with pytest.raises(UnknownIdError, match="unknown user id 'ghost'"):
        shared_rec.explain("ghost", "A1")
    with pytest.raises(UnknownIdError, match="unknown product id 'Z9'"):
        shared_rec.explain("a1", "Z9")
    with pytest.raises(ValueError, match="max_paths must be a positive int"):
        shared_rec.explain("a1", "A1", max_paths=0)


# --- new users -------------------------------------------------------------------------------------
def test_recommend_new_user(shared_rec):
    out = shared_rec.recommend_new_user(["B0", "B1", "B2"], k=5)
    assert not {"B0", "B1", "B2"} & set(out["product_id"]) and (out["source"] == "model").all()
    assert out["product_id"].str.startswith("B").sum() >= 4
    q = shared_rec.recommend_new_user(query="claw hammer", k=3)
    assert q["product_id"].iloc[0] == "B0"
    both = shared_rec.recommend_new_user(["B0"], query="hammer", k=5)
    assert "B0" not in set(both["product_id"])
    pop = shared_rec.recommend_new_user(k=2)
    assert (pop["source"] == "popular").all() and pop["product_id"].tolist() == ["A0", "B0"]
    with pytest.raises(UnknownIdError, match="unknown product id 'Z9'"):
        shared_rec.recommend_new_user(["A1", "Z9"])


# --- cold start ------------------------------------------------------------------------------------
def _row(rec, pid, new_id):
    c = rec._state.catalog
    j = c.column(pid)
    return {"product_id": new_id, "title": c.titles[j], "description": c.descriptions[j],
            "brand": c.brand_text[j], "categories": c.category_text[j]}


def test_readded_product_lands_near_the_original(rec):
    ids = rec.add_products(pd.DataFrame([_row(rec, "B3", "B3-again"), _row(rec, "A6", "A6-again")]))
    assert ids == ["B3-again", "A6-again"] and rec.product_ids[-2:] == ids
    v = rec.product_vectors
    assert v.shape == (23, 16)
    for old, new in (("B3", "B3-again"), ("A6", "A6-again")):
        assert _cos(v[rec.product_ids.index(old)], v[rec.product_ids.index(new)]) > 0.8
        assert old in rec.similar(new, k=5)["product_id"].tolist()  # block products are near-collinear here
    # at once recommendable, searchable, explainable and filterable
    assert "B3-again" in set(rec.recommend("b3", k=21)["product_id"])
    assert "B3-again" in set(rec.search("brad nails", k=3)["product_id"])
    assert "B3-again" in set(rec.recommend("b1", k=21, categories="Nails")["product_id"])
    assert any(p.kind == "brand" for p in rec.explain("b1", "B3-again"))


def test_cold_graph_vector_replicates_the_encoder(rec):
    """C0 has no interaction: the model gives it a content-only graph embedding; the cold-start step over the
    same neighbours (without the +1 degree of a new edge) reproduces it exactly."""
    from fusion.serving.cold_start import fuse, product_neighbours

    m = rec.model
    c = rec._state.catalog
    j = c.column("C0")
    nb = rec._neighbourhood
    neighbours = product_neighbours(int(c.brand[j]), c.leaves[j], [], graph_brands=c.graph_brands,
                                    graph_categories=c.graph_categories, cat_parent=c.cat_parent,
                                    brand_offset=nb.offsets["Brand"], category_offset=nb.offsets["Category"])
    with torch.no_grad():
        ent = m.entity_embeddings()
        expected = ent[m.item_entity[j]].numpy()
        np.testing.assert_allclose(nb.vector(neighbours, new_edges=False), expected, rtol=1e-4, atol=1e-5)
        # and fuse() is item_vectors for rows outside the entity table
        np.testing.assert_allclose(fuse(m, ent[m.item_entity], torch.from_numpy(np.array(rec._state.text))).numpy(),
                                   rec.product_vectors, rtol=1e-5, atol=1e-5)


def test_new_brand_and_category_are_text_only_but_filterable(rec):
    rows = pd.DataFrame([
        {"product_id": "G1", "title": "Garden hose", "brand": "Newco", "categories": "Garden > Hoses"},
        {"product_id": "T1", "title": "Steel saw", "brand": "Bolt", "categories": "Tools > Saws"},
        {"product_id": "N1", "title": "Fresh lime"},
    ])
    assert rec.add_products(rows) == ["G1", "T1", "N1"]
    g = rec._neighbourhood
    c = rec._state.catalog
    assert not np.any(g.vector(_neighbours(rec, "G1")))          # nothing known about it in the graph
    assert np.any(g.vector(_neighbours(rec, "T1")))              # Bolt, and Tools stands in for Tools > Saws
    assert rec.recommend("x", k=25, brands="newco")["product_id"].tolist() == ["G1"]
    assert rec.recommend("x", k=25, categories="Garden")["product_id"].tolist() == ["G1"]
    assert "T1" in set(rec.recommend("x", k=25, categories="Tools")["product_id"])
    assert c.category_text[c.column("T1")] == "Tools > Saws" and c.brand_text[c.column("N1")] == ""
    assert rec.search("garden hose", k=1)["product_id"].tolist() == ["G1"]


def _neighbours(rec, pid):
    from fusion.serving.cold_start import product_neighbours

    c, nb = rec._state.catalog, rec._neighbourhood
    j = c.column(pid)
    return product_neighbours(int(c.brand[j]), c.leaves[j], [], graph_brands=c.graph_brands,
                              graph_categories=c.graph_categories, cat_parent=c.cat_parent,
                              brand_offset=nb.offsets["Brand"], category_offset=nb.offsets["Category"])


def test_add_products_with_relations(rec):
    rel = pd.DataFrame({"product_id": ["R1"], "relation": ["Also Bought"], "other_id": ["B5"]})
    rec.add_products(pd.DataFrame([{"product_id": "R1", "title": "Mystery item"}]), relations=rel)
    assert np.any(rec._neighbourhood.vector({"ALSO_BOUGHT": [int(rec._item_entity[5 + 10])]}))
    paths = rec.explain("b1", "R1")
    assert [p.kind for p in paths] == ["related"] and paths[0].via == "B5"
    with pytest.raises(ValueError, match="relations row 0: field 'relation' = 'likes': unknown relation"):
        rec.add_products(pd.DataFrame([{"product_id": "R2"}]),
                         relations=pd.DataFrame({"product_id": ["R2"], "relation": ["likes"], "other_id": ["B1"]}))
    with pytest.raises(ValueError, match="neither 'B1' nor 'B2' is one of the products being added"):
        rec.add_products(pd.DataFrame([{"product_id": "R3"}]),
                         relations=pd.DataFrame({"product_id": ["B1"], "relation": ["also_bought"],
                                                 "other_id": ["B2"]}))


@pytest.mark.parametrize("rows, message", [
    ([{"product_id": "A1", "title": "again"}], r"row 0: field 'product_id' = 'A1': already in the catalog"),
    ([{"product_id": "N1", "title": "a"}, {"product_id": "N1", "title": "b"}],
     r"row 1: field 'title' = 'b': duplicate product_id 'N1' with a different title"),
    ([{"product_id": "N1", "price": "cheap"}], r"row 0: field 'price' = 'cheap': price is not a number"),
    ([{"product_id": "N1", "price": -2}], r"row 0: field 'price' = '-2': price is negative"),
    ([{"product_id": ""}], r"row 0: field 'product_id' = '': empty product_id"),
    ([{"title": "no id"}], r"missing required column 'product_id'"),
    ([{"product_id": "N1", "colour": "red"}], r"unknown column\(s\) \['colour'\]"),
])
def test_add_products_validation(rec, rows, message):
    n = len(rec.product_ids)
    with pytest.raises(ProductInputError, match=message):
        rec.add_products(pd.DataFrame(rows))
    assert len(rec.product_ids) == n  # nothing added


def test_add_products_names_index_labels_and_takes_identical_repeats(rec):
    with pytest.raises(ValueError, match=r"row 1 \(index 'second'\): field 'price'"):
        rec.add_products(pd.DataFrame([{"product_id": "N1"}, {"product_id": "N2", "price": "x"}],
                                      index=["first", "second"]))
    twice = pd.DataFrame([{"product_id": "N1", "title": "t"}, {"product_id": "N1", "title": "t"}])
    assert rec.add_products(twice) == ["N1"]
    with pytest.raises(ValueError, match="expected a pandas DataFrame"):
        rec.add_products([{"product_id": "N9"}])


# --- other indexes ---------------------------------------------------------------------------------
def test_index_instance_and_faiss(paths, shared_rec):
    from fusion.serving.topk import ExactIndex

    mine = ExactIndex(shared_rec.product_vectors)
    rec = Recommender.load(paths[0], index=mine, text_encoder=HashEncoder())
    assert rec.recommend("a3", k=3)["product_id"].tolist() == shared_rec.recommend("a3", k=3)["product_id"].tolist()
    rec.add_products(pd.DataFrame([_row(rec, "B3", "B3-again")]))
    assert mine.size == 21  # copied, not grown in place
    with pytest.raises(ValueError, match="the index given holds 2 vectors, the catalog has 21 products"):
        Recommender.load(paths[0], index=ExactIndex(np.zeros((2, 16), np.float32)))
    pytest.importorskip("faiss")
    fx = Recommender.load(paths[0], index="faiss", text_encoder=HashEncoder())
    assert fx._state.shared  # FaissIndex has no copy(): grown in place under the read-write lock
    assert fx.recommend("a3", k=3)["product_id"].tolist() == shared_rec.recommend("a3", k=3)["product_id"].tolist()
    fx.add_products(pd.DataFrame([_row(fx, "B3", "B3-again")]))
    assert "B3" in fx.similar("B3-again", k=3)["product_id"].tolist()


def test_model_without_text():
    """fusion_no_text: no search (a clear error), products added from their graph neighbours alone."""
    rec = Recommender.load(trained_model(use_text=False)[0])
    assert rec._state.search_index is None
    assert rec.recommend("a3", k=1)["product_id"].tolist() == ["A3"]
    with pytest.raises(ValueError, match="trained without text"):
        rec.search("hammer")
    with pytest.raises(ValueError, match="trained without text"):
        rec.recommend_new_user(query="hammer")
    with pytest.raises(ValueError, match="text_weight must be 0"):
        rec.similar("B3", text_weight=0.5)
    rec.add_products(pd.DataFrame([_row(rec, "B3", "B3-again")]))
    assert "B3" in rec.similar("B3-again", k=5)["product_id"].tolist()


def test_catalog_and_text_vectors_are_public_and_read_only(shared_rec):
    cat = shared_rec.catalog
    assert [str(x) for x in cat.ids] == shared_rec.product_ids
    text = shared_rec.product_text_vectors
    assert text.shape[0] == len(cat) and text.dtype == np.float32
    with pytest.raises(ValueError):
        text[0, 0] = 1.0
