"""The fixed schema of the knowledge graph: node labels, relationship types and their endpoints.

Everything that reaches Cypher as a label or a relationship type comes from the allow-lists here,
so user input can never inject one.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "USER", "PRODUCT", "BRAND", "CATEGORY", "NODE_LABELS", "NODE_PROPERTIES",
    "INTERACTED", "HAS_BRAND", "IN_CATEGORY", "SUBCATEGORY_OF", "PRODUCT_RELATIONS",
    "REL_TYPES", "RelSpec", "REL_SPECS", "CATEGORY_LEVEL_SEP", "CATEGORY_PATH_SEP",
    "normalize_brand", "normalize_name", "split_category_paths", "category_key",
    "relation_type", "check_label", "check_rel_type",
    "RECOMMENDED", "SIMILAR_TO", "OUTPUT_REL_SPECS", "OUTPUT_REL_TYPES", "check_output_rel_type",
]

USER, PRODUCT, BRAND, CATEGORY = "User", "Product", "Brand", "Category"
NODE_LABELS: tuple[str, ...] = (USER, PRODUCT, BRAND, CATEGORY)

# Properties per label besides the key `id` (the external id, unique per label).
NODE_PROPERTIES: dict[str, tuple[str, ...]] = {
    USER: (),
    # in_catalog is False for products that appear only as the far end of a relation
    # (e.g. an also_bought ASIN outside the shop): they carry signal but are never recommended.
    PRODUCT: ("title", "description", "price", "in_catalog"),
    BRAND: ("name",),
    CATEGORY: ("name", "level"),
}

INTERACTED, HAS_BRAND, IN_CATEGORY, SUBCATEGORY_OF = (
    "INTERACTED", "HAS_BRAND", "IN_CATEGORY", "SUBCATEGORY_OF")

# Product-to-product facts accepted in a relations file (`relation` column, any case).
PRODUCT_RELATIONS: tuple[str, ...] = (
    "ALSO_BOUGHT", "ALSO_VIEWED", "BOUGHT_TOGETHER", "BOUGHT_AFTER_VIEWING",
    "SUBSTITUTE_OF", "COMPLEMENT_OF", "ACCESSORY_OF", "VARIANT_OF", "RELATED_TO",
)


@dataclass(frozen=True)
class RelSpec:
    """A relationship type, its endpoint labels and its properties (besides the endpoints)."""

    type: str
    src: str
    dst: str
    properties: tuple[str, ...] = ()


REL_SPECS: dict[str, RelSpec] = {
    INTERACTED: RelSpec(INTERACTED, USER, PRODUCT, ("timestamp", "seq", "event", "weight")),
    HAS_BRAND: RelSpec(HAS_BRAND, PRODUCT, BRAND),
    IN_CATEGORY: RelSpec(IN_CATEGORY, PRODUCT, CATEGORY),
    SUBCATEGORY_OF: RelSpec(SUBCATEGORY_OF, CATEGORY, CATEGORY),
    **{r: RelSpec(r, PRODUCT, PRODUCT) for r in PRODUCT_RELATIONS},
}
REL_TYPES: tuple[str, ...] = tuple(REL_SPECS)

# What the trained model writes back (scripts/export_to_neo4j.py): each user's top k and each product's
# nearest products, tagged with the model version. Deliberately outside REL_SPECS: ingestion,
# `Neo4jStore.load()` and the training graph never see them, and no input file can create one
# (`relation_type` accepts PRODUCT_RELATIONS only, `check_rel_type` rejects these).
RECOMMENDED, SIMILAR_TO = "RECOMMENDED", "SIMILAR_TO"
OUTPUT_REL_SPECS: dict[str, RelSpec] = {
    RECOMMENDED: RelSpec(RECOMMENDED, USER, PRODUCT, ("score", "rank", "model")),
    SIMILAR_TO: RelSpec(SIMILAR_TO, PRODUCT, PRODUCT, ("score", "rank", "model")),
}
OUTPUT_REL_TYPES: tuple[str, ...] = tuple(OUTPUT_REL_SPECS)

CATEGORY_LEVEL_SEP = " > "
CATEGORY_PATH_SEP = " | "

_WS = re.compile(r"\s+")


def normalize_name(value: str) -> str:
    """Display form of a name: Unicode NFKC, outer whitespace stripped, inner runs collapsed to one space."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", value)).strip()


def normalize_brand(value: str) -> str:
    """Brand key: `normalize_name`, then case-folded. "  ACME  Tools" and "acme tools" are one brand."""
    return normalize_name(value).casefold()


def split_category_paths(value: str) -> list[list[str]]:
    """Parse "A > B > C | A > D" into [["A","B","C"], ["A","D"]], names normalised, empty levels dropped."""
    paths = []
    for raw in value.split(CATEGORY_PATH_SEP.strip()):
        levels = [normalize_name(x) for x in raw.split(CATEGORY_LEVEL_SEP.strip())]
        levels = [x for x in levels if x]
        if levels and levels not in paths:
            paths.append(levels)
    return paths


def category_key(levels: list[str] | tuple[str, ...]) -> str:
    """Category node id: the case-folded path from the root, so one name under two parents is two nodes."""
    return CATEGORY_LEVEL_SEP.join(x.casefold() for x in levels)


def relation_type(value: str) -> str | None:
    """Map a relations-file `relation` value ("also_bought") to its allow-listed type, or None."""
    t = _WS.sub("_", value.strip()).upper()
    return t if t in PRODUCT_RELATIONS else None


def check_label(label: str) -> str:
    """Return `label` if it is an allow-listed node label, else raise ValueError."""
    if label not in NODE_LABELS:
        raise ValueError(f"unknown node label {label!r}; allowed: {', '.join(NODE_LABELS)}")
    return label


def check_rel_type(rel_type: str) -> str:
    """Return `rel_type` if it is an allow-listed relationship type, else raise ValueError."""
    if rel_type not in REL_SPECS:
        raise ValueError(f"unknown relationship type {rel_type!r}; allowed: {', '.join(REL_TYPES)}")
    return rel_type


def check_output_rel_type(rel_type: str) -> str:
    """Return `rel_type` if it is a relationship type the model writes back, else raise ValueError."""
    if rel_type not in OUTPUT_REL_SPECS:
        raise ValueError(f"unknown output relationship type {rel_type!r}; allowed: {', '.join(OUTPUT_REL_TYPES)}")
    return rel_type
