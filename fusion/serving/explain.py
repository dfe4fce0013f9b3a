"""Why a product suits a user: real knowledge-graph paths from the user's history to the product, in words.

Path kinds, from history item X to product P:

    related         User -INTERACTED-> X -ALSO_BOUGHT|ALSO_VIEWED|BOUGHT_TOGETHER|...- P
    co_interaction  User -INTERACTED-> X <-INTERACTED- other User -INTERACTED-> P
    next            the same shape, X the user's most recent product and P what those other users chose right
                    after X (the next-item memory of `fusion.item_item`, in words)
    brand           User -INTERACTED-> X -HAS_BRAND-> B <-HAS_BRAND- P
    category        User -INTERACTED-> X -IN_CATEGORY-> leaf (-SUBCATEGORY_OF->)* C
                                         (<-SUBCATEGORY_OF-)* leaf' <-IN_CATEGORY- P
                    C = the most specific category X and P share; one that holds more than half of the
                    catalog (a root such as "Industrial & Scientific") explains nothing and is skipped.

Each path is scored by the model:

    score = recency(X) * (1 + cos(F_X, F_P)) / 2 * w_kind

recency(X) is the model's learned position weight of X's last position in the user's history (softmax of
`position_logits` over the last `history_len` items, scaled so that the most recent item has 1; older items
keep the oldest weight; uniform for `history_order="set"`), F the fused product vectors, and w_kind
(`PATH_WEIGHTS`) 1.0 for a product relation, 0.95 * n / (n + 1) for n users who chose P right after X,
0.9 * n / (n + 1) for n co-interacting users, 0.8 for the
brand and 0.7 * specificity for a category, specificity = 1 - log(size) / log(catalog size) clipped to
[0.1, 1]. The best `max_paths` paths come first; no path at all gives an empty list.
"""
from __future__ import annotations

import numpy as np

from kg.schema import HAS_BRAND, IN_CATEGORY, INTERACTED, SUBCATEGORY_OF

from .catalog import Catalog
from .results import Explanation
from .users import UserHistory

__all__ = ["PATH_WEIGHTS", "explain_paths", "recency_weights"]

PATH_WEIGHTS = {"related": 1.0, "next": 0.95, "co_interaction": 0.9, "brand": 0.8, "category": 0.7}
MAX_CATEGORY_SHARE = 0.5

_VERBS = {"purchase": "bought", "buy": "bought", "order": "bought", "bought": "bought", "view": "viewed",
          "click": "clicked on", "cart": "added to your cart", "add_to_cart": "added to your cart",
          "rating": "rated", "rate": "rated", "review": "reviewed", "wishlist": "saved"}
# relation -> (text when X -REL-> P, text when P -REL-> X); {x} is X's title
_RELATED_TEXT = {
    "ALSO_BOUGHT": ("customers who bought it also bought this", "customers who bought this also bought it"),
    "ALSO_VIEWED": ("customers who viewed it also viewed this", "customers who viewed this also viewed it"),
    "BOUGHT_TOGETHER": ("it is often bought together with this", "it is often bought together with this"),
    "BOUGHT_AFTER_VIEWING": ("customers who viewed it bought this", "customers who viewed this bought it"),
    "SUBSTITUTE_OF": ("it is a substitute for this", "this is a substitute for it"),
    "COMPLEMENT_OF": ("it complements this", "this complements it"),
    "ACCESSORY_OF": ("it is an accessory for this", "this is an accessory for it"),
    "VARIANT_OF": ("it is a variant of this", "this is a variant of it"),
    "RELATED_TO": ("it is related to this", "this is related to it"),
}


def recency_weights(model, length: int) -> np.ndarray:
    """float [length]: weight of the item k positions before the most recent (k = 0 first), 1 for k = 0."""
    L = model.config.history_len
    if model.config.history_order != "sequence":
        return np.ones(length)
    logits = model.position_logits.detach().numpy().astype(np.float64)[-L:][::-1]  # most recent first
    w = np.exp(logits - logits.max())
    w = w / w[0]
    if length > L:
        w = np.concatenate([w, np.full(length - L, w[-1])])
    return w[:length]


def _verb(event: object) -> str:
    return _VERBS.get(str(event).lower(), "interacted with")


def _short(title: str, n: int = 60) -> str:
    title = str(title) or "(untitled)"
    return title if len(title) <= n else title[: n - 1].rstrip() + "…"


def explain_paths(user: int, target: int, history: UserHistory, catalog: Catalog, normed: np.ndarray,
                  recency: np.ndarray, max_paths: int = 3) -> list[Explanation]:
    """Scored paths from user `user`'s history to product column `target` (see the module docstring).

    Args:
        normed: float [n, d] unit-length product vectors (catalog column order).
        recency: weights per position from the most recent (`recency_weights`), at least as long as the history.
    """
    items, events = history.items_of(user), history.events_of(user)
    if not len(items):
        return []
    uid = history.id_of(user)
    n = len(catalog)
    sizes = catalog.category_size()
    p_cats = set(catalog.cat_matrix[target].indices.tolist())
    p_users = history.users_of(target)
    p_brand = catalog.brand[target]
    paths: list[Explanation] = []
    last: dict[int, int] = {}
    for pos, x in enumerate(items):  # the most recent position of each distinct item
        last[int(x)] = pos
    for x, pos in last.items():
        if x == target:
            continue
        w = recency[len(items) - 1 - pos] * (1.0 + float(normed[x] @ normed[target])) / 2.0
        verb = _verb(events[pos])
        head = f'You {verb} "{_short(catalog.titles[x])}"'
        start = [("User", uid, uid), ("Product", str(catalog.ids[x]), str(catalog.titles[x]))]
        end = ("Product", str(catalog.ids[target]), str(catalog.titles[target]))

        def add(kind: str, weight: float, text: str, middle: list, rels: list[str]) -> None:
            paths.append(Explanation(text=text, score=float(w * weight), nodes=[*start, *middle, end],
                                     relations=[INTERACTED, *rels], kind=kind, via=str(catalog.ids[x])))

        for other, rel, outgoing in catalog.related.get(x, ()):
            if other == target:
                out_text, in_text = _RELATED_TEXT.get(rel, ("it is linked to this", "this is linked to it"))
                add("related", PATH_WEIGHTS["related"], f"{head}; {out_text if outgoing else in_text}.", [], [rel])
        co = np.setdiff1d(np.intersect1d(history.users_of(x), p_users, assume_unique=True), [user])
        after = [int(o) for o in co if _follows(history.items_of(int(o)), x, target)] if pos == len(items) - 1 else []
        if after:
            k = len(after)
            other = history.id_of(after[0])
            who = "other customer" if k == 1 else "other customers"
            add("next", PATH_WEIGHTS["next"] * k / (k + 1),
                f"{head} most recently; {k} {who} chose this right after it.",
                [("User", other, other)], [INTERACTED, INTERACTED])
        if len(co):
            k = len(co)
            other = history.id_of(int(co[0]))
            who = "other customer who" if k == 1 else "other customers who"
            add("co_interaction", PATH_WEIGHTS["co_interaction"] * k / (k + 1),
                f"{head}; {k} {who} interacted with it also interacted with this.",
                [("User", other, other)], [INTERACTED, INTERACTED])
        b = catalog.brand[x]
        if b >= 0 and b == p_brand:
            name = str(catalog.brand_names[b])
            add("brand", PATH_WEIGHTS["brand"], f"{head}, which has the same brand ({name}) as this.",
                [("Brand", str(catalog.brand_keys[b]), name)], [HAS_BRAND, HAS_BRAND])
        shared = [c for c in p_cats.intersection(catalog.cat_matrix[x].indices.tolist())
                  if sizes[c] <= MAX_CATEGORY_SHARE * n]
        if shared:
            c = max(shared, key=lambda c: (catalog.cat_levels[c], -sizes[c], -c))
            spec = float(np.clip(1.0 - np.log(max(sizes[c], 1)) / np.log(max(n, 2)), 0.1, 1.0))
            middle, rels = _category_chain(catalog, x, target, c)
            path = " > ".join(str(catalog.cat_names[a]) for a in catalog.ancestors(c))
            add("category", PATH_WEIGHTS["category"] * spec,
                f"{head}; this is in the same category: {catalog.cat_names[c]} ({path}).", middle, rels)
    paths.sort(key=lambda e: -e.score)
    return paths[:max_paths]


def _follows(items: np.ndarray, x: int, p: int) -> bool:
    """True when product p comes right after product x somewhere in one time-ordered history."""
    at = np.flatnonzero(np.asarray(items[:-1]) == x)
    return bool(len(at)) and bool((np.asarray(items)[at + 1] == p).any())


def _category_chain(catalog: Catalog, x: int, p: int, c: int) -> tuple[list, list[str]]:
    """Category nodes and relations from X up to the shared category c and down to P."""
    def up(col: int) -> list[int]:  # leaf .. c
        best = None
        for leaf in catalog.leaves[col]:
            anc = catalog.ancestors(leaf)
            if c in anc:
                chain = anc[anc.index(c):][::-1]
                if best is None or len(chain) < len(best):
                    best = chain
        return best or [c]

    a, b = up(x), up(p)[::-1]  # a: leaf_x .. c ; b: c .. leaf_p
    cats = a + b[1:]
    nodes = [("Category", str(catalog.cat_keys[k]), str(catalog.cat_names[k])) for k in cats]
    rels = [IN_CATEGORY] + [SUBCATEGORY_OF] * (len(a) - 1) + [SUBCATEGORY_OF] * (len(b) - 1) + [IN_CATEGORY]
    return nodes, rels
