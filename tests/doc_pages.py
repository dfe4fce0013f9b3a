"""The documentation pages that show Cypher, their ```cypher blocks, and cypher/explore.cypher's blocks.

One reader for the tests that hold the pages to cypher/explore.cypher (tests/unit/test_cypher.py), run
their queries on a live server (tests/integration/test_neo4j_realdata.py) and in Neo4j Browser
(tests/browser/test_neo4j_browser.py). A page is README.md or a markdown file under docs/; pages are
found, not listed, so a new page with a ```cypher block is checked without touching the tests.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPLORE_FILE = ROOT / "cypher" / "explore.cypher"
NEO4J_PAGE = ROOT / "docs" / "neo4j.md"  # the page that shows every exploration query
_FENCE = re.compile(r"^```cypher[ \t]*\n(.*?)^```", re.S | re.M)
_PARAM = re.compile(r"^:param (\w+) => (.+)$")
_WRITE = re.compile(r"\b(CREATE|MERGE|DELETE|DETACH|SET|REMOVE|DROP|FOREACH|LOAD\s+CSV)\b")
_SCHEMA_OR_LISTING = re.compile(r"^(SHOW|CREATE|DROP)\b")


@dataclass(frozen=True)
class Block:
    """One ```cypher block of a page (or one `;`-terminated block of explore.cypher): its `:param` lines
    as written, and its statements, split on `;`."""

    source: Path
    line: int  # 1-based line of the block's first line in its file
    lines: tuple[str, ...]  # every line of the block but blank ones, right-stripped, `;` ends dropped
    params: tuple[str, ...]
    statements: tuple[str, ...]

    @property
    def where(self) -> str:
        inside = ROOT in self.source.parents
        return f"{self.source.relative_to(ROOT) if inside else self.source}:{self.line}"

    def param_values(self) -> dict[str, object]:
        return {m[1]: ast.literal_eval(m[2]) for m in map(_PARAM.match, self.params) if m}


def squash(statement: str) -> str:
    """A statement with its whitespace runs made one space: how the tests compare statements."""
    return " ".join(statement.split())


def is_read_query(statement: str) -> bool:
    """A query that only reads: no schema or listing command, no write clause."""
    return not _SCHEMA_OR_LISTING.match(statement) and not _WRITE.search(statement)


def _block(source: Path, line: int, text: str) -> Block:
    lines = [ln.rstrip() for ln in text.strip("\n").splitlines() if ln.strip()]
    params = tuple(ln.strip() for ln in lines if ln.startswith(":"))
    body = "\n".join(ln for ln in lines if not ln.startswith(":"))
    statements = tuple(s.strip() for s in body.split(";") if s.strip())
    shown = tuple(ln[:-1].rstrip() if ln.endswith(";") else ln for ln in lines)
    return Block(source, line, shown, params, statements)


def pages() -> list[Path]:
    """README.md and every markdown page under docs/ that shows at least one ```cypher block."""
    candidates = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [p for p in candidates if p.is_file() and "```cypher" in p.read_text(encoding="utf-8")]


def blocks(page: Path) -> list[Block]:
    """Every ```cypher block of a markdown page, in page order."""
    text = page.read_text(encoding="utf-8")
    return [_block(page, text.count("\n", 0, m.start(1)) + 1, m[1]) for m in _FENCE.finditer(text)]


def explore_blocks(path: Path = EXPLORE_FILE) -> list[Block]:
    """cypher/explore.cypher as one Block per `;`-terminated chunk (its `:param` lines, then one
    statement), `//` comments dropped."""
    out, start, chunk = [], None, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("//") or not line.strip():
            continue
        start = start or number
        chunk.append(line)
        if line.rstrip().endswith(";"):
            out.append(_block(path, start, "\n".join(chunk)))
            start, chunk = None, []
    if any(ln.strip() for ln in chunk):
        out.append(_block(path, start, "\n".join(chunk)))
    return out
