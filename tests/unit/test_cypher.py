"""Every statement in kg/cypher.py is valid Cypher, parameterised, and built from allow-listed names only.

No server runs here, so the statements are parsed with the openCypher grammar of the `antlr4-cypher`
package (grammars-v4). Schema commands (`CREATE CONSTRAINT`, `CREATE VECTOR INDEX`, `SHOW INDEXES`, ...)
are not openCypher; they are matched against the Neo4j 5 syntax instead. Known gaps of that grammar,
which the statements avoid: no `*0..` ranges (the lexer reads `0` apart), no `WITH` directly after
`WITH`, and no `UNION` (it rejects the whitespace before it).

At the end, the documentation: every page with a ```cypher block (README.md, docs/*.md; tests/doc_pages.py
finds them) shows an exploration query only as cypher/explore.cypher has it, `:param` lines included, and
no query that neither explore.cypher nor kg/cypher.py holds; docs/neo4j.md shows all of them.
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
from antlr4 import CommonTokenStream, InputStream
from antlr4.error.ErrorListener import ErrorListener
from antlr4_cypher import CypherLexer, CypherParser

import doc_pages
from kg import cypher
from kg.schema import NODE_LABELS, OUTPUT_REL_TYPES, REL_TYPES

ROOT = doc_pages.ROOT
DOCS = doc_pages.NEO4J_PAGE  # the page that shows every exploration query
_CLAUSE = re.compile(r"^(MATCH|OPTIONAL|MERGE|UNWIND|CREATE|CALL|WITH|RETURN|DROP|SHOW)\b")
_SCHEMA = re.compile(r"^(CREATE|DROP|SHOW)\s+(CONSTRAINTS?|INDEX|INDEXES|RANGE|TEXT|VECTOR|FULLTEXT|POINT|LOOKUP)\b")
DIMENSIONS = (1, 128, 4096)  # the vector index builder is enumerated over these
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
    if params == ["output_type"]:
        return [(t,) for t in OUTPUT_REL_TYPES]
    if params == ["dimensions"]:
        return [(d,) for d in DIMENSIONS]
    if params == ["dimensions", "similarity"]:
        return [(d, s) for d in DIMENSIONS for s in cypher.VECTOR_SIMILARITIES]
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
                    if _is_statement(s):  # (check_dimensions returns a number)
                        out[f"{name}({', '.join(map(str, args))})#{i}"] = s
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
    vector_variants = len(DIMENSIONS) * len(cypher.VECTOR_SIMILARITIES)
    assert len(set(SCHEMA.values())) == len(NODE_LABELS) + vector_variants + len(OUTPUT_REL_TYPES) + 2
    assert len(set(CYPHER.values())) >= (3 * len(NODE_LABELS) + 4 * len(REL_TYPES) + 4 + len(cypher.EXPLORE)
                                         + 4 * len(OUTPUT_REL_TYPES) + 3 + len(cypher.EXPLORE_RESULTS))
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
# Neo4j 5.13+: CREATE VECTOR INDEX name IF NOT EXISTS FOR (n:Label) ON (n.prop)
#              OPTIONS {indexConfig: {`vector.dimensions`: INT, `vector.similarity_function`: 'cosine'|'euclidean'}}
_VECTOR_INDEX = re.compile(
    r"CREATE VECTOR INDEX (?P<name>[a-z][a-z0-9_]*) IF NOT EXISTS "
    r"FOR \((?P<var>[a-z]\w*):(?P<label>[A-Z]\w*)\) ON \((?P=var)\.(?P<prop>[a-z]\w*)\) "
    r"OPTIONS \{indexConfig: \{`vector\.dimensions`: (?P<dim>[1-9][0-9]*), "
    r"`vector\.similarity_function`: '(?P<sim>cosine|euclidean)'\}\}")
# Neo4j 5: CREATE [RANGE] INDEX name IF NOT EXISTS FOR ()-[r:TYPE]-() ON (r.prop)
_REL_INDEX = re.compile(
    r"CREATE INDEX (?P<name>[a-z][a-z0-9_]*) IF NOT EXISTS "
    r"FOR \(\)-\[(?P<var>[a-z]\w*):(?P<type>[A-Z_]+)\]-\(\) ON \((?P=var)\.(?P<prop>[a-z]\w*)\)")
_DROP_INDEX = re.compile(r"DROP INDEX (?P<name>[a-z][a-z0-9_]*) IF EXISTS")
_SHOW_INDEXES = re.compile(r"SHOW INDEXES YIELD [a-z]+(, [a-z]+)*")


def _check_schema_command(statement: str) -> None:
    if m := _CONSTRAINT.fullmatch(statement):
        assert m["label"] in NODE_LABELS
        assert m["prop"] == cypher.NODE_KEY
        assert m["name"] == f"{m['label'].lower()}_{cypher.NODE_KEY}"
    elif m := _VECTOR_INDEX.fullmatch(statement):
        assert (m["name"], m["label"], m["prop"]) == (cypher.VECTOR_INDEX, "Product", cypher.EMBEDDING)
        assert 1 <= int(m["dim"]) <= cypher.MAX_VECTOR_DIMENSIONS
    elif m := _REL_INDEX.fullmatch(statement):
        assert m["type"] in OUTPUT_REL_TYPES and m["prop"] == "model"
        assert m["name"] == f"{m['type'].lower()}_model"
    elif m := _DROP_INDEX.fullmatch(statement):
        assert m["name"] == cypher.VECTOR_INDEX
    else:
        assert _SHOW_INDEXES.fullmatch(statement), f"{statement!r} matches none of the Neo4j 5 schema commands used"


@pytest.mark.parametrize("name", sorted(SCHEMA))
def test_schema_command_matches_neo4j5_syntax(name):
    _check_schema_command(SCHEMA[name])
    tokens(SCHEMA[name])  # lexes cleanly too


def test_one_constraint_per_label():
    labels = [_CONSTRAINT.fullmatch(s)["label"] for s in cypher.schema_statements()]
    assert sorted(labels) == sorted(NODE_LABELS)


def test_output_schema_is_the_vector_index_and_one_model_index_per_output_type():
    vector, *rel_indexes = cypher.output_schema_statements(384, "euclidean")
    m = _VECTOR_INDEX.fullmatch(vector)
    assert m and (m["dim"], m["sim"]) == ("384", "euclidean")
    assert sorted(_REL_INDEX.fullmatch(s)["type"] for s in rel_indexes) == sorted(OUTPUT_REL_TYPES)
    assert cypher.vector_index(np.int64(16)) == cypher.vector_index(16)  # numpy ints (a shape) are fine


@pytest.mark.parametrize("bad", [0, -1, 4097, 10**9, 1.0, 128.5, "128", "128}} //", None, True, np.float32(8),
                                 [128]])
def test_vector_index_rejects_dimensions_that_are_not_a_sane_int(bad):
    with pytest.raises(ValueError, match="vector dimensions must be"):
        cypher.vector_index(bad)


@pytest.mark.parametrize("bad", ["dot", "COSINE", "cosine'}} DROP INDEX x //", "", "cosine "])
def test_vector_index_rejects_similarities_outside_the_allow_list(bad):
    with pytest.raises(ValueError, match="unknown vector similarity"):
        cypher.vector_index(64, bad)


@pytest.mark.parametrize("bad", ["product", "Product) DETACH DELETE n //", "Product`", "", "KGMeta",
                                 "Product:User", "Product {id: 'x'}", " Product"])
@pytest.mark.parametrize("builder", [cypher.constraint, cypher.upsert_nodes, cypher.read_nodes, cypher.delete_nodes])
def test_label_builders_reject_names_outside_the_allow_list(builder, bad):
    with pytest.raises(ValueError, match="unknown node label"):
        builder(bad)


@pytest.mark.parametrize("bad", ["has_brand", "HAS_BRAND]->() DETACH DELETE r //", "INTERACTED|HAS_BRAND",
                                 "", "KNOWS", "ALSO_BOUGHT`", "RECOMMENDED", "SIMILAR_TO"])
@pytest.mark.parametrize("builder", [cypher.merge_relationships, cypher.delete_relationships,
                                     cypher.read_relationships, cypher.max_order])
def test_relationship_builders_reject_types_outside_the_allow_list(builder, bad):
    """The ingestion builders take input relationship types only: model output is not graph input."""
    with pytest.raises(ValueError, match="unknown relationship type"):
        builder(bad)


@pytest.mark.parametrize("bad", ["recommended", "RECOMMENDED]->() DETACH DELETE r //", "RECOMMENDED|SIMILAR_TO",
                                 "", "ALSO_BOUGHT", "INTERACTED", "SIMILAR_TO`"])
@pytest.mark.parametrize("builder", [cypher.merge_output, cypher.prune_output, cypher.output_models,
                                     cypher.delete_output_model, cypher.output_model_index])
def test_output_builders_reject_types_outside_the_output_allow_list(builder, bad):
    with pytest.raises(ValueError, match="unknown output relationship type"):
        builder(bad)


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_values_travel_as_parameters(name):
    """No string literals; numbers only as structural constants (0, 1); labels and types allow-listed."""
    statement = STATEMENTS[name]
    toks = tokens(statement)
    literals = [t for kind, t in toks if kind in ("STRING_LITERAL", "CHAR_LITERAL")]
    numbers = {t for kind, t in toks if kind in ("Integer", "DIGIT", "FLOAT")}
    if m := _VECTOR_INDEX.fullmatch(statement):
        # index options cannot be parameters: the checked int and the allow-listed function, nothing else
        assert literals == [f"'{m['sim']}'"] and numbers <= {m["dim"], *m["dim"]}, (literals, numbers)
    else:
        assert not literals, f"string literal(s) {literals} in {name}: pass values as $parameters"
        assert numbers <= {"0", "1"}, f"numeric literal(s) {numbers} in {name}: pass values as $parameters"
    for label in re.findall(r"\(\w*:(\w+)", statement):
        assert label in (*NODE_LABELS, cypher.META_LABEL), f"label {label} in {name}"
    for types in re.findall(r"\[\w*:(\w+(?:\|\w+)*)", statement):
        for rtype in types.split("|"):
            assert rtype in (*REL_TYPES, *OUTPUT_REL_TYPES), f"relationship type {rtype} in {name}"


def test_write_statements_take_their_rows_as_one_parameter():
    for label in NODE_LABELS:
        assert set(re.findall(r"\$(\w+)", cypher.upsert_nodes(label))) == {"rows"}
    for t in REL_TYPES:
        for s in (cypher.merge_relationships(t), cypher.delete_relationships(t)):
            assert set(re.findall(r"\$(\w+)", s)) == {"rows"}
    # INTERACTED is identified by seq (many interactions per user-product pair); the rest by endpoints
    assert "[r:INTERACTED {seq: row.seq}]" in cypher.merge_relationships("INTERACTED")
    assert "[r:HAS_BRAND]" in cypher.merge_relationships("HAS_BRAND")


def test_output_statements_take_their_values_as_parameters():
    for t in OUTPUT_REL_TYPES:
        assert set(re.findall(r"\$(\w+)", cypher.merge_output(t))) == {"rows", "model"}
        assert set(re.findall(r"\$(\w+)", cypher.prune_output(t))) == {"rows", "model"}
        assert set(re.findall(r"\$(\w+)", cypher.delete_output_model(t))) == {"old", "batch"}
        # one relationship per (start, end, model): MERGE on the model, SET the rest
        assert f"MERGE (a)-[r:{t} {{model: $model}}]->(b) SET r.score = row.score, r.rank = row.rank" \
            in cypher.merge_output(t)
    assert set(re.findall(r"\$(\w+)", cypher.SET_EMBEDDINGS)) == {"rows", "model"}
    assert set(re.findall(r"\$(\w+)", cypher.CLEAR_OTHER_EMBEDDINGS)) == {"model", "batch"}


def test_exploration_queries_declare_their_parameters():
    assert len(cypher.EXPLORE) >= 5 and len(cypher.EXPLORE_RESULTS) >= 5
    assert set(cypher.EXPLORE) == set(cypher.EXPLORE_EXAMPLE_PARAMS)
    assert set(cypher.EXPLORE_RESULTS) == set(cypher.EXPLORE_RESULTS_EXAMPLE_PARAMS)
    for queries, examples in ((cypher.EXPLORE, cypher.EXPLORE_EXAMPLE_PARAMS),
                              (cypher.EXPLORE_RESULTS, cypher.EXPLORE_RESULTS_EXAMPLE_PARAMS)):
        for name, query in queries.items():
            assert set(re.findall(r"\$(\w+)", query)) == set(examples[name]), name


# --- the docs: every page that shows Cypher shows the exploration queries as cypher/explore.cypher does -----
# Besides the exploration queries and kg/cypher.py's own statements, a page may show only these: views of
# the graph that docs/neo4j.md (section 3) offers Browser users as pictures and an overview. They are
# not exploration queries (kg.cypher.EXPLORE holds those), so they live on that one page only.
PAGES = doc_pages.pages()


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _squash(s: str) -> str:
    return doc_pages.squash(s)


def _all_explore() -> dict[str, tuple[str, dict]]:
    out = {n: (q, cypher.EXPLORE_EXAMPLE_PARAMS[n]) for n, q in cypher.EXPLORE.items()}
    out.update({n: (q, cypher.EXPLORE_RESULTS_EXAMPLE_PARAMS[n]) for n, q in cypher.EXPLORE_RESULTS.items()})
    return out


def _explore_by_statement() -> dict[str, doc_pages.Block]:
    """explore.cypher's blocks by their (squashed) statement."""
    return {_squash(b.statements[0]): b for b in doc_pages.explore_blocks()}


def test_docs_pages_with_cypher_are_found():
    """Pages are found by their ```cypher blocks, not listed: docs/neo4j.md is one, and every page found is
    the README or under docs/."""
    assert DOCS in PAGES, PAGES
    for page in PAGES:
        assert page == ROOT / "README.md" or (ROOT / "docs") in page.parents, page
        assert doc_pages.blocks(page), f"{_page_id(page)}: a ```cypher fence that the reader does not see"


def test_docs_show_every_exploration_query_with_its_params():
    """docs/neo4j.md shows every exploration query (with its :param lines); other pages may show none."""
    blocks = doc_pages.blocks(DOCS)
    for name, (query, example) in _all_explore().items():
        holding = [b for b in blocks if _squash(query) in map(_squash, b.statements)]
        assert holding, f"docs/neo4j.md does not show the exploration query {name!r} verbatim"
        assert set(holding[0].param_values()) >= set(example), f"{name}: missing :param lines"


def _not_exact(blocks: list[doc_pages.Block]) -> list[str]:
    """Each block that shows an exploration query but is not that query's block of cypher/explore.cypher line
    for line (the same `:param` lines with the same example values, then the same query, nothing else)."""
    explore = _explore_by_statement()
    problems = []
    for block in blocks:
        shown = [s for s in block.statements if _squash(s) in explore]
        if not shown:
            continue
        if len(block.statements) != 1:
            problems.append(f"{block.where}: an exploration query shares its block with another statement")
            continue
        want = explore[_squash(shown[0])]
        if block.lines != want.lines:
            problems.append(f"{block.where} is not {want.where} line for line:\n" + "\n".join(block.lines)
                            + "\n--- cypher/explore.cypher has:\n" + "\n".join(want.lines))
    return problems


def _classify(statement: str, page: Path) -> str | None:
    """What a statement shown on a page is, or None if it is none of what a page may show."""
    squashed = _squash(statement)
    if squashed in _explore_by_statement():
        return "exploration query"
    if statement.startswith("SHOW "):
        return "listing command"  # shown for Browser users (SHOW VECTOR INDEXES, ...)
    if _SCHEMA.match(statement):
        return "schema command"  # checked against the Neo4j 5 syntax in test_every_query_in_the_docs_parses
    if squashed in {_squash(s) for s in STATEMENTS.values()}:
        return "kg/cypher.py statement"  # the write-back and ingestion statements, as the project sends them
    return None


def _unknown(blocks: list[doc_pages.Block], page: Path) -> list[str]:
    """Each statement that is not an exploration query of cypher/explore.cypher, a statement of kg/cypher.py,
    or a schema or listing command."""
    import difflib
    names = {_squash(q): n for n, (q, _) in _all_explore().items()}
    problems = []
    for block in blocks:
        for statement in block.statements:
            if _classify(statement, page) is None:
                near = difflib.get_close_matches(_squash(statement), names, n=1, cutoff=0.6)
                hint = f"; it looks like a drifted copy of {names[near[0]]!r}" if near else ""
                problems.append(f"{block.where} shows a query that is not in cypher/explore.cypher, or kg/cypher.py"
                                f"{hint}:\n{statement}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_pages_show_exploration_queries_exactly_as_explore_cypher(page):
    problems = _not_exact(doc_pages.blocks(page))
    assert not problems, "\n\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_pages_show_no_other_query(page):
    """A drifted copy of an exploration query, or a query nobody maintains, fails here."""
    problems = _unknown(doc_pages.blocks(page), page)
    assert not problems, "\n\n".join(problems)


def test_a_drifted_copy_is_refused(tmp_path):
    """The two checks above on a made-up page: the exact block passes; a copy with one changed clause, one
    changed :param value, a missing :param line, or a query kg/cypher.py does not hold does not."""
    block = next(b for b in doc_pages.explore_blocks() if "[rec:RECOMMENDED]->(p:Product {id: $product_id})"
                 in b.statements[0])
    exact = "\n".join(block.lines)
    cases = {
        "exact": exact,
        "changed clause": exact.replace("LIMIT $k", "LIMIT 5"),
        "changed :param": exact.replace(":param k => 25", ":param k => 10"),
        "missing :param": exact.replace(":param k => 25\n", ""),
        "unmaintained query": "MATCH (n:Product)\nRETURN n.id AS product\nLIMIT $k",
    }
    assert len(set(cases.values())) == len(cases)
    page = tmp_path / "made-up.md"
    page.write_text("".join(f"# {name}\n\n```cypher\n{text}\n```\n\n" for name, text in cases.items()),
                    encoding="utf-8")
    blocks = dict(zip(cases, doc_pages.blocks(page)))
    for name, b in blocks.items():
        problems = _not_exact([b]) + _unknown([b], page)
        assert bool(problems) == (name != "exact"), (name, problems)
    assert "drifted copy of 'why_recommended'" in _unknown([blocks["changed clause"]], page)[0]


def test_explore_file_holds_every_exploration_query_and_parses():
    blocks = doc_pages.explore_blocks()
    assert all(len(b.statements) == 1 for b in blocks), [b.where for b in blocks if len(b.statements) != 1]
    statements = [b.statements[0] for b in blocks]
    for s in statements:
        parse(s)
    expected = _all_explore()
    assert sorted(map(_squash, statements)) == sorted(_squash(q) for q, _ in expected.values())
    for block in blocks:
        name = next(n for n, (q, _) in expected.items() if _squash(q) == _squash(block.statements[0]))
        declared = {re.match(r":param (\w+) =>", p)[1] for p in block.params}
        assert declared == set(expected[name][1]), f"{name}: :param lines {declared}"
        assert block.param_values() == expected[name][1], f"{name}: :param values {block.param_values()}"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_query_in_the_docs_parses(page):
    blocks = doc_pages.blocks(page)
    assert len(blocks) >= (5 if page == DOCS else 1)
    for block in blocks:
        for statement in block.statements:
            if statement.startswith("SHOW "):
                continue  # listing commands shown for Browser users
            if _SCHEMA.match(statement):
                _check_schema_command(" ".join(statement.split()))
            else:
                parse(statement)
