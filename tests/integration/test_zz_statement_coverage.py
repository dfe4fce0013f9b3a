"""Runs last (file order): every statement of kg/cypher.py was sent to the live server by some live test.

A new statement without a live test fails here. Needs the whole of tests/integration in the session.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from live_neo4j import SENT, require_server

require_server()

from statements import is_module_statement, uncovered  # noqa: E402

pytestmark = pytest.mark.integration
HERE = Path(__file__).resolve().parent


def test_every_cypher_statement_ran_against_the_live_server(request):
    collected = {Path(str(item.fspath)).name for item in request.session.items}
    wanted = {p.name for p in HERE.glob("test_*.py")}
    if not wanted <= collected or request.session.testsfailed:
        pytest.skip(f"partial run: the statement check needs every module of tests/integration "
                    f"(missing: {sorted(wanted - collected)}) and no failure before it")
    missing = uncovered(SENT)
    assert not missing, f"{len(missing)} statement(s) of kg/cypher.py never ran live:\n" + "\n".join(missing)
    ours = [s for s in SENT if is_module_statement(s)]
    print(f"{len(SENT)} statements sent by the live tests, {len(ours)} of them from kg/cypher.py, "
          f"covering all its statements")
