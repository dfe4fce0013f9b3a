"""Faults against live servers: bad input and hostile names leave the database exactly as it was, a wrong
password, an unreachable server and a server killed mid-load each fail fast with a clear error, and a build
interrupted half way and run again ends with exactly the graph of an uninterrupted build.

The kill and restart happen on a second server that this module starts itself (so the suite's server
stays up for the other tests).
"""
from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import pytest

from live_neo4j import SENT, db_state, free_port, live_store, neo4j_config, require_server  # noqa: F401

require_server()

import kg  # noqa: E402
from kg import cypher  # noqa: E402
from kg import neo4j_server as ns  # noqa: E402
from kg_fixtures import tiny_files, write  # noqa: E402
from scripts_loader import script  # noqa: E402

pytestmark = pytest.mark.integration
build_graph = script("build_graph")


def _neo4j_args(store) -> list[str]:
    c = store.config
    return ["--neo4j", "--neo4j-uri", c.uri, "--neo4j-user", c.user, "--neo4j-password", c.password]


def _build(store, tmp_path: Path, *files: str, **paths: Path) -> int:
    args = [*(a for k, v in paths.items() for a in (f"--{k}", str(v))),
            "--store", str(tmp_path / "local"), "--quiet", "--batch-size", "2", *_neo4j_args(store)]
    return build_graph.main(args)


@pytest.fixture
def built(live_store, tmp_path):
    """The live store holding the tiny graph of tests/kg_fixtures.py."""
    p, i, r = tiny_files(tmp_path)
    assert _build(live_store, tmp_path, products=p, interactions=i, relations=r) == 0
    return live_store


# Every bad-input case of tests/unit/test_kg_validation.py: (file kind, content, what the error names).
BAD_INPUT = [
    ("products", "id,title\n1,a\n", "field 'product_id'"),
    ("products", "product_id,title,brand\na,Hammer,Acme\nb,Saw,Acme\na,Hammer,Bosch\n", "products.csv:4: field 'brand'"),
    ("interactions", "user_id,product_id\nu1,p1\nu1,p404\n", "interactions.csv:3: field 'product_id' = 'p404'"),
    ("interactions", "user_id,product_id,timestamp\nu1,p1,2014-01-01\nu1,p2,last tuesday\n",
     "interactions.csv:3: field 'timestamp' = 'last tuesday'"),
    ("products", b"product_id,title\na,ok\nb,caf\xe9 latte\n", "products.csv:3: field 'title' = 'bytes e9'"),
    ("products", "", "empty file"),
    ("products", "product_id,title\n", "empty file"),
    ("products", "product_id,price\na,12\nb,cheap\n", "products.csv:3: field 'price' = 'cheap'"),
    ("relations", "product_id,relation,other_id\np1,likes,p2\n", "relations.csv:2: field 'relation' = 'likes'"),
    ("relations", "product_id,relation,other_id\np1,also_bought,p1\n", "relations.csv:2: field 'other_id' = 'p1'"),
    ("products", 'product_id,description,price\na,"two\nlines",1\nb,x,oops\n', "products.csv:4: field 'price'"),
    ("interactions", "user_id,product_id\nu9,p1\nu9,missing\n", "interactions.csv:3: field 'product_id' = 'missing'"),
]


@pytest.mark.parametrize("kind,content,named", BAD_INPUT, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(BAD_INPUT)])
def test_bad_input_leaves_the_database_unchanged(built, tmp_path, capsys, kind, content, named):
    before = db_state(built)
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    assert _build(built, tmp_path, **{kind: path}) == 2
    err = capsys.readouterr().err
    assert named in err and "nothing was written" in err
    assert db_state(built) == before


HOSTILE = "x`]->() DETACH DELETE n //"


def test_hostile_names_never_reach_a_query(built, tmp_path, capsys):
    """A relation type, a header and values shaped like Cypher injections: the relation is refused by the
    allow-list (nothing written), unknown columns are dropped, and values travel as parameters only."""
    before = db_state(built)
    rel = write(tmp_path, "hostile_rel.csv", f"product_id,relation,other_id\np1,\"{HOSTILE}\",p2\n")
    assert _build(built, tmp_path, relations=rel) == 2
    assert "field 'relation'" in capsys.readouterr().err and db_state(built) == before

    start = len(SENT)
    header = "product_id,title,brand,categories,`) DETACH DELETE n //\n"
    prod = write(tmp_path, "hostile_products.csv", header + f"p9,\"{HOSTILE}\",\"{HOSTILE}\",\"Tools > {HOSTILE}\",x\n")
    assert _build(built, tmp_path, products=prod) == 0
    sent = SENT[start:]
    assert sent and not any("DETACH DELETE n //" in q for q in sent)
    allowed = {" ".join(s.split()) for s in _module_statements()}
    assert all(" ".join(q.split()) in allowed for q in sent), [q for q in sent if " ".join(q.split()) not in allowed]
    g = built.load()
    p9 = g.nodes["Product"].set_index("id").loc["p9"]
    assert p9["title"] == HOSTILE  # stored verbatim, as a value
    assert any(HOSTILE.lower() in str(n).lower() for n in g.nodes["Brand"]["name"])
    counts, _ = db_state(built)
    assert counts["Product"] == before[0]["Product"] + 1  # nothing deleted
    assert counts["User"] == before[0]["User"]


def _module_statements() -> list[str]:
    from statements import module_statements
    return module_statements()


def test_wrong_password_fails_fast_and_says_so(neo4j_config):
    cfg = kg.Neo4jConfig(neo4j_config.uri, neo4j_config.user, "not-the-password", max_retries=3, retry_wait_s=0.1)
    t0 = time.monotonic()
    with kg.Neo4jStore(cfg, show_progress=False) as store:
        with pytest.raises(kg.neo4j_store.Neo4jConnectionError, match="refused the credentials of user 'neo4j'"):
            store.load()
    assert time.monotonic() - t0 < 15
    print(f"wrong password: failed in {time.monotonic() - t0:.2f}s")


def test_unreachable_server_fails_in_bounded_time():
    cfg = kg.Neo4jConfig(f"bolt://127.0.0.1:{free_port()}", "neo4j", "whatever-pass", max_retries=3,
                         retry_wait_s=0.2, connect_timeout_s=2)
    t0 = time.monotonic()
    with kg.Neo4jStore(cfg, show_progress=False) as store:
        with pytest.raises(kg.neo4j_store.Neo4jConnectionError, match="cannot reach Neo4j at bolt://127.0.0.1:.* after 3 attempts"):
            store.load()
    assert time.monotonic() - t0 < 30
    print(f"unreachable: failed in {time.monotonic() - t0:.2f}s")


# --- a second server: killed mid-load, restarted, built again ------------------------------------------
@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("own-neo4j")
    config = ns.ServerConfig(home=home, password=secrets.token_urlsafe(12), bolt_port=free_port(),
                             http_port=free_port(), heap="512m", pagecache="256m")
    server = ns.start(config)
    yield server
    ns.stop(home)


def _own_store(server, batch_size: int = 1000, **kw) -> kg.Neo4jStore:
    cfg = kg.Neo4jConfig(server.bolt_uri, "neo4j", server.config.password, batch_size=batch_size, **kw)
    return kg.Neo4jStore(cfg, show_progress=False)


def test_server_killed_mid_load_then_rebuilt_ends_with_the_uninterrupted_graph(own_server, tmp_path):
    from conftest import data_dir
    src = data_dir("amazon-scientific")
    convert = script("convert_dataset")
    assert convert.main(["amazon-json", "--items", str(src / "Scientific.item.json"), "--interactions",
                         str(src / "Scientific.inter.json"), "--out", str(tmp_path)]) == 0
    files = {"products": tmp_path / "products.csv", "interactions": tmp_path / "interactions.csv"}
    reference = kg.KnowledgeGraph()
    kg.merge_files(reference, show_progress=False, **files)

    store = _own_store(own_server, max_retries=2, retry_wait_s=0.5, connect_timeout_s=3)
    outcome: dict = {}

    def load() -> None:
        graph = store.load()
        result = kg.merge_files(graph, show_progress=False, **files)
        try:
            store.write(graph, result.delta)
            outcome["error"] = None
        except Exception as e:  # noqa: BLE001 - the test inspects it
            outcome["error"] = e
            outcome["failed_at"] = time.monotonic()

    worker = threading.Thread(target=load)
    worker.start()
    probe = _own_store(own_server)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until interactions are half way in
        n = probe.connect().execute_query("MATCH ()-[r:INTERACTED]->() RETURN count(r) AS n").records[0]["n"]
        if n >= 10_000:
            break
        time.sleep(0.2)
    probe.close()
    killed_at = time.monotonic()
    assert ns.kill(own_server.config.home)
    worker.join(timeout=120)
    assert not worker.is_alive(), "the write did not give up after the server died"
    err = outcome["error"]
    assert isinstance(err, kg.neo4j_store.Neo4jConnectionError), repr(err)
    assert "lost the connection to Neo4j" in str(err) and "run the build again" in str(err)
    waited = outcome["failed_at"] - killed_at
    assert waited < 60
    print(f"killed mid-load: the write failed {waited:.1f}s later with: {str(err)[:200]}")
    store.close()

    ns.start(own_server.config)  # same home, same password
    partial = _own_store(own_server).load()
    assert 10_000 <= len(partial.edges_of("INTERACTED")) < len(reference.edges_of("INTERACTED"))
    resumed = _own_store(own_server, batch_size=5000)
    graph = resumed.load()
    result = kg.merge_files(graph, show_progress=False, **files)
    assert result.delta.changes.relationships_created > 0
    resumed.write(graph, result.delta)
    kg.assert_graphs_equal(resumed.load(), reference)
    again = resumed.load()
    assert not any(vars(kg.merge_files(again, show_progress=False, **files).delta.changes).values())
    resumed.clear()
    resumed.close()
