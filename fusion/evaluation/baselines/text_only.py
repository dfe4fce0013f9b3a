"""Text-only baseline: a user is the mean of the text vectors of the items in their history.

.. math::
    \\mathbf{u} = \\frac{1}{|I_u|} \\sum_{j \\in I_u} \\mathbf{t}_j, \\qquad s_{ui} = \\mathbf{u}^\\top \\mathbf{t}_i

where :math:`\\mathbf{t}_i` is the L2-normalised description-encoder vector of item :math:`i` (issue 3,
`text.TextEncoder`) computed from title, description, brand and category path. No collaborative signal:
it shows how far content alone gets and is the natural cold-start peer.
"""
from __future__ import annotations

import numpy as np

from kg.export import products_frame

from ...data import TrainData
from ...ranking_model import RankingModel
from ...vectors import history_means, unit_rows

__all__ = ["TextOnly"]


class TextOnly(RankingModel):
    """Mean-of-history in text space.

    Args:
        show_progress: show the encoder's progress bar when vectors are not cached (default False).
    """

    name = "text_only"

    def __init__(self, show_progress: bool = False) -> None:
        self.show_progress = show_progress

    def fit(self, train: TrainData) -> "TextOnly":
        import text

        frame = products_frame(train.graph, train.items)
        enc = text.TextEncoder(text.EncoderConfig())
        ids, vecs = text.encode_products(enc, frame, train.cache_dir, show_progress=self.show_progress)
        if list(ids) != frame["product_id"].tolist():
            raise ValueError("encode_products returned ids in a different order than the products given")
        t = unit_rows(vecs.detach().cpu().numpy().astype(np.float32))
        self._profiles = history_means(train.user_items, t)
        self._t = t
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._profiles[user_idx] @ self._t.T
