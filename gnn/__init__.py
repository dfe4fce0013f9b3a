"""Entity embeddings over the knowledge graph (relation-aware LightGCN): full batch, or from neighbour-sampled
subgraphs for training (`gnn.sampling`, needs torch-sparse or pyg-lib)."""
from .encoder import GNNConfig, KGEncoder
from .graph_index import EntityIndex, build_entity_index
from .sampling import NeighborSampledEncoder, sampling_available

__all__ = ["GNNConfig", "KGEncoder", "EntityIndex", "build_entity_index", "NeighborSampledEncoder",
           "sampling_available"]
