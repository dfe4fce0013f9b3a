"""Tiny graphs for the evaluation and baseline tests, built from CSVs through the real ingestion path."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from kg import KnowledgeGraph, merge_files

BLOCK = 10  # users and items per block


def build_graph(tmp_path: Path, products: pd.DataFrame, interactions: pd.DataFrame) -> KnowledgeGraph:
    p, i = tmp_path / "products.csv", tmp_path / "interactions.csv"
    products.to_csv(p, index=False)
    interactions.to_csv(i, index=False)
    g = KnowledgeGraph()
    merge_files(g, p, i, show_progress=False)
    return g


def checker_board(tmp_path: Path) -> tuple[KnowledgeGraph, dict[str, str]]:
    """Two blocks: users a0..a9 bought items A0..A9 (brand acme, Food > Fruit), users b0..b9 items B0..B9
    (brand bolt, Tools > Hammers). Each user misses exactly one item of their own block, the held-out
    answer: user x{k} misses X{k}. Returns the graph (training interactions only) and user -> held-out item.
    """
    prods, inter, held = [], [], {}
    for blk, brand, cat, words in (("A", "Acme", "Food > Fruit", "fresh red apple fruit juice snack"),
                                   ("B", "Bolt", "Tools > Hammers", "steel claw hammer tool nail workshop")):
        for k in range(BLOCK):
            prods.append({"product_id": f"{blk}{k}", "title": f"{words.split()[k % 6]} {words}",
                          "description": words, "brand": brand, "categories": cat})
        for u in range(BLOCK):
            user = f"{blk.lower()}{u}"
            held[user] = f"{blk}{u}"
            for k in range(BLOCK):
                if k != u:
                    inter.append({"user_id": user, "product_id": f"{blk}{k}", "timestamp": 1000 + k})
    return build_graph(tmp_path, pd.DataFrame(prods), pd.DataFrame(inter)), held
