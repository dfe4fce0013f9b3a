"""The tiny catalog both Neo4j test modules build (unit tests with a fake driver, live integration tests)."""
from __future__ import annotations

from pathlib import Path

PRODUCTS = """product_id,title,description,brand,categories,price
B0001,Rose Cream,"Face cream, 50ml",Acme,Beauty > Skin Care > Face | Beauty > Gifts,12.5
B0002,Lip Balm,,acme,Beauty > Lips,
B0003,Shampoo,Mild,Hairy Co,Beauty > Hair,7
"""
INTERACTIONS = """user_id,product_id,timestamp,event,weight
U1,B0001,2014-04-18,purchase,1
U1,B0002,,view,
U2,B0001,1400000000,view,1
U2,B0003,2014-05-01T10:00:00Z,purchase,2
U2,B0003,2014-05-01T10:00:00Z,purchase,2
"""
RELATIONS = """product_id,other_id,relation
B0001,B0002,also_bought
B0001,X9,also_viewed
B0003,X9,also_viewed
"""


def write_files(tmp_path: Path) -> dict[str, Path]:
    """products.csv, interactions.csv, relations.csv in tmp_path."""
    out = {}
    for name, text in (("products", PRODUCTS), ("interactions", INTERACTIONS), ("relations", RELATIONS)):
        out[name] = tmp_path / f"{name}.csv"
        out[name].write_text(text, encoding="utf-8")
    return out
