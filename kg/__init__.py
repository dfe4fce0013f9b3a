"""Knowledge graph: schema, id maps, input validation, ingestion, and the graph stores.

`import kg` stays light (pandas only); torch_geometric / networkx / neo4j load when first used.
"""
from .build import BuildResult, OnError, merge_files
from .embedded_store import EmbeddedStore
from .errors import InputError, RowProblem, write_skip_report
from .graph import KnowledgeGraph, assert_graphs_equal
from .idmap import IdMap, UnknownIdError
from .ingest import Changes, Delta
from .schema import (BRAND, CATEGORY, NODE_LABELS, PRODUCT, PRODUCT_RELATIONS, REL_SPECS, REL_TYPES, USER,
                     normalize_brand, normalize_name, split_category_paths)

__all__ = [
    "BuildResult", "OnError", "merge_files", "EmbeddedStore", "InputError", "RowProblem", "write_skip_report",
    "KnowledgeGraph", "assert_graphs_equal", "IdMap", "UnknownIdError", "Changes", "Delta",
    "BRAND", "CATEGORY", "NODE_LABELS", "PRODUCT", "PRODUCT_RELATIONS", "REL_SPECS", "REL_TYPES", "USER",
    "normalize_brand", "normalize_name", "split_category_paths",
    "to_hetero_data", "to_networkx", "Neo4jStore", "Neo4jConfig",
]

_LAZY = {"to_hetero_data": "export", "to_networkx": "export", "Neo4jStore": "neo4j_store",
         "Neo4jConfig": "neo4j_store"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'kg' has no attribute {name!r}")
