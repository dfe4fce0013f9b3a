"""The query API over a trained fusion model (`Recommender`: recommend, search, similar, explain, add_products)
and its parts: exact top-k and FAISS indexes, the immutable snapshot, catalog filters, search blending,
explanation paths, cold start and the result frames. It reads the model core only; never the evaluation."""
from .ann import ANNConfig, FaissIndex
from .catalog import Catalog, ProductInputError
from .query import Recommender, UnknownUserWarning
from .results import Explanation, UnknownIdError
from .search import SearchBlend
from .topk import ExactIndex, TopKIndex

__all__ = ["Recommender", "UnknownUserWarning", "Explanation", "UnknownIdError", "SearchBlend", "ExactIndex",
           "TopKIndex", "FaissIndex", "ANNConfig", "Catalog", "ProductInputError"]
