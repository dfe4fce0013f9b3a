"""Tiny catalogs written by the tests themselves (no shared data needed)."""
from __future__ import annotations

from pathlib import Path

PRODUCTS = """product_id,title,description,brand,categories,price
p1,Steel staples,Narrow crown staples,Stanley,Tools > Fasteners > Staples,3.5
p2,Claw hammer,,stanley ,Tools > Hand Tools | Home > Tools,
p3,Wood glue,Dries clear,Elmer's,Home > Craft,1
p4,Brad nails,,ACME  Tools,Tools > Fasteners > Nails,2.25
"""
INTERACTIONS = """user_id,product_id,timestamp,event,weight
u1,p1,2014-01-01,purchase,1
u1,p2,2014-01-03,view,0.5
u2,p2,1400000000,purchase,
u2,p3,,purchase,
u3,p4,2014-02-01T10:30:00Z,,
u3,p1,2014-02-02,,
"""
RELATIONS = """product_id,relation,other_id
p1,also_bought,p2
p1,also_bought,X9
p3,bought_together,p2
"""


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def tiny_files(tmp: Path) -> tuple[Path, Path, Path]:
    return write(tmp, "products.csv", PRODUCTS), write(tmp, "interactions.csv", INTERACTIONS), \
        write(tmp, "relations.csv", RELATIONS)


def graph_with_relations(tmp: Path, relations: str):
    """The tiny catalog and interactions above with `relations` (a relations.csv text) merged into a new graph."""
    from kg import KnowledgeGraph, merge_files

    g = KnowledgeGraph()
    merge_files(g, write(tmp, "p.csv", PRODUCTS), write(tmp, "i.csv", INTERACTIONS), write(tmp, "r.csv", relations),
                show_progress=False)
    return g
