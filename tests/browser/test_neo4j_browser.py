"""Neo4j Browser as a person uses it, in headless Chromium, against a live server: open /browser/, log in
through the connect form, run docs/neo4j.md's results queries 6, 7 and 9 (section 4.1; their `:param` lines
first, as the page says) and read the result frames: the rows of the table view, the nodes and
relationships the graph view draws, and no error frame.

`make test-browser` installs Chromium and Playwright (scripts/install_browser.sh) and runs this around a
throwaway server. The graph is the tiny catalog of tests/neo4j_fixtures.py with FakeRecommender's results
exported. Without a server the module skips (tests/live_neo4j.py); without Chromium or Playwright it skips
too, unless KGREC_NEO4J_REQUIRED=1 (set by scripts/neo4j_server.py run), when it fails. Every wait in the
browser is bounded (NeoBrowser.timeout_s) and so is each test (KGREC_BROWSER_TEST_TIMEOUT_S, default 180 s).
On a failure the page is saved as a PNG whose path the error names.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import tempfile
from pathlib import Path

import pytest

from live_neo4j import empty_store, neo4j_config, require_server  # noqa: F401  (fixture)

require_server()

import neo4j  # noqa: E402

import doc_pages  # noqa: E402
import kg  # noqa: E402
from kg import cypher  # noqa: E402
from kg.result_writers import Neo4jResultWriter  # noqa: E402
from kg.results import export_results  # noqa: E402
from neo4j_fixtures import FakeRecommender, write_files  # noqa: E402
from scripts_loader import script  # noqa: E402

pytestmark = pytest.mark.integration

bs = script("browser_screenshots")
TIMEOUT_S = float(os.environ.get("KGREC_BROWSER_WAIT_S", "30"))
TEST_LIMIT_S = int(os.environ.get("KGREC_BROWSER_TEST_TIMEOUT_S", "180"))
PAGE = doc_pages.NEO4J_PAGE  # the page whose `#### N title` query blocks a person pastes into Browser


def _missing_browser() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the Python package playwright is not installed: run `bash scripts/install_browser.sh`"
    if bs.chromium_path() is None:
        return "no Chromium (/usr/bin/chromium or KGREC_CHROMIUM): run `bash scripts/install_browser.sh`"
    return None


@pytest.fixture(autouse=True)
def _bounded():
    """Each test ends within TEST_LIMIT_S, whatever the browser does."""
    def expire(signum, frame):
        raise TimeoutError(f"browser test ran past {TEST_LIMIT_S}s (KGREC_BROWSER_TEST_TIMEOUT_S)")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def results_graph(neo4j_config):
    """The live database holding the tiny graph and FakeRecommender's exported results (emptied afterwards)."""
    store = empty_store(neo4j_config)
    paths = write_files(Path(tempfile.mkdtemp(prefix="kgrec-browser-")))
    graph = store.load()
    result = kg.merge_files(graph, show_progress=False, **paths)
    store.write(graph, result.delta)
    rec = FakeRecommender("v1")
    export_results(rec, [Neo4jResultWriter(store, await_index_s=120)], rec.user_ids, show_progress=False)
    yield store
    store.drop_vector_index()
    store.clear()
    store.close()


@pytest.fixture(scope="module")
def browser():
    """Neo4j Browser in headless Chromium, logged in as neo4j to NEO4J_URI through the connect form."""
    missing = _missing_browser()
    if missing:
        if os.environ.get("KGREC_NEO4J_REQUIRED") == "1":
            pytest.fail(f"a live Neo4j server runs for these tests, but {missing}", pytrace=False)
        pytest.skip(missing)
    http_uri = os.environ.get("NEO4J_HTTP_URI")
    if not http_uri:
        pytest.fail("NEO4J_HTTP_URI is not set: scripts/neo4j_server.py run sets it beside NEO4J_URI", pytrace=False)
    with bs.NeoBrowser(http_uri, timeout_s=TIMEOUT_S) as nb:
        with _evidence(nb, "login"):
            nb.open()
            nb.prefilled = nb.connect_form()  # before login fills it in
            nb.login(os.environ["NEO4J_URI"], os.environ["NEO4J_PASSWORD"],
                     os.environ.get("NEO4J_USERNAME", "neo4j"))
        yield nb


@contextlib.contextmanager
def _evidence(nb, name: str):
    """On a failure inside, save the page as a PNG and name it in the error."""
    try:
        yield
    except BaseException as e:
        path = Path(tempfile.gettempdir()) / f"kgrec-browser-{name}.png"
        try:
            nb.page.screenshot(path=str(path), full_page=True, timeout=10_000)
            e.add_note(f"the page at the failure: {path}")
        except Exception:
            pass
        raise


def _example(name: str) -> "bs.Example":
    """The `#### N title` block of docs/neo4j.md that shows kg.cypher.EXPLORE_RESULTS[name], as the page shows it."""
    examples = [e for e in bs.page_examples(PAGE).values()
                if bs.same_statement(e.query, cypher.EXPLORE_RESULTS[name])]
    assert len(examples) == 1, f"{PAGE.name} shows kg.cypher.EXPLORE_RESULTS[{name!r}] under {len(examples)} headings"
    example = examples[0]
    assert example.param_values() == cypher.EXPLORE_RESULTS_EXAMPLE_PARAMS[name], \
        f"{PAGE.name} query {example.number} ({example.title}): :param lines {example.params}"
    return example


def _over_bolt(store, name: str) -> list[dict]:
    """What the server itself returns for the query, to compare the frame with."""
    return [r.data() for r in store.connect().execute_query(
        cypher.EXPLORE_RESULTS[name], cypher.EXPLORE_RESULTS_EXAMPLE_PARAMS[name],
        database_=store.config.database, routing_=neo4j.RoutingControl.READ).records]


def test_browser_logs_in_through_the_connect_form(browser):
    stream = browser.page.get_by_test_id("stream").inner_text()
    assert "You are connected as user neo4j" in stream
    address = os.environ["NEO4J_URI"].split("://", 1)[1]
    assert address in stream  # the server it says it is connected to
    # the form came prefilled with the Bolt address the server advertises: the port it really listens on
    assert browser.prefilled.endswith("://" + address), browser.prefilled
    assert browser.errors_in_stream() == []


def test_history_beside_recommendations_in_the_table(results_graph, browser):
    example = _example("history_and_recommendations")
    with _evidence(browser, "history"):
        records = browser.run_example(example).records()
    assert [(r["side"], r["product"], r["title"], r["brand"], r["model"]) for r in records] == [
        ("INTERACTED", "B0001", "Rose Cream", "Acme", None),
        ("INTERACTED", "B0003", "Shampoo", "Hairy Co", None),
        ("INTERACTED", "B0003", "Shampoo", "Hairy Co", None),
        ("RECOMMENDED", "B0002", "Lip Balm", "Acme", "v1")]
    assert records == _over_bolt(results_graph, "history_and_recommendations")  # every cell, scores too
    assert browser.errors_in_stream() == []


def test_why_recommended_in_the_graph_and_the_table(results_graph, browser):
    example = _example("why_recommended")
    with _evidence(browser, "why"):
        frame = browser.run_example(example)
        nodes, types = frame.graph()  # paths return nodes: Browser opens the graph view
        records = frame.records()
    # U2, what they interacted with (Rose Cream), the recommended product (Lip Balm, returned as `p`) and the
    # brand both share: nothing else of the graph (not U2's other product, Shampoo)
    assert sorted(nodes) == ["Acme", "Lip Balm", "Rose Cream", "U2"]
    # the returned `rec` and the paths' links; "connect result nodes" (Browser's default) adds the relationships
    # between drawn nodes that no row returns: Lip Balm's own HAS_BRAND to Acme and the exported SIMILAR_TO
    # both ways between the two products
    assert types == {"RECOMMENDED": 1, "INTERACTED": 1, "ALSO_BOUGHT": 1, "HAS_BRAND": 2, "SIMILAR_TO": 2}
    assert sorted((r["rank"], r["seen"], r["seen_title"], r["link"], r["via"]) for r in records) == [
        (1, "B0001", "Rose Cream", "ALSO_BOUGHT", "Lip Balm"), (1, "B0001", "Rose Cream", "HAS_BRAND", "Acme")]
    assert browser.errors_in_stream() == []


def test_vector_index_neighbours_in_the_table(results_graph, browser):
    example = _example("vector_neighbours")
    with _evidence(browser, "vector"):
        records = browser.run_example(example).records()
    assert [(r["product"], r["title"]) for r in records] == [("B0002", "Lip Balm"), ("B0003", "Shampoo")]
    assert records[0]["score"] > records[1]["score"]
    assert records == _over_bolt(results_graph, "vector_neighbours")
    assert browser.errors_in_stream() == []



def test_an_error_frame_is_told_apart(browser):
    """Runs last: the checks above would see an error frame, e.g. a query whose :param was never set."""
    with pytest.raises(bs.BrowserError, match="ParameterMissing"):
        browser.run("RETURN $kgrec_never_set AS x").wait("table")
    assert any("kgrec_never_set" in e for e in browser.errors_in_stream())
