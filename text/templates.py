"""The one template that turns a product row into the text the encoder reads.

Template (fields in priority order, because the encoder truncates from the end)::

    {title}. Brand: {brand}. Category: {path_1}; {path_2}. {description}

* ``categories`` holds category paths whose levels are joined by ``" > "`` and whose
  paths are joined by ``" | "``; they are written as ``path_1; path_2``.
* A field that is missing, NaN or blank is dropped together with its label, so a
  product without a description still reads ``"{title}. Brand: {brand}. Category: ..."``
  and gets an embedding of its title, brand and category.
* Whitespace is collapsed, HTML tags are removed and trailing ``.``/``,``/``;`` of each
  field are dropped before the template adds its own separator.

Example::

    >>> product_text({"title": "Stanley Staples.", "brand": "Stanley",
    ...               "categories": "Industrial & Scientific > Fasteners", "description": None})
    'Stanley Staples. Brand: Stanley. Category: Industrial & Scientific > Fasteners.'
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:  # pandas is imported lazily: `import text` must stay fast
    import pandas as pd

__all__ = ["PRODUCT_COLUMNS", "TEMPLATE", "product_text"]

PRODUCT_COLUMNS = ("product_id", "title", "description", "brand", "categories")
TEMPLATE = "{title}. Brand: {brand}. Category: {categories}. {description}"

_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_SPACE = re.compile(r"\s+")
_TEXT_FIELDS = ("title", "brand", "categories", "description")


def _clean(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if not isinstance(value, str):
        try:  # pandas.NA and friends
            import pandas as pd

            if pd.isna(value):
                return ""
        except (TypeError, ValueError, ImportError):
            pass
        value = str(value)
    value = _TAG.sub(" ", value)
    return _SPACE.sub(" ", value).strip().rstrip(".,;: ").strip()


def _categories(value: Any) -> str:
    paths = [_clean(p) for p in _clean(value).split("|")]
    return "; ".join(p for p in paths if p)


def _one(row: Mapping[str, Any]) -> str:
    get = row.get
    title, brand = _clean(get("title")), _clean(get("brand"))
    categories, description = _categories(get("categories")), _clean(get("description"))
    parts = []
    if title:
        parts.append(f"{title}.")
    if brand:
        parts.append(f"Brand: {brand}.")
    if categories:
        parts.append(f"Category: {categories}.")
    if description:
        parts.append(f"{description}.")
    return " ".join(parts)


@overload
def product_text(products: "pd.DataFrame") -> "pd.Series": ...
@overload
def product_text(products: "pd.Series | Mapping[str, Any]") -> str: ...


def product_text(products):
    """Render products with :data:`TEMPLATE`.

    Args:
        products: one product (a ``pandas.Series`` or mapping with some of the columns
            ``title``, ``brand``, ``categories``, ``description``) or a DataFrame of them.

    Returns:
        ``str`` for one product; for a DataFrame a ``Series[str]`` with the frame's index.
    """
    import pandas as pd

    if isinstance(products, pd.DataFrame):
        present = [c for c in _TEXT_FIELDS if c in products.columns]
        if not present:
            raise ValueError(
                f"product_text expected a DataFrame with at least one of the columns {list(_TEXT_FIELDS)}, "
                f"got columns {list(products.columns)}"
            )
        columns = {c: products[c].tolist() for c in present}
        rows = ({c: columns[c][i] for c in present} for i in range(len(products)))
        return pd.Series([_one(r) for r in rows], index=products.index, dtype=object, name="text")
    if isinstance(products, (pd.Series, Mapping)):
        return _one(products)
    raise ValueError(
        f"product_text expected a pandas DataFrame, Series or mapping of product fields, got {type(products).__name__}"
    )
