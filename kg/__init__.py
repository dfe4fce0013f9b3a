"""Knowledge graph: schema, id maps, input validation, ingestion, and the graph stores.

`import kg` stays light (pandas only); torch_geometric / networkx / neo4j load when first used.
"""
from .build import BuildResult, OnError, merge_files
from .embedded_store import EmbeddedStore
from .errors import InputError, RowProblem, write_skip_report
from .graph import KnowledgeGraph, assert_graphs_equal
from .idmap import IdMap, UnknownIdError
from .ingest import Changes, Delta
from .layout import CATALOG, OTHER_PRODUCTS, layout_edges, node_layout
from .schema import (BRAND, CATEGORY, NODE_LABELS, OUTPUT_REL_TYPES, PRODUCT, PRODUCT_RELATIONS, RECOMMENDED,
                     REL_SPECS, REL_TYPES, SIMILAR_TO, USER, normalize_brand, normalize_name, split_category_paths)

__all__ = [
    "BuildResult", "OnError", "merge_files", "EmbeddedStore", "InputError", "RowProblem", "write_skip_report",
    "KnowledgeGraph", "assert_graphs_equal", "IdMap", "UnknownIdError", "Changes", "Delta",
    "BRAND", "CATEGORY", "NODE_LABELS", "PRODUCT", "PRODUCT_RELATIONS", "REL_SPECS", "REL_TYPES", "USER",
    "normalize_brand", "normalize_name", "split_category_paths",
    "OUTPUT_REL_TYPES", "RECOMMENDED", "SIMILAR_TO",
    "CATALOG", "OTHER_PRODUCTS", "layout_edges", "node_layout",
    "to_hetero_data", "to_networkx", "Neo4jStore", "Neo4jConfig",
    "export_results", "Neo4jResultWriter", "CsvResultWriter", "DryRunWriter",
]

_LAZY = {"to_hetero_data": "export", "to_networkx": "export", "Neo4jStore": "neo4j_store",
         "Neo4jConfig": "neo4j_store", "export_results": "results", "Neo4jResultWriter": "result_writers",
         "CsvResultWriter": "result_writers", "DryRunWriter": "result_writers"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'kg' has no attribute {name!r}")
