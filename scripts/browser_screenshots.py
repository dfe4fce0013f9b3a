r"""Neo4j Browser in headless Chromium: log in, run docs/neo4j.md's results queries with their `:param` lines as a
person would, and save the result frames as the docs' screenshots.

  NEO4J_PASSWORD=... python scripts/browser_screenshots.py --uri bolt://127.0.0.1:27687 \
      --http-uri http://127.0.0.1:27474 [--user-id U --product-id P] [--out docs]

The server must hold a knowledge graph and a model's exported results (scripts/build_graph.py --neo4j, then
scripts/export_to_neo4j.py). Without --user-id / --product-id the script picks, over Bolt, a user with a short
history and one of their top recommendations that query 7 explains by a few paths, and uses that product for
the neighbours. It writes docs/browser_history_and_recommendations.png (docs/neo4j.md query 6, table),
docs/browser_why_recommended.png (query 7, graph view) and docs/browser_vector_neighbours.png (query 9, table).

`NeoBrowser` is also what tests/browser/test_neo4j_browser.py drives. Chromium is the system one
(/usr/bin/chromium or KGREC_CHROMIUM; `bash scripts/install_browser.sh` installs it and Playwright); every
request that is not to loopback is refused, and so is a WebSocket to any Bolt port but the one logged in to.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAGE = ROOT / "docs" / "neo4j.md"  # the page that shows the results queries
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")
# docs/neo4j.md "#### N" heading -> the kg.cypher.EXPLORE_RESULTS name of its query and the screenshot's file
SCREENSHOTS = {
    "6": ("history_and_recommendations", "browser_history_and_recommendations.png", "table"),
    "7": ("why_recommended", "browser_why_recommended.png", "graph"),
    "9": ("vector_neighbours", "browser_vector_neighbours.png", "table"),
}
# Monaco (Browser's editor) takes a paste event as a paste: the text arrives exactly, without the
# auto-indentation or bracket closing that typing it key by key would add.
_PASTE = """(text) => {
  const ta = document.querySelector('[data-testid=activeEditor] textarea');
  ta.focus();
  const data = new DataTransfer();
  data.setData('text/plain', text);
  ta.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
}"""
_MARK_SEEN = "() => document.querySelectorAll('[data-testid=frame]').forEach(f => f.setAttribute('data-kgrec-seen', ''))"


class BrowserError(RuntimeError):
    """Neo4j Browser did not do what was asked in time (the message says what it showed instead)."""


def chromium_path() -> str | None:
    """The Chromium to drive: KGREC_CHROMIUM, else /usr/bin/chromium, else `chromium` on PATH (None: none)."""
    env = os.environ.get("KGREC_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


# --- the page's queries - ------------------------------------------------------------------------------
@dataclass
class Example:
    """One query block of the page: its heading number and title, its `:param` lines and the query."""

    number: str
    title: str
    params: list[str]
    query: str

    def param_values(self) -> dict[str, object]:
        return {m[1]: ast.literal_eval(m[2]) for m in (re.match(r":param (\w+) => (.+)$", p) for p in self.params)}

    def with_params(self, **values: object) -> "Example":
        """The same block with some `:param` values replaced (e.g. a real user id)."""
        lines = [f":param {name} => {values[name]!r}" if name in values else line
                 for name, line in zip(self.param_values(), self.params)]
        return Example(self.number, self.title, lines, self.query)


def page_examples(path: Path = PAGE) -> dict[str, Example]:
    """Every `#### N title` of the page followed by a ```cypher block, by N."""
    text = path.read_text(encoding="utf-8")
    out = {}
    block = r"^#### (\d+) ([^\n]+)\n((?:(?!#### |```cypher)[^\n]*\n)*)```cypher\n([\s\S]*?)^```"
    for m in re.finditer(block, text, re.M):  # a heading, lines that are no heading, its cypher block
        lines = m[4].strip("\n").splitlines()
        params = [ln.strip() for ln in lines if ln.startswith(":param ")]
        query = "\n".join(ln for ln in lines if not ln.startswith(":"))
        out[m[1]] = Example(m[1], m[2].strip(), params, query)
    return out


def same_statement(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


# --- the browser -----------------------------------------------------------------------------------------
def _cell(text: str) -> object:
    """A table cell as Browser renders it (JSON: strings quoted, null, numbers) back to a value."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


class Frame:
    """One result frame of Browser's stream."""

    def __init__(self, locator, timeout_ms: int) -> None:
        self.locator = locator
        self.timeout_ms = timeout_ms

    @property
    def command(self) -> str:
        return self.locator.get_by_test_id("frameCommand").inner_text(timeout=self.timeout_ms)

    def error(self) -> str | None:
        """The error the frame shows (its code and message), or None."""
        err = self.locator.get_by_test_id("cypherFrameErrorMessage")
        if err.count():
            return self.locator.get_by_test_id("frame-loaded-contents").inner_text(timeout=self.timeout_ms).strip()
        return None

    def wait(self, what: str = "done") -> "Frame":
        """Wait until the frame has finished ('done': the table view's status bar says "completed", the
        graph view draws nodes, a :param frame shows its value) and then shows `what` ('done', 'table',
        'graph'); BrowserError if it shows an error instead, or nothing of the kind within the timeout."""
        finished = self.locator.locator(
            "[data-testid=rawParamData], [data-testid=cypherFrameErrorMessage], svg g.node").or_(
            self.locator.get_by_test_id("frameStatusbar").filter(has_text=re.compile(r"\bcompleted\b", re.I)))
        self._await(finished, "a finished result")
        if (err := self.error()) is not None:
            raise BrowserError(f"frame `{self.command[:80]}` shows an error: {err}")
        if what == "table" and not self.empty():
            self._await(self.locator.locator("table.relatable__table"), "a table")
        elif what == "graph":
            self._await(self.locator.locator("svg g.node"), "a graph")
        return self

    def _await(self, locator, what: str) -> None:
        try:
            locator.first.wait_for(state="attached", timeout=self.timeout_ms)
        except Exception as e:  # playwright's TimeoutError
            raise BrowserError(f"frame `{self.command[:80]}` showed no {what} within {self.timeout_ms / 1000:.0f}s; "
                               f"it shows: {self.text()[:500]!r}") from e

    def empty(self) -> bool:
        """The query returned no rows: Browser says "(no changes, no records)"."""
        return self.locator.get_by_text("(no changes, no records)").count() > 0

    def text(self) -> str:
        try:
            return self.locator.inner_text(timeout=2000)
        except Exception:
            return "(unreadable)"

    def _view(self, testid: str) -> None:
        button = self.locator.get_by_test_id(testid)
        if button.count():
            button.click(timeout=self.timeout_ms)

    def show_table(self) -> "Frame":
        self._view("cypherFrameSidebarTable")
        return self.wait("table")

    def show_graph(self) -> "Frame":
        self._view("cypherFrameSidebarVisualization")
        return self.wait("graph")

    def table(self) -> tuple[list[str], list[list[object]]]:
        """The table view: its column names and rows (cells as values)."""
        self.show_table()
        if self.empty():
            return [], []
        table = self.locator.locator("table.relatable__table")
        headers = [h.strip() for h in table.locator("thead th[role=columnheader]").all_inner_texts()]
        rows = [[_cell(c) for c in row.locator("td[role=cell]").all_inner_texts()]
                for row in table.locator("tbody tr").all()]
        return headers, rows

    def records(self) -> list[dict[str, object]]:
        headers, rows = self.table()
        return [dict(zip(headers, row)) for row in rows]

    def graph(self) -> tuple[list[str], dict[str, int]]:
        """The graph view: the captions of the nodes drawn, and the relationship types drawn with their counts
        (from the Overview panel: a caption on a short arrow is cut)."""
        self.show_graph()
        nodes = [t.strip() for t in self.locator.locator("svg g.node").all_text_contents()]
        prefix = "property-details-overview-relationship-type-"
        types = {}
        for item in self.locator.locator(f"[data-testid^={prefix}]").all():
            name = item.get_attribute("data-testid")[len(prefix):]
            count = re.search(r"\((\d+)\)", item.inner_text())
            if name != "*":
                types[name] = int(count[1]) if count else 0
        return nodes, types

    def param(self) -> dict[str, object]:
        self.wait()
        return json.loads(self.locator.get_by_test_id("rawParamData").inner_text(timeout=self.timeout_ms))


@dataclass
class NeoBrowser:
    """Headless Chromium on Neo4j Browser. Use as a context manager; every wait is bounded by `timeout_s`."""

    http_uri: str
    chromium: str | None = None
    timeout_s: float = 30.0
    viewport: tuple[int, int] = (1400, 1000)
    scale: float = 1.0
    blocked: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.chromium = self.chromium or chromium_path()
        if not self.chromium:
            raise BrowserError("no Chromium: run `bash scripts/install_browser.sh` (or set KGREC_CHROMIUM)")
        self._bolt_port: int | None = None

    @property
    def timeout_ms(self) -> int:
        return int(self.timeout_s * 1000)

    def __enter__(self) -> "NeoBrowser":
        from playwright.sync_api import sync_playwright
        self._pw = sync_playwright().start()
        try:
            self.browser = self._pw.chromium.launch(executable_path=self.chromium, headless=True,
                                                    args=list(CHROMIUM_FLAGS), timeout=self.timeout_ms * 2)
            self.context = self.browser.new_context(viewport={"width": self.viewport[0], "height": self.viewport[1]},
                                                    device_scale_factor=self.scale)
            self.context.route("**/*", self._only_loopback)
            self.context.route_web_socket(self._foreign_socket, lambda ws: ws.close())
            self.page = self.context.new_page()
            self.page.set_default_timeout(self.timeout_ms)
            self.page.set_default_navigation_timeout(self.timeout_ms * 2)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for thing in ("browser", "_pw"):
            obj = getattr(self, thing, None)
            if obj is not None:
                try:
                    obj.close() if thing == "browser" else obj.stop()
                except Exception:
                    pass
                setattr(self, thing, None)

    # network: loopback only, and Bolt only to the server logged in to (Browser prefills its connect form
    # from the address the server advertises: kg.neo4j_server advertises the port it listens on, another
    # server need not, and the form is filled in anyway)
    def _only_loopback(self, route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def _foreign_socket(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.hostname not in LOOPBACK or parts.port != self._bolt_port

    # steps
    def open(self) -> None:
        """Load Neo4j Browser and wait for its connect form."""
        response = self.page.goto(self.http_uri.rstrip("/") + "/browser/")
        if response is None or not response.ok:
            raise BrowserError(f"{self.http_uri}/browser/ answered {response.status if response else 'nothing'}")
        self.page.get_by_test_id("boltaddress").wait_for()

    def connect_form(self) -> str:
        """What the connect form holds before it is filled in: scheme and address, e.g. neo4j://127.0.0.1:7687."""
        return (self.page.get_by_test_id("bolt-scheme-select").input_value()
                + self.page.get_by_test_id("boltaddress").input_value())

    def login(self, uri: str, password: str, user: str = "neo4j") -> None:
        """Fill in the connect form (Connect URL, user, password), connect, and wait until Browser says so."""
        parts = urlsplit(uri)
        self._bolt_port = parts.port or 7687
        form = self.page
        form.get_by_test_id("bolt-scheme-select").select_option(f"{parts.scheme}://")
        form.get_by_test_id("boltaddress").fill(parts.netloc)
        form.get_by_test_id("username").fill(user)
        form.get_by_test_id("password").fill(password)
        form.get_by_test_id("connect").click()
        done = self.page.get_by_text(re.compile(r"You are connected as user")).or_(
            self.page.get_by_text(re.compile(r"unauthorized|authentication failure|Could not reach|ServiceUnavailable",
                                             re.I)))
        try:
            done.first.wait_for()
        except Exception as e:
            raise BrowserError(f"no answer to connecting to {uri} within {self.timeout_s:.0f}s: "
                               f"{self.page.get_by_test_id('stream').inner_text()[:500]!r}") from e
        if not self.page.get_by_text(re.compile(r"You are connected as user")).count():
            raise BrowserError(f"Browser did not connect to {uri}: {done.first.inner_text()[:300]!r}")

    def _dismiss_banner(self) -> None:
        """Close the usage-data banner (it appears a while after connecting) as a newcomer would."""
        banner = self.page.get_by_text("we collect information on product usage")
        if banner.count():
            try:
                banner.first.locator("xpath=..").locator("xpath=./span[last()]").click(timeout=5000)
            except Exception:
                pass  # only looks: the frames below it are what is tested and photographed

    def run(self, command: str, *, key: str | None = None) -> Frame:
        """Put `command` into the editor and run it (Enter for one line, Ctrl+Enter for several): the new frame."""
        self._dismiss_banner()
        self.page.evaluate(_MARK_SEEN)
        self.page.locator("[data-testid=activeEditor] textarea").click()
        if "\n" in command:
            self.page.evaluate(_PASTE, command)
        else:
            self.page.keyboard.type(command)
        self.page.keyboard.press(key or ("Control+Enter" if "\n" in command else "Enter"))
        frame = self.page.locator("[data-testid=frame]:not([data-kgrec-seen])").first
        try:
            frame.wait_for()
        except Exception as e:
            raise BrowserError(f"no frame appeared for `{command[:80]}` within {self.timeout_s:.0f}s; the editor "
                               f"holds {self.page.get_by_test_id('activeEditor').inner_text()[:300]!r}") from e
        shown = Frame(frame, self.timeout_ms)
        if not same_statement(shown.command, command):
            raise BrowserError(f"the frame runs `{shown.command}`, not what was put in the editor: `{command}`")
        return shown

    def run_example(self, example: Example) -> Frame:
        """A query block as the page says: each `:param` line (its frame must show the value), then the query."""
        for line, (name, value) in zip(example.params, example.param_values().items()):
            shown = self.run(line).param()
            if shown.get(name) != value:
                raise BrowserError(f"`{line}` set {name} to {shown.get(name)!r}")
        return self.run(example.query).wait()

    def errors_in_stream(self) -> list[str]:
        return [e.strip() for e in self.page.get_by_test_id("cypherFrameErrorMessage").all_inner_texts()]

    def screenshot(self, frame: Frame, path: Path, graph_height: int = 760, max_width: int = 1800,
                   max_height: int = 1600) -> Path:
        """The frame in Browser's fullscreen mode, as a PNG: a table view with every row and column (the
        window is resized to fit it, up to max_width x max_height), a graph view in a window graph_height high."""
        path.parent.mkdir(parents=True, exist_ok=True)
        base = dict(self.page.viewport_size)
        table = frame.locator.locator("table.relatable__table")
        is_table = table.count() > 0 and table.first.is_visible()
        if not is_table:
            self.page.set_viewport_size({"width": base["width"], "height": graph_height})
        frame.locator.locator("button[title=Fullscreen]").click()
        close = frame.locator.locator("button[title='Close fullscreen']")
        close.wait_for()
        try:
            for _ in range(4) if is_table else ():
                scroll_w, client_w, bottom = table.first.evaluate(
                    "t => [t.scrollWidth, t.parentElement.clientWidth, t.getBoundingClientRect().bottom]")
                size = {"width": min(max_width, self.page.viewport_size["width"] + max(0, scroll_w - client_w)),
                        "height": min(max_height, int(bottom) + 60)}  # + the status bar
                if size == self.page.viewport_size:
                    break
                self.page.set_viewport_size(size)
                time.sleep(0.3)
            time.sleep(1.0)  # let the graph layout settle
            self.page.screenshot(path=str(path), animations="disabled")
        finally:
            close.click()
            self.page.set_viewport_size(base)
        return path


# --- picking real ids ------------------------------------------------------------------------------------
def pick_ids(uri: str, password: str, user: str = "neo4j", database: str | None = None,
             max_history: int = 5, paths: tuple[int, int] = (3, 6), max_title: int = 80) -> tuple[str, str]:
    """(user, product) for the screenshots: a user with a short history (<= max_history interactions, so
    query 6 fits one frame) and one of their top 3 recommendations that query 7 explains by `paths` paths
    of more than one kind (brand and category, or a product relation), best-ranked first. Users with a
    title longer than max_title (the table would not fit a README) or one that is markup left over from the
    source data (amazon-scientific has a few `... />.`) in their history or recommendations are passed over."""
    import neo4j
    from kg import cypher

    why = cypher.EXPLORE_RESULTS["why_recommended"]
    best, best_score = None, (False,) * 3
    with neo4j.GraphDatabase.driver(uri, auth=(user, password), notifications_min_severity="OFF") as driver:
        candidates = driver.execute_query(
            "MATCH (u:User)-[r:INTERACTED]->(h:Product) WITH u, count(r) AS n, collect(h.title) AS titles "
            "WHERE n <= $max "
            "MATCH (u)-[rec:RECOMMENDED]->(p:Product) "
            "WITH u, n, titles, collect(p.title) AS rec_titles, "
            "     [x IN collect({rank: rec.rank, id: p.id}) WHERE x.rank <= 3] AS top "
            "UNWIND top AS t "
            "RETURN u.id AS user_id, t.id AS product_id, titles + rec_titles AS all_titles "
            "ORDER BY t.rank, n, user_id LIMIT 2000",
            {"max": max_history}, database_=database, routing_=neo4j.RoutingControl.READ).records
        candidates = [c for c in candidates
                      if all(t and "/>" not in t and len(t) <= max_title for t in c["all_titles"])][:500]
        for c in candidates:
            rows = driver.execute_query(why, {"user_id": c["user_id"], "product_id": c["product_id"], "k": 25},
                                        database_=database, routing_=neo4j.RoutingControl.READ).records
            if not rows:
                continue
            links = {r["link"] for r in rows}
            score = (paths[0] <= len(rows) <= paths[1], len(links) > 1,
                     bool(links - {"HAS_BRAND", "IN_CATEGORY"}))
            if score > best_score or best is None:
                best, best_score = (c["user_id"], c["product_id"]), score
            if all(score):
                break
    if best is None:
        raise SystemExit("no user whose recommendation query 7 explains: is a model's export in this database?")
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uri", default=os.environ.get("NEO4J_URI", "bolt://127.0.0.1:7687"), help="Bolt URI")
    ap.add_argument("--http-uri", default=os.environ.get("NEO4J_HTTP_URI", "http://127.0.0.1:7474"),
                    help="where Neo4j Browser is served (without /browser/)")
    ap.add_argument("--user", default=os.environ.get("NEO4J_USERNAME") or os.environ.get("NEO4J_USER") or "neo4j")
    ap.add_argument("--user-id", help="the user of queries 6 and 7 (default: picked, see above)")
    ap.add_argument("--product-id", help="the recommended product of queries 7 and 8 (default: picked)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go (default docs/)")
    ap.add_argument("--scale", type=float, default=1.0, help="device pixel ratio of the screenshots")
    ap.add_argument("--timeout-s", type=float, default=60.0, help="bound on every wait in the browser")
    args = ap.parse_args(argv)
    password = os.environ.get("NEO4J_PASSWORD")
    if not password:
        ap.error("set NEO4J_PASSWORD")
    if bool(args.user_id) != bool(args.product_id):
        ap.error("give both --user-id and --product-id, or neither")
    user_id, product_id = ((args.user_id, args.product_id) if args.user_id
                           else pick_ids(args.uri, password, args.user))
    print(f"user {user_id}, recommended product {product_id}", flush=True)

    from kg import cypher
    examples = page_examples()
    values = {"user_id": user_id, "product_id": product_id}
    with NeoBrowser(args.http_uri, timeout_s=args.timeout_s, scale=args.scale) as nb:
        nb.open()
        nb.login(args.uri, password, args.user)
        for number, (name, filename, view) in SCREENSHOTS.items():
            example = examples[number]
            if not same_statement(example.query, cypher.EXPLORE_RESULTS[name]):
                raise SystemExit(f"{PAGE.name} query {number} is not kg.cypher.EXPLORE_RESULTS[{name!r}]")
            example = example.with_params(**{k: v for k, v in values.items() if k in example.param_values()})
            frame = nb.run_example(example)
            if view == "graph":
                nodes, types = frame.graph()
                print(f"  {number} {example.title}: graph of {len(nodes)} nodes; relationships {types}")
                if "RECOMMENDED" not in types:  # the query returns `rec` and `p`: Browser should draw both
                    print(f"  warning: the graph view of query {number} does not draw the RECOMMENDED relationship "
                          f"to {product_id}", file=sys.stderr)
                if not nodes:
                    raise SystemExit(f"query {number} draws nothing for {values}: pick other ids")
            else:
                headers, rows = frame.table()
                print(f"  {number} {example.title}: {len(rows)} rows ({', '.join(headers)})")
                if not rows:
                    raise SystemExit(f"query {number} shows no rows for {values}: pick other ids")
            print(f"  -> {nb.screenshot(frame, args.out / filename)}", flush=True)
        if nb.blocked:
            print(f"refused {len(nb.blocked)} non-loopback requests of Browser (e.g. {nb.blocked[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
