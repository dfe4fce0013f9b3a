"""Text-only baseline: a user is the mean of the text vectors of the items in their history.

.. math::
    \\mathbf{u} = \\frac{1}{|I_u|} \\sum_{j \\in I_u} \\mathbf{t}_j, \\qquad s_{ui} = \\mathbf{u}^\\top \\mathbf{t}_i

where :math:`\\mathbf{t}_i` is the L2-normalised description-encoder vector of item :math:`i` (issue 3,
`text.TextEncoder`) computed from title, description, brand and category path. No collaborative signal:
it shows how far content alone gets and is the natural cold-start peer.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kg.export import products_frame

from ...data import TrainData
from ...ranking_model import RankingModel

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
        t = vecs.detach().cpu().numpy().astype(np.float32)
        t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
        ui = train.user_items
        n = np.maximum(np.asarray(ui.sum(axis=1)).ravel(), 1.0)
        self._profiles = np.asarray((sp.diags(1.0 / n) @ ui) @ t, dtype=np.float32)
        self._t = t
        return self

    def score(self, user_idx: np.ndarray) -> np.ndarray:
        return self._profiles[user_idx] @ self._t.T
