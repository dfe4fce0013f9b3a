"""The package layout: imports point one way, kg -> (gnn, text) -> fusion core -> fusion.evaluation / fusion.serving.

Every import is read from the source (module level and inside functions alike), so a cycle cannot hide in a
function body. `fusion/__init__.py` is the package's lazy front door (`from fusion import Recommender`) and is
not a room of its own.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# room -> rooms it may import from (besides itself)
ALLOWED = {
    "kg": set(),
    "gnn": {"kg"},
    "text": {"kg"},
    "fusion": {"kg", "gnn", "text"},
    "fusion.evaluation": {"kg", "gnn", "text", "fusion"},
    "fusion.serving": {"kg", "gnn", "text", "fusion"},
}


def _room(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "fusion" and len(parts) > 1 and parts[1] in ("evaluation", "serving"):
        return f"fusion.{parts[1]}"
    return parts[0] if parts[0] in ALLOWED else None


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, relative ones resolved."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from . import x` / `from fusion import serving`: the names may be submodules
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names] if not node.module or mod in (
                "fusion", "fusion.evaluation", "fusion.serving") else [(node.lineno, mod)]
    return out


def _sources() -> list[Path]:
    return sorted(p for pkg in ALLOWED if "." not in pkg for p in (ROOT / pkg).rglob("*.py"))


def test_every_module_belongs_to_a_room():
    rooms = {_room(_module_name(p)) for p in _sources()}
    assert rooms == set(ALLOWED)
    assert (ROOT / "fusion" / "evaluation" / "baselines").is_dir()
    assert not (ROOT / "fusion" / "baselines").exists()


def _crossings():
    """(path, line, from room, imported module, to room) of every import from one room into another (the
    front door left out: it names the serving API for `from fusion import Recommender`)."""
    for path in _sources():
        if path == ROOT / "fusion" / "__init__.py":
            continue
        here = _room(_module_name(path))
        for line, mod in _imports(path):
            there = _room(mod)
            if there is not None and there != here:
                yield path, line, here, mod, there


def test_imports_point_one_way():
    bad = [f"{path.relative_to(ROOT)}:{line} ({here}) imports {mod} ({there})"
           for path, line, here, mod, there in _crossings() if there not in ALLOWED[here]]
    assert not bad, "imports against the layout:\n" + "\n".join(bad)


def test_import_checker_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    """The checker itself: a relative import inside a function is resolved and attributed to its room."""
    mod = ROOT / "fusion" / "trainer.py"
    found = dict((m, ln) for ln, m in _imports(mod))
    assert "fusion.metrics" in found and "fusion.data" in found
    fake = ROOT / "fusion" / "serving" / "users.py"
    assert any(m == "fusion.data" for _, m in _imports(fake))
    assert _room("fusion.evaluation.baselines.ease") == "fusion.evaluation"
    assert _room("fusion.item_item") == "fusion"


@pytest.mark.parametrize("name", ["Recommender", "FusionRecommender", "RankingModel", "TrainData", "FaissIndex",
                                  "SearchBlend", "ItemItemHead"])
def test_public_names_from_the_front_door(name):
    import fusion

    assert getattr(fusion, name).__name__ == name


def test_one_class_named_recommender():
    import fusion
    from fusion.evaluation import baselines

    assert fusion.Recommender.__module__ == "fusion.serving.query"
    assert all(issubclass(cls, fusion.RankingModel) for cls in baselines.BASELINES.values())
    assert issubclass(fusion.FusionRecommender, fusion.RankingModel)
    assert not hasattr(baselines, "Recommender")


def room_edges() -> dict[tuple[str, str], int]:
    """(from room, to room) -> number of imports, over the whole tree."""
    edges: dict[tuple[str, str], int] = {}
    for _, _, here, _, there in _crossings():
        edges[(here, there)] = edges.get((here, there), 0) + 1
    return edges


if __name__ == "__main__":  # python tests/unit/test_layout.py: the import graph between the rooms
    for (a, b), n in sorted(room_edges().items()):
        print(f"{a:18s} -> {b:18s} {n} imports")
