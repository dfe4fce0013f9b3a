"""Every statement kg/cypher.py can produce, for the live test that checks each one was sent to a server.

Builders are found by their parameter: `label` takes every allow-listed node label, `rel_type` every
relationship type, `output_type` every output type; `vector_index` (whose text carries a dimension) is
matched by its pattern. A new constant or builder is picked up without touching this file.
"""
from __future__ import annotations

import inspect
import re

from kg import cypher
from kg.schema import NODE_LABELS, OUTPUT_REL_TYPES, REL_TYPES

_DOMAINS = {"label": NODE_LABELS, "rel_type": REL_TYPES, "output_type": OUTPUT_REL_TYPES}
# builders whose text depends on a number or a list of statements, matched or expanded apart
_SPECIAL = {"vector_index", "output_schema_statements", "schema_statements", "check_dimensions", "constraint"}
_NOT_CYPHER = {"META_LABEL", "NODE_KEY", "NODE_INDEX", "ORD", "VECTOR_INDEX", "EMBEDDING", "EMBEDDING_MODEL"}
VECTOR_INDEX_PATTERN = cypher._VECTOR_INDEX_SYNTAX


def normal(statement: str) -> str:
    return " ".join(statement.split())


def module_statements() -> list[str]:
    """Every statement text of kg.cypher except the vector index command (see VECTOR_INDEX_PATTERN)."""
    out: list[str] = list(cypher.schema_statements())
    for name in cypher.__all__:
        obj = getattr(cypher, name)
        if name in _NOT_CYPHER or name in _SPECIAL:
            continue
        if isinstance(obj, str):
            out.append(obj)
        elif isinstance(obj, dict) and name in ("EXPLORE", "EXPLORE_RESULTS"):
            out.extend(obj.values())
        elif inspect.isfunction(obj):
            params = list(inspect.signature(obj).parameters)
            if len(params) == 1 and params[0] in _DOMAINS:
                out.extend(obj(value) for value in _DOMAINS[params[0]])
    return out


def uncovered(sent: list[str]) -> list[str]:
    """The module's statements that no text in `sent` equals (whitespace aside), the vector index included."""
    seen = {normal(s) for s in sent}
    missing = [s for s in module_statements() if normal(s) not in seen]
    if not any(VECTOR_INDEX_PATTERN.fullmatch(s) for s in seen):
        missing.append("CREATE VECTOR INDEX product_embedding ... (cypher.vector_index)")
    return missing


def is_module_statement(statement: str) -> bool:
    return normal(statement) in {normal(s) for s in module_statements()} or bool(
        VECTOR_INDEX_PATTERN.fullmatch(normal(statement)))
