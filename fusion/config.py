"""Typed configuration of the fusion model and its training, saved beside the weights as config.json."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from gnn import GNNConfig

from .sequence_tower import TowerConfig

__all__ = ["LossConfig", "TrainConfig", "ItemItemConfig", "ColdMixConfig", "FusionConfig", "ABLATIONS", "HISTORY_ORDERS", "USER_TOWERS", "SAMPLERS",
           "GRAPH_OFFSETS"]

HISTORY_ORDERS = ("sequence", "set")
USER_TOWERS = ("pool", "attention")
GRAPH_OFFSETS = ("max", "mean", "none")  # ColdMixConfig.graph_offset
SAMPLERS = ("full", "neighbor")
KG_PATH_KINDS = ("bpr", "softmax")
PATH_GROUPS = ("brand", "category", "related")


@dataclass
class LossConfig:
    """Weights of the three losses and the L2 term; a weight of 0 switches that loss off.

    Args:
        preference: implicit preference (softmax over all items; "bpr" for pairwise BPR, see `preference_kind`).
        text: InfoNCE between text-side vectors (history text, product text as a pseudo-query) and fused products.
        kg_path: pairwise KG path loss (user -> product -> brand/category/related -> product').
        l2: L2 on the embeddings a batch touches.
        num_negatives: 0 = softmax over every catalog item; N > 0 = sampled softmax over the positives of the
            batch plus N items drawn uniformly, shared by the batch (cheaper on large catalogs).
        mask_known: leave the user's other training items out of the softmax denominator (they are not negatives).
        temperature: InfoNCE temperature.
        text_negatives: sampled negatives per InfoNCE batch, besides the in-batch ones.
        kg_path_kind: "bpr" = the path's end against one random product (pairwise); "softmax" = the path's end
            against the preference loss's candidates (the same sampled negatives, or every product), so that a
            path end is ranked among many products as a purchase is.
        kg_path_groups: which path groups the KG path loss samples from ("brand", "category", "related");
            None = every group the graph has.
    """

    preference: float = 1.0
    text: float = 0.3
    kg_path: float = 0.3
    l2: float = 1e-5
    preference_kind: str = "softmax"
    num_negatives: int = 0
    mask_known: bool = True
    temperature: float = 0.1
    text_negatives: int = 256
    kg_path_kind: str = "bpr"
    kg_path_groups: list[str] | None = None

    def __post_init__(self) -> None:
        if self.kg_path_kind not in KG_PATH_KINDS:
            raise ValueError(f"loss.kg_path_kind must be one of {', '.join(KG_PATH_KINDS)}, got {self.kg_path_kind!r}")
        bad = sorted(set(self.kg_path_groups or ()) - set(PATH_GROUPS))
        if bad:
            raise ValueError(f"loss.kg_path_groups: unknown group(s) {bad}; choose from {', '.join(PATH_GROUPS)}")


@dataclass
class TrainConfig:
    """Optimisation: epochs, batch, learning rate, early stopping on validation NDCG@10, seed.

    Args:
        sampler: how a training batch gets its graph embeddings. "full" = propagate over the whole entity graph
            every batch. "neighbor" = only the entities the batch touches (its users and the products its losses
            read), each from a neighbour-sampled subgraph around it (`gnn.sampling`; needs torch-sparse or
            pyg-lib). Same weights either way; evaluation and scoring always propagate full-batch. Pair it with
            `loss.num_negatives > 0` or BPR: a softmax over every product touches every product.
        num_neighbors: neighbours sampled per entity at each hop with sampler "neighbor": one entry per GNN
            layer, or a single entry for every layer; -1 = all of them.
        fused_adam: torch's fused Adam kernel. The step over a 1.37M x 128 embedding table takes 0.2-0.3 s
            instead of about 2 s here, which is most of a sampled batch on a large catalog. Off by default, so
            that the published results reproduce exactly (the kernel rounds differently).
    """

    epochs: int = 40
    batch_size: int = 2048
    lr: float = 5e-3
    weight_decay: float = 0.0
    patience: int = 4
    eval_every: int = 1
    seed: int = 0
    max_minutes: float = 14.0
    sampler: str = "full"
    num_neighbors: list[int] = field(default_factory=lambda: [10])
    fused_adam: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """ValueError on a sampler setting that cannot work (also called by the trainer, after `--set`)."""
        if self.sampler not in SAMPLERS:
            raise ValueError(f"train.sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        nn_ = self.num_neighbors
        if (not isinstance(nn_, (list, tuple)) or not nn_
                or not all(isinstance(k, int) and not isinstance(k, bool) and (k == -1 or k > 0) for k in nn_)):
            raise ValueError("train.num_neighbors must be a non-empty list of neighbour counts per layer "
                             f"(positive integers, or -1 for all neighbours), got {nn_!r}")


@dataclass
class ItemItemConfig:
    """The sparse item-item term added to the score (`fusion.item_item`).

    Args:
        enabled: False = dot products only (the `fusion_no_item_item` ablation).
        regs, weights: grid searched on validation after training (weight 0, no term, always competes).
        reg, weight: used when training has no validation split.
        top_k: positive EASE weights kept per product.
        max_items: above this many products with interactions the term is skipped (dense inverse).
        next_weights: weights of the next-item memory (`fusion.item_item.next_item_weights`: what came right
            after the user's most recent product) tried on validation after (reg, weight); 0 always competes,
            an empty list turns the memory off.
        next_weight: used when training has no validation split.
        text_weights: weights of the latest product's text term (`fusion.last_text`: the text similarity of
            each product to the user's most recent one) tried on validation after the next-item memory; 0
            always competes, an empty list turns the term off.
        text_weight: used when training has no validation split.
    """

    enabled: bool = True
    regs: list[float] = field(default_factory=lambda: [10.0, 25.0, 50.0, 100.0, 250.0])
    weights: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.2, 0.4])
    reg: float = 100.0
    weight: float = 0.1
    next_weights: list[float] = field(default_factory=lambda: [0.01, 0.02, 0.03, 0.05, 0.08])
    next_weight: float = 0.0
    text_weights: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.2, 0.3, 0.45])
    text_weight: float = 0.0
    top_k: int = 500
    max_items: int = 30000


@dataclass
class ColdMixConfig:
    """The cold products' text mix (`fusion.cold_mix`): how much of a cold product's score is its text-only score.

    Args:
        enabled: False = cold products rank by the network's score alone.
        weights: mixing weights w tried on the validation cold products (0 = the network alone, 1 = the
            text-only order among cold products: both always compete).
        weight: used when training has no validation cold products.
        graph_weights: weights v of the cold products' graph term (`fusion.cold_graph`: how their product
            relations reach the user's history) tried with each w (0 = none; all 0 turns the term off).
        graph_weight: v used when training has no validation cold products.
        graph_hop2: b, the weight of the two-hop paths (K + b K^2).
        graph_top_k: entries kept per cold product's column of the term.
        graph_cf: weight of the co-purchase paths C K in the term (their norm over the relation paths' norm;
            0 = relation paths only).
        graph_warm_tolerance: a v > 0 is only chosen where the warm validation NDCG@10 (whole catalog, the
            term on every cold product) stays within this share of v = 0's: the term lifts cold products into
            every ranking, and must not buy the cold slice with the warm one.
        graph_offset: what each user's cold products give back of the term, so that it orders them among
            themselves without lifting them all into the whole-catalog ranking: "max" (the default) takes the
            user's largest term over the cold products off every cold product, v c (g_ui - max_j g_uj), so no
            cold product ever scores above its own network + text mix score and warm ranking cannot lose;
            "mean" takes the mean off (the user's mean cold score is kept, as the text mix keeps it); "none"
            adds v c g_ui (every cold product the user's history reaches goes up).
        graph_kg_mix: shares rho of the KG similarity (`fusion.kg_similarity`: FastRP-style random projection
            over the whole training graph) in the term, G = (1 - rho) G_rel / |G_rel| + rho M / |M|, tried with
            every (w, v) (0 = the relation paths alone, 1 = the KG similarity alone; [0] turns it off). Without
            product relations only rho = 1 is tried (v = 0 still competes).
        graph_kg: rho used when training has no validation cold products.
        graph_kg_dim: random projection dimension of the KG similarity.
        graph_kg_hops: FastRP iteration weights w_1..w_K of the KG similarity (one per hop).
        graph_kg_top_k: entries kept per cold product's column of M.
        graph_kg_max_gib: memory the random projection may take (two float32 [nodes, dim] arrays): on a larger
            graph the dimension shrinks to fit, and below 64 dimensions the KG similarity is skipped (logged).
    """

    enabled: bool = True
    weights: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    weight: float = 0.0
    graph_weights: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.25, 0.5, 1.0, 2.0])
    graph_weight: float = 0.0
    graph_hop2: float = 3.0
    graph_top_k: int = 500
    graph_cf: float = 0.3
    graph_warm_tolerance: float = 0.005
    graph_offset: str = "max"
    graph_kg_mix: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    graph_kg: float = 0.0
    graph_kg_dim: int = 1024
    graph_kg_hops: list[float] = field(default_factory=lambda: [1.0, 1.0])
    graph_kg_top_k: int = 2000
    graph_kg_max_gib: float = 4.0

    def __post_init__(self) -> None:
        if self.graph_offset not in GRAPH_OFFSETS:
            raise ValueError(f"cold_mix.graph_offset must be one of {', '.join(GRAPH_OFFSETS)}, got "
                             f"{self.graph_offset!r}")
        bad = [r for r in list(self.graph_kg_mix) + [self.graph_kg] if not 0.0 <= float(r) <= 1.0]
        if bad:
            raise ValueError(f"cold_mix.graph_kg_mix and graph_kg are shares in [0, 1], got {bad}")
        if self.graph_kg_dim < 1 or not self.graph_kg_hops:
            raise ValueError(f"cold_mix.graph_kg_dim must be >= 1 and graph_kg_hops non-empty, got "
                             f"{self.graph_kg_dim} and {self.graph_kg_hops}")


@dataclass
class FusionConfig:
    """The whole model: graph encoder, text side, fusion and user history.

    Args:
        gnn: graph encoder settings (`num_layers=0` = no propagation).
        use_gnn: False drops graph propagation (products keep a free id embedding) — the `fusion_no_gnn` ablation.
        use_text: False drops the text tower and the text loss — the `fusion_no_text` ablation.
        history_len: most recent items that make the user's history vector.
        history_order: "sequence" = train to predict each item from the items before it, recent ones weighing
            more (learned position weights): right when the future is what is held out (leave-last-out, a time
            split). "set" = predict each item from the user's other items, all weighing the same (like EASE):
            right when held-out items are scattered over the user's timeline (a random holdout).
        user_tower: "pool" = the user's history is the weighted mean above; "attention" = plus an order-aware
            transformer over the same fused vectors (`fusion.sequence_tower`), which sees which products
            follow which (chosen per dataset on validation NDCG@10, see docs/model.md).
        tower: the transformer's settings (`TowerConfig`), used with user_tower "attention".
        history_transform: pass the history vector through a learned linear map (identity at start), so that
            "bought X, next buys Y" can be asymmetric (a stapler suggests staples more than staples a stapler).
        use_user_embedding: add the user's own graph embedding to the history vector.
        cold_content_only: products without interactions in the graph (cold) do not use their free embedding,
            which nothing but negatives ever trained: their graph vector comes from their brand, categories and
            related products only, fused with their text.
        item_dropout: while training, the share of products treated the same way in each batch (DropoutNet
            style), so that the model learns to rank products from content (graph neighbours and text) alone.
        item_item: the sparse item-item term of the score (see `ItemItemConfig`, `fusion.item_item`).
        cold_mix: the cold products' text mix (see `ColdMixConfig`, `fusion.cold_mix`).
        encoder: text model name or path (None = bundled all-MiniLM-L6-v2).
        relations: relation types the graph encoder propagates over (None = all).
        external_products: keep products outside the catalog (ends of also_bought etc.) in the propagation graph;
            False drops them and their edges (much less message passing on catalogs with many of them).
        external_links: with `external_products=False`, tie each catalog product to the k catalog products
            that share the most outside products with it, per product relation (0 = none): the dropped
            products' two-hop signal at k edges per product (`fusion.features.shared_external_links`).
    """

    gnn: GNNConfig = field(default_factory=GNNConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    item_item: ItemItemConfig = field(default_factory=ItemItemConfig)
    cold_mix: ColdMixConfig = field(default_factory=ColdMixConfig)
    use_gnn: bool = True
    use_text: bool = True
    history_len: int = 20
    history_order: str = "sequence"
    user_tower: str = "pool"
    tower: TowerConfig = field(default_factory=TowerConfig)
    history_transform: bool = True
    use_user_embedding: bool = True
    cold_content_only: bool = True
    item_dropout: float = 0.2
    encoder: str | None = None
    relations: list[str] | None = None
    external_products: bool = True
    external_links: int = 0

    def __post_init__(self) -> None:
        if self.external_links < 0 or (self.external_links and self.external_products):
            raise ValueError(f"external_links must be 0, or k > 0 with external_products false (it replaces the "
                             f"outside products by direct links), got {self.external_links} with "
                             f"external_products {self.external_products}")
        if self.history_order not in HISTORY_ORDERS:
            raise ValueError(f"history_order must be one of {', '.join(HISTORY_ORDERS)}, got {self.history_order!r}")
        if self.user_tower not in USER_TOWERS:
            raise ValueError(f"user_tower must be one of {', '.join(USER_TOWERS)}, got {self.user_tower!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FusionConfig":
        sub = {"gnn": GNNConfig, "loss": LossConfig, "train": TrainConfig, "item_item": ItemItemConfig,
               "cold_mix": ColdMixConfig, "tower": TowerConfig}
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown FusionConfig field(s): {sorted(unknown)}")
        return cls(**{k: (sub[k](**v) if k in sub else v) for k, v in d.items()})

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / "config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> "FusionConfig":
        return cls.from_dict(json.loads((Path(directory) / "config.json").read_text()))

    def ablation(self, name: str) -> "FusionConfig":
        """A copy with one part switched off: see `ABLATIONS`."""
        import copy
        c = copy.deepcopy(self)
        if name == "fusion":
            return c
        if name not in ABLATIONS:
            raise ValueError(f"unknown ablation {name!r}; choose from fusion, {', '.join(ABLATIONS)}")
        attr, sub = ABLATIONS[name]
        if sub is None:
            setattr(c, attr, _SWITCHED_OFF.get(attr, False))
        elif sub == "loss":
            setattr(c.loss, attr, 0.0)
        else:
            setattr(getattr(c, sub), attr, False)
        return c


# ablation name -> (field switched off, sub-config or None for a FusionConfig flag; a loss weight goes to 0)
ABLATIONS: dict[str, tuple[str, str | None]] = {
    "fusion_no_text": ("use_text", None),
    "fusion_no_gnn": ("use_gnn", None),
    "fusion_no_kg_loss": ("kg_path", "loss"),
    "fusion_no_text_loss": ("text", "loss"),
    "fusion_no_pref_loss": ("preference", "loss"),
    "fusion_no_item_item": ("enabled", "item_item"),
    "fusion_no_cold_mix": ("enabled", "cold_mix"),
    "fusion_no_tower": ("user_tower", None),
}
# a FusionConfig field whose "off" is not False
_SWITCHED_OFF = {"user_tower": "pool"}
