"""Real time: `Recommender.record` / `record_batch`, the event log, its replay and `scripts/apply_events.py`,
on the tiny two-shop model (see query_fixtures)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusion import Recommender
from fusion.serving import UnknownIdError
from fusion.serving.events import EventLog

from query_fixtures import HashEncoder, trained_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def copy(tmp_path):
    """(model_dir, store_dir): the tiny model and a private copy of its store (tests here write to it)."""
    model, store = trained_model()
    shutil.copytree(store, tmp_path / "store")
    return model, tmp_path / "store"


def load(model, store, **kw) -> Recommender:
    return Recommender.load(model, store=store, text_encoder=HashEncoder(), **kw)


def test_recomputed_vector_of_a_user_without_new_events_is_the_one_computed_at_load(copy):
    rec = load(*copy, event_log=None)
    st = rec._state
    for uid in ("a3", "b0", "x"):
        u = rec._history.find(uid)
        again = rec._user_vector(st, u, rec._history.items_of(u))
        np.testing.assert_allclose(again, rec.user_vectors([uid])[0], rtol=1e-5, atol=1e-6)


def test_a_purchase_changes_history_recommendations_and_explanations_at_once(copy):
    rec = load(*copy, event_log=None)
    before = rec.recommend("a3", k=21)
    assert before["product_id"].iloc[0] == "A3"  # the one fruit a3 has not bought
    n0 = len(rec.history("a3"))
    for k in range(4):
        rec.record("a3", f"B{k}", event="purchase", timestamp=2000 + k)
    hist = rec.history("a3")
    assert len(hist) == n0 + 4 and hist["product_id"].tolist()[-4:] == ["B0", "B1", "B2", "B3"]
    assert (hist["event"].tail(4) == "purchase").all()
    after = rec.recommend("a3", k=21)
    assert not set(after["product_id"]) & {"B0", "B1", "B2", "B3"}  # seen now: excluded
    tools = [f"B{k}" for k in range(4, 10)]
    score = lambda f: f.set_index("product_id").loc[tools, "score"].mean()
    assert score(after) > score(before) + 0.1  # the tool purchases pull the other tools up
    # the item-item term sees the new history: the score is U . F + lift(seen, last) for the recomputed user
    v, seen, last = rec._views([rec._history.find("a3")])
    assert last[0] == rec.product_ids.index("B3")  # the latest purchase leads the next-item memory
    full = v @ rec.product_vectors.T + (rec.item_item.lift(seen, last).toarray() if rec.item_item else 0)
    top = after["product_id"].iloc[0]
    np.testing.assert_allclose(after["score"].iloc[0], full[0, rec.product_ids.index(top)], rtol=1e-5)
    why = rec.explain("a3", "B1" if "B1" != top else "B0")
    texts = " ".join(e.text for e in rec.explain("a3", top))
    assert 'You bought "Steel' in texts, (why, texts)
    personal = rec.search("steel hammer", user_id="a3", k=3)
    assert len(personal) == 3


def test_a_new_user_is_known_from_the_first_event_and_scored_like_recommend_new_user(copy):
    rec = load(*copy, event_log=None)
    n = rec.num_users
    rec.record("newbie", "A1", timestamp=10)
    rec.record("newbie", "A2", timestamp=11)
    assert rec.num_users == n + 1 and rec.user_ids[-1] == "newbie"
    got = rec.recommend("newbie", k=5)
    assert (got["source"] == "model").all()
    want = rec.recommend_new_user(["A1", "A2"], k=5)
    assert got["product_id"].tolist() == want["product_id"].tolist()
    np.testing.assert_allclose(got["score"], want["score"], rtol=1e-5)
    assert rec.history("newbie")["product_id"].tolist() == ["A1", "A2"]
    assert rec.explain("newbie", got["product_id"].iloc[0])


def test_a_back_dated_event_goes_where_its_timestamp_puts_it(copy):
    rec = load(*copy, event_log=None)
    rec.record("x", "A5", timestamp=1)  # x bought A0 at 1 and B0 at 2: A5 lands after A0, before B0
    assert rec.history("x")["product_id"].tolist() == ["A0", "A5", "B0"]


@pytest.mark.parametrize("kwargs, field", [
    ({"timestamp": "yesterday"}, "timestamp"), ({"timestamp": float("nan")}, "timestamp"),
    ({"timestamp": True}, "timestamp"), ({"event": ""}, "event"), ({"event": 3}, "event"),
    ({"weight": float("inf")}, "weight"), ({"weight": "heavy"}, "weight")])
def test_bad_fields_are_value_errors_naming_the_field_and_keep_nothing(copy, tmp_path, kwargs, field):
    log = tmp_path / "events.csv"
    rec = load(*copy, event_log=log)
    n = len(rec.history("a1"))
    with pytest.raises(ValueError, match=field):
        rec.record("a1", "A1", **kwargs)
    assert len(rec.history("a1")) == n and not log.exists()


def test_an_unknown_product_is_an_unknown_id_error_naming_it(copy):
    rec = load(*copy, event_log=None)
    with pytest.raises(UnknownIdError, match="'nope'"):
        rec.record("a1", "nope")
    with pytest.raises(ValueError, match="user_id"):
        rec.record("", "A1")


def test_record_batch_checks_every_row_first_and_names_the_bad_one(copy):
    rec = load(*copy, event_log=None)
    n = len(rec.history("a1"))
    bad = pd.DataFrame({"user_id": ["a1", "a1"], "product_id": ["A1", "A2"], "timestamp": [5000, "soon"]})
    with pytest.raises(ValueError, match="row 1: timestamp"):
        rec.record_batch(bad)
    assert len(rec.history("a1")) == n
    good = pd.DataFrame({"user_id": ["a1", "zed", "a1"], "product_id": ["B1", "B2", "B3"],
                         "timestamp": [5000, 5001, 5002], "event": ["view", "Purchase", None]})
    assert rec.record_batch(good) == 3
    one = load(*copy, event_log=None)
    for r in good.itertuples():
        one.record(r.user_id, r.product_id, event=r.event if isinstance(r.event, str) else "interaction",
                   timestamp=r.timestamp)
    for u in ("a1", "zed"):
        assert rec.history(u).equals(one.history(u))
        np.testing.assert_allclose(rec.user_vectors([u]), one.user_vectors([u]), rtol=1e-6)
    assert rec.history("zed")["event"].tolist() == ["purchase"]


def test_the_log_is_replayed_on_load_and_folding_it_into_the_store_twice_adds_nothing(copy):
    model, store = copy
    rec = load(model, store)  # event_log="auto": STORE/events.csv
    assert rec.event_log == store / "events.csv"
    rec.record("a1", "B4", event="purchase", timestamp=7000)
    rec.record("newbie", "A1", timestamp=7001)
    want = rec.recommend("a1", k=5), rec.recommend("newbie", k=5)
    again = load(model, store)  # replays the log
    assert again.history("a1")["product_id"].tolist()[-1] == "B4"
    assert again.recommend("a1", k=5).equals(want[0]) and again.recommend("newbie", k=5).equals(want[1])
    for _ in range(2):  # idempotent: the second run adds nothing
        out = subprocess.run([sys.executable, str(ROOT / "scripts" / "apply_events.py"), "--store", str(store),
                              "--quiet"], capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr
    assert "0 relationships created" in out.stdout
    folded = load(model, store)  # the store now holds the events, the log still has them: no double count
    assert folded.history("a1")["product_id"].tolist().count("B4") == 1
    assert folded.history("newbie")["product_id"].tolist() == ["A1"]
    # a user the store gained after training has no node: scored by the history encoder, as record did
    assert folded.recommend("newbie", k=5)["product_id"].tolist() == want[1]["product_id"].tolist()
    plain = load(model, store, event_log=None)
    assert plain.history("a1")["product_id"].tolist().count("B4") == 1


def test_a_torn_last_line_is_dropped_on_read_and_repaired_before_the_next_append(copy):
    model, store = copy
    rec = load(model, store)
    rec.record("a1", "B4", timestamp=7000)
    rec._log.close()
    with open(store / "events.csv", "ab") as f:
        f.write(b"a1,B5,70")  # a crash mid-append
    assert len(EventLog(store / "events.csv").read()) == 1
    again = load(model, store)
    again.record("a1", "B6", timestamp=7002)
    rows = EventLog(store / "events.csv").read()
    assert rows["product_id"].tolist() == ["B4", "B6"]


def test_an_event_survives_kill_9_right_after_record_returns(copy):
    model, store = copy
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]
        from fusion import Recommender
        from query_fixtures import HashEncoder
        rec = Recommender.load({str(model)!r}, store={str(store)!r}, text_encoder=HashEncoder())
        print("ready", flush=True)
        for i in range(1000000):
            rec.record("crash", "A%d" % (i % 10), timestamp=100000 + i)
            print(i, flush=True)
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert p.stdout.readline().strip() == "ready"
    last = -1
    while last < 200:
        last = int(p.stdout.readline())
    os.kill(p.pid, signal.SIGKILL)  # right after record returned for event `last`
    p.wait()
    rec = load(model, store)
    n = len(rec.history("crash"))
    assert n >= last + 1  # every returned record is there (one more may have been written, not yet printed)


def test_concurrent_writers_lose_no_event_and_readers_see_consistent_users(copy):
    rec = load(*copy, event_log=None)
    errors = []
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: a missing lock loses events here

    def write(t):
        try:
            for i in range(60):
                rec.record("shared", f"A{(t + i) % 10}", timestamp=100 + i)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def read():
        try:
            for _ in range(60):
                if rec._history.find("shared") >= 0:
                    r = rec.recommend("shared", k=3)
                    assert len(r) == 3
                    rec.explain("shared", "B1")
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)] + \
        [threading.Thread(target=read) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors
    assert len(rec.history("shared")) == 240
    assert rec._history.recorded == 240
