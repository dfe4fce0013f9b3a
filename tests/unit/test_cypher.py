"""Every statement in kg/cypher.py is valid Cypher, parameterised, and built from allow-listed names only.

No server runs here, so the statements are parsed with the openCypher grammar of the `antlr4-cypher`
package (grammars-v4). Schema commands (`CREATE CONSTRAINT`) are not openCypher; they are matched
against the Neo4j 5 syntax instead. Known gaps of that grammar, which the statements avoid: no
`*0..` ranges (the lexer reads `0` apart) and no `WITH` directly after `WITH`.
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from antlr4 import CommonTokenStream, InputStream
from antlr4.error.ErrorListener import ErrorListener
from antlr4_cypher import CypherLexer, CypherParser

from kg import cypher
from kg.schema import NODE_LABELS, REL_TYPES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "neo4j.md"
_CLAUSE = re.compile(r"^(MATCH|OPTIONAL|MERGE|UNWIND|CREATE|CALL|WITH|RETURN|DROP|SHOW)\b")
_SCHEMA = re.compile(r"^(CREATE|DROP|SHOW)\s+(CONSTRAINT|INDEX|RANGE|TEXT|VECTOR|FULLTEXT|POINT|LOOKUP)\b")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Raise(ErrorListener):
    def syntaxError(self, recognizer, offending, line, column, msg, e):  # noqa: N802 (ANTLR's name)
        raise SyntaxError(f"line {line}:{column}: {msg}")


def parse(statement: str) -> None:
    """Parse one statement with the openCypher grammar; SyntaxError on any lexer or parser error."""
    lexer = CypherLexer(InputStream(statement))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_Raise())
    parser = CypherParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(_Raise())
    parser.script()  # the top rule, anchored at EOF


def tokens(statement: str) -> list[tuple[str, str]]:
    """(token type name, text) of every token, lexer errors raised."""
    lexer = CypherLexer(InputStream(statement))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_Raise())
    return [(lexer.symbolicNames[t.type], t.text) for t in lexer.getAllTokens()]


def _is_statement(value: object) -> bool:
    return isinstance(value, str) and bool(_CLAUSE.match(value))


def _builder_args(fn) -> list[tuple]:
    params = list(inspect.signature(fn).parameters)
    if params == []:
        return [()]
    if params == ["label"]:
        return [(label,) for label in NODE_LABELS]
    if params == ["rel_type"]:
        return [(t,) for t in REL_TYPES]
    raise AssertionError(f"cypher.{fn.__name__}{params}: teach this test how to enumerate its arguments")


def all_statements() -> dict[str, str]:
    """name -> text of every statement the module can produce: constants, dict values, and each builder
    called with every allow-listed label or type."""
    out: dict[str, str] = {}
    for name in cypher.__all__:
        obj = getattr(cypher, name)
        if inspect.isfunction(obj):
            for args in _builder_args(obj):
                res = obj(*args)
                for i, s in enumerate(res if isinstance(res, list) else [res]):
                    out[f"{name}({', '.join(args)})#{i}"] = s
        elif isinstance(obj, dict):
            for k, v in obj.items():
                if _is_statement(v):
                    out[f"{name}[{k}]"] = v
        elif _is_statement(obj):
            out[name] = obj
    return out


STATEMENTS = all_statements()
SCHEMA = {k: v for k, v in STATEMENTS.items() if _SCHEMA.match(v)}
CYPHER = {k: v for k, v in STATEMENTS.items() if k not in SCHEMA}


def test_statements_are_all_found():
    # every builder over every label/type, plus constants and exploration queries
    assert len(set(SCHEMA.values())) == len(NODE_LABELS)
    assert len(set(CYPHER.values())) >= 3 * len(NODE_LABELS) + 4 * len(REL_TYPES) + 4 + len(cypher.EXPLORE)
    # nothing that looks like a statement hides outside __all__ or inside an unchecked constant
    for name, value in vars(cypher).items():
        if _is_statement(value):
            assert name in cypher.__all__, f"statement {name} is not exported, so the tests would miss it"
    for name in cypher.__all__:
        value = getattr(cypher, name)
        if isinstance(value, str) and not _is_statement(value):
            assert _IDENT.match(value), f"{name}={value!r} is neither an identifier nor a known statement"


@pytest.mark.parametrize("name", sorted(CYPHER))
def test_statement_parses_with_opencypher_grammar(name):
    parse(CYPHER[name])


@pytest.mark.parametrize("broken", [
    "MATCH (n:Product RETURN n",                      # unclosed node pattern
    "MATHC (n) RETURN n",                             # misspelt clause
    "UNWIND $rows AS row MERGE (n:Product {id: row.id) SET n += row.props",  # unclosed map
    "MATCH (n) RETURN n n",                           # trailing garbage
    "MATCH (a)-[r:HAS_BRAND->(b) RETURN r",           # unclosed relationship
    "MATCH (n) RETURN n; MATCH (m) RETURN m",         # two statements in one
    "MATCH (n) WHERE n.id = 'x RETURN n",             # unterminated string
    "UNWIND $rows AS row MATCH (a {id: row.src_id}) MERGE (a)-[:T]-> SET a.x = 1",
])
def test_grammar_rejects_broken_statements(broken):
    with pytest.raises(SyntaxError):
        parse(broken)


_CONSTRAINT = re.compile(
    r"CREATE CONSTRAINT (?P<name>[a-z][a-z0-9_]*) IF NOT EXISTS "
    r"FOR \((?P<var>[a-z]\w*):(?P<label>[A-Z]\w*)\) "
    r"REQUIRE (?P=var)\.(?P<prop>[a-z]\w*) IS UNIQUE")


@pytest.mark.parametrize("name", sorted(SCHEMA))
def test_schema_command_matches_neo4j5_syntax(name):
    statement = SCHEMA[name]
    m = _CONSTRAINT.fullmatch(statement)
    assert m, f"{statement!r} is not `CREATE CONSTRAINT name IF NOT EXISTS FOR (n:Label) REQUIRE n.prop IS UNIQUE`"
    assert m["label"] in NODE_LABELS
    assert m["prop"] == cypher.NODE_KEY
    assert m["name"] == f"{m['label'].lower()}_{cypher.NODE_KEY}"
    tokens(statement)  # lexes cleanly too


def test_one_constraint_per_label():
    labels = [_CONSTRAINT.fullmatch(s)["label"] for s in cypher.schema_statements()]
    assert sorted(labels) == sorted(NODE_LABELS)


@pytest.mark.parametrize("bad", ["product", "Product) DETACH DELETE n //", "Product`", "", "KGMeta",
                                 "Product:User", "Product {id: 'x'}", " Product"])
@pytest.mark.parametrize("builder", [cypher.constraint, cypher.upsert_nodes, cypher.read_nodes, cypher.delete_nodes])
def test_label_builders_reject_names_outside_the_allow_list(builder, bad):
    with pytest.raises(ValueError, match="unknown node label"):
        builder(bad)


@pytest.mark.parametrize("bad", ["has_brand", "HAS_BRAND]->() DETACH DELETE r //", "INTERACTED|HAS_BRAND",
                                 "", "KNOWS", "ALSO_BOUGHT`"])
@pytest.mark.parametrize("builder", [cypher.merge_relationships, cypher.delete_relationships,
                                     cypher.read_relationships, cypher.max_order])
def test_relationship_builders_reject_types_outside_the_allow_list(builder, bad):
    with pytest.raises(ValueError, match="unknown relationship type"):
        builder(bad)


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_values_travel_as_parameters(name):
    """No string literals; numbers only as structural constants (0, 1); labels and types allow-listed."""
    statement = STATEMENTS[name]
    toks = tokens(statement)
    literals = [t for kind, t in toks if kind in ("STRING_LITERAL", "CHAR_LITERAL")]
    assert not literals, f"string literal(s) {literals} in {name}: pass values as $parameters"
    numbers = {t for kind, t in toks if kind in ("Integer", "DIGIT", "FLOAT")}
    assert numbers <= {"0", "1"}, f"numeric literal(s) {numbers} in {name}: pass values as $parameters"
    for label in re.findall(r"\(\w*:(\w+)", statement):
        assert label in (*NODE_LABELS, cypher.META_LABEL), f"label {label} in {name}"
    for rtype in re.findall(r"\[\w*:(\w+)", statement):
        assert rtype in REL_TYPES, f"relationship type {rtype} in {name}"


def test_write_statements_take_their_rows_as_one_parameter():
    for label in NODE_LABELS:
        assert set(re.findall(r"\$(\w+)", cypher.upsert_nodes(label))) == {"rows"}
    for t in REL_TYPES:
        for s in (cypher.merge_relationships(t), cypher.delete_relationships(t)):
            assert set(re.findall(r"\$(\w+)", s)) == {"rows"}
    # INTERACTED is identified by seq (many interactions per user-product pair); the rest by endpoints
    assert "[r:INTERACTED {seq: row.seq}]" in cypher.merge_relationships("INTERACTED")
    assert "[r:HAS_BRAND]" in cypher.merge_relationships("HAS_BRAND")


def test_exploration_queries_declare_their_parameters():
    assert len(cypher.EXPLORE) >= 5
    assert set(cypher.EXPLORE) == set(cypher.EXPLORE_EXAMPLE_PARAMS)
    for name, query in cypher.EXPLORE.items():
        assert set(re.findall(r"\$(\w+)", query)) == set(cypher.EXPLORE_EXAMPLE_PARAMS[name]), name


def _docs_blocks() -> list[str]:
    return re.findall(r"```cypher\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)


def _squash(s: str) -> str:
    return " ".join(s.split())


def test_docs_show_every_exploration_query_with_its_params():
    blocks = _docs_blocks()
    for name, query in cypher.EXPLORE.items():
        holding = [b for b in blocks if _squash(query) in _squash(b)]
        assert holding, f"docs/neo4j.md does not show EXPLORE[{name!r}] verbatim"
        params = set(re.findall(r"^:param (\w+) =>", holding[0], re.M))
        assert params >= set(cypher.EXPLORE_EXAMPLE_PARAMS[name]), f"{name}: missing :param lines"


def test_every_query_in_the_docs_parses():
    blocks = _docs_blocks()
    assert len(blocks) >= 5
    for block in blocks:
        body = "\n".join(ln for ln in block.splitlines() if not ln.startswith(":")).strip()
        for statement in filter(None, (s.strip() for s in body.split(";"))):
            if _SCHEMA.match(statement):
                assert _CONSTRAINT.fullmatch(statement) or statement.startswith("SHOW "), statement
            else:
                parse(statement)
