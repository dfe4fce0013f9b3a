"""Entity embeddings over the knowledge graph (relation-aware LightGCN, full batch)."""
from .encoder import GNNConfig, KGEncoder
from .graph_index import EntityIndex, build_entity_index

__all__ = ["GNNConfig", "KGEncoder", "EntityIndex", "build_entity_index"]
