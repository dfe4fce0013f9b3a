"""Shared fixtures: tiny graphs built by the tests, and the path to the real data when present."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def tiny_files(tmp_path):
    from kg_fixtures import tiny_files as make
    return make(tmp_path)


@pytest.fixture
def tiny_graph(tiny_files):
    from kg import KnowledgeGraph, merge_files
    g = KnowledgeGraph()
    merge_files(g, *tiny_files, show_progress=False)
    return g


def data_dir(name: str) -> Path:
    """Real dataset folder under ../shared/data, or skip the test with a clear reason."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"real data {path} not present")
    return path


# --- live Neo4j tests: count them in the summary; where a server was started for the run, none may skip --
_LIVE_DIRS = ("tests/integration/", "tests/browser/")
_live: dict[str, list[str]] = {"passed": [], "failed": [], "skipped": []}


def _is_live(nodeid: str) -> bool:
    return nodeid.startswith(_LIVE_DIRS)


def pytest_runtest_logreport(report):
    if not _is_live(report.nodeid):
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if report.outcome == "skipped" and "partial run" in str(report.longrepr):
            return  # the statement-coverage check, skipped by design when only some live tests were chosen
        _live["failed" if report.outcome == "failed" else report.outcome].append(report.nodeid)


def pytest_collectreport(report):
    if _is_live(report.nodeid) and report.outcome == "skipped":  # a module-level skip (no server)
        _live["skipped"].append(report.nodeid)


def pytest_terminal_summary(terminalreporter):
    import os
    if not any(_live.values()):
        return
    where = os.environ.get("NEO4J_URI") or "no server"
    terminalreporter.write_line(f"live Neo4j tests ({where}): {len(_live['passed'])} passed, "
                                f"{len(_live['failed'])} failed, {len(_live['skipped'])} skipped")


def pytest_sessionfinish(session, exitstatus):
    import os
    if os.environ.get("KGREC_NEO4J_REQUIRED") == "1" and _live["skipped"] and exitstatus == 0:
        print(f"\nerror: a live Neo4j server ran for this session, but {len(_live['skipped'])} live test(s) "
              f"skipped: {', '.join(_live['skipped'][:5])}")
        session.exitstatus = 1
