"""Before the trials: each frozen network searched (backbone x image size x cut) and the data
trials train on (cached features, cached augmented views, or images through the whole network)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.data import _augment as augment
from harness.backbones import _registry as backbones
from harness.training import _extraction as extraction
from harness.training import _feature_cache as features
from harness.training import _memory as memory
from harness.backbones import _precision as hardware
from harness.data import _views as views
from harness.config import SweepConfig
from harness.data._folders import DataSet, image_dataset
from harness.training._methods import METHODS
from harness.training._trial_data import TrialData, VariantData
from harness.training._variants import Variant, variants


@dataclass
class Prepared:
    """The frozen parts of the network and the data trials train on, for every frozen network
    searched (harness.training._variants.Variant: backbone x image size x cut)."""

    data: TrialData | VariantData
    hypermodel: Any
    cache_hit: bool  # every network's features came from the cache
    extraction_seconds: float
    cache_path: str  # the cache entries, ';'-separated; "" when trials run on images
    precision: str
    frozen: dict[Variant, Any] | None = None  # {variant: images -> the trained part's input}: the winner's frozen part


@dataclass
class Network:
    """The backbone in pieces, one computation end to end: the frozen pass (in `precision`) gives
    every split's features and is the frozen part of the logged winner; the top block that
    fine-tuning trains is float32."""

    spec: backbones.BackboneSpec
    variant: Variant
    cut_layer: str  # the last frozen layer of fine-tuning (the top block is what follows it)
    precision: str
    mode: str  # preprocessing mode
    full: Any  # raw images -> top features (frozen, for feature extraction on images)
    below: Any  # raw images -> cut features (frozen)
    top_block: Any  # cut features -> top features, float32, the template fine-tuning copies
    extractor: Any  # raw images -> [cut features, top features]

    def frozen(self, method: str):
        """Images -> what the method's trained part reads."""
        return self.full if method == "feature-extraction" else self.below


@dataclass
class _Part:
    data: TrialData
    trained_input: Any  # feature extraction: the top features' shape; fine-tuning: the top block
    frozen: Any  # images -> the trained part's input, in the pass precision (trials on images, the winner)
    hit: bool
    seconds: float
    path: str


def _frozen_pass(cfg: SweepConfig, spec: backbones.BackboneSpec, mode: str, variant: Variant):
    """(cut layer, full, below, extractor, top block) of a freshly built base, in the current dtype policy."""
    import keras

    size = variant.image_size
    base = backbones.build_base(variant.backbone, size, cfg.weights, _alpha(cfg))
    cut_layer = backbones.resolve_cut(base, spec, _unfreeze(variant.unfreeze))
    below, top = backbones.split_at_cut(base, cut_layer)
    images = keras.Input((size, size, 3), name="images")
    cut = below(backbones.preprocess(images, mode), training=False)
    feats = top(cut, training=False)
    return (cut_layer, keras.Model(images, feats, name="frozen"), keras.Model(images, cut, name="frozen"),
            keras.Model(images, [cut, feats], name="extractor"), top)


def _alpha(cfg: SweepConfig) -> float | None:
    return cfg.alpha or None  # 0: each backbone's own width


def _unfreeze(value: int | str) -> int | str:
    """A cut as the registry takes it: a number of stages, or a layer name (text in a mixed list)."""
    return int(value) if isinstance(value, str) and value.isdigit() else value


def build_network(cfg: SweepConfig, variant: Variant | None = None) -> Network:
    """Build one frozen network once, in the pass precision (default: the sweep's first variant)."""
    variant = variant or variants(cfg)[0]
    spec = backbones.get_spec(variant.backbone)
    precision = hardware.resolve_precision(cfg.precision, spec.faster_in_bf16)
    mode = backbones.preprocessing_mode(spec, cfg.preprocessing)
    with hardware.dtype_policy(precision):
        cut_layer, full, below, extractor, top = _frozen_pass(cfg, spec, mode, variant)
    if precision != "float32":
        top = hardware.float32_copy(top)  # trials always train in float32
    return Network(spec, variant, cut_layer, precision, mode, full, below, top, extractor)


def view_count(cfg: SweepConfig) -> int:
    """K when trials train on K cached augmented views per image; 0 without augmentation, and with
    `augment_views = 0` (fresh augmentation every epoch through the whole network)."""
    return cfg.augment_views if cfg.augment else 0


def width(cfg: SweepConfig, backbone: str) -> float | None:
    """The MobileNet width a backbone is built with; None where it has none."""
    spec = backbones.get_spec(backbone)
    return (cfg.alpha or spec.default_alpha) if spec.width else None


def _feature_key(cfg: SweepConfig, net: Network, dataset: DataSet) -> features.FeatureKey:
    k, variant = view_count(cfg), net.variant
    return features.FeatureKey(
        variant.backbone, width(cfg, variant.backbone), backbones.weights_identity(cfg.weights),
        variant.image_size, net.mode, net.cut_layer, dataset.fingerprint, net.precision,
        augment.identity(cfg.augmentation, k) if k else "")


def cached_features(cfg: SweepConfig, net: Network, dataset: DataSet, reporter=None) -> features.Features:
    """The feature cache's entry for this network and data, extracted now on a miss.
    With K augmented views, the train split holds K rows per image (row image * K + view)."""
    size = net.variant.image_size
    k, n_train = view_count(cfg), len(dataset.splits["train"].files)

    def images(split: str):
        batches = image_dataset(dataset.root, dataset.splits[split], size, cfg.batch_size, dataset.class_names)
        if split != "train" or not k:
            return batches
        return views.extraction_batches(batches, augment.Views(cfg.augmentation, k, n_train, size), cfg.batch_size)

    return extraction.extract(_feature_key(cfg, net, dataset), dataset, net.extractor, images,
                              reporter=reporter, counts={"train": k * n_train} if k else None)


def prepare(cfg: SweepConfig, dataset: DataSet, reporter, use_cache: bool = True) -> Prepared:
    """Build each frozen network searched and get the trials' data for it.

    `use_cache=False` trains every trial on images through the frozen backbone, as the tutorial
    does: the benchmark's naive baseline (with K views it replays them). `augment_views = 0` is
    the tutorial's fresh augmentation every epoch, always on images.
    """
    keys = variants(cfg)
    parts = {v: _prepare_variant(cfg, dataset, v, reporter, use_cache, len(keys)) for v in keys}
    on_images = not next(iter(parts.values())).path
    fresh = cfg.augmentation if cfg.augment and not view_count(cfg) else None
    hypermodel = METHODS[cfg.method](
        cfg.space, {v: p.trained_input for v, p in parts.items()}, cfg.epochs, len(dataset.class_names),
        frozen={v: p.frozen for v, p in parts.items()} if on_images else None, augment=fresh,
        poolings=cfg.poolings)
    data = next(iter(parts.values())).data if len(parts) == 1 else VariantData({v: p.data for v, p in parts.items()})
    return Prepared(data, hypermodel, all(p.hit for p in parts.values()), sum(p.seconds for p in parts.values()),
                    ";".join(p.path for p in parts.values() if p.path), precision_of(cfg),
                    frozen={v: p.frozen for v, p in parts.items()})


def precision_of(cfg: SweepConfig) -> str:
    """The pass precision, or each backbone's where the searched ones differ."""
    each = {b: hardware.resolve_precision(cfg.precision, backbones.get_spec(b).faster_in_bf16) for b in cfg.backbones}
    if len(set(each.values())) == 1:
        return next(iter(each.values()))
    return ", ".join(f"{b}={p}" for b, p in each.items())


def _prepare_variant(cfg: SweepConfig, dataset: DataSet, variant: Variant, reporter, use_cache: bool,
                     n_variants: int) -> _Part:
    net = build_network(cfg, variant)
    fe = cfg.method == "feature-extraction"
    trained_input = tuple(net.full.output.shape[1:]) if fe else net.top_block
    frozen = net.frozen(cfg.method)
    labels = {s: p.labels for s, p in dataset.splits.items()}
    files = {s: [str(f.relative_to(dataset.root)) for f in p.files] for s, p in dataset.splits.items()}
    k, classes, size = view_count(cfg), dataset.class_names, variant.image_size
    if use_cache and not (cfg.augment and not k):
        feats = cached_features(cfg, net, dataset, reporter=reporter)
        streamed = _streamed(cfg, feats.arrays, n_variants)
        data = TrialData(labels, files, cfg.batch_size, classes, arrays=feats.arrays, views=k, streamed=streamed,
                         cut_layer=net.cut_layer)
        return _Part(data, trained_input, frozen, feats.hit, feats.seconds, str(feats.path))
    data = TrialData(labels, files, cfg.batch_size, classes, images=_image_sets(cfg, dataset, size, k), views=k,
                     replay=_replay(cfg, dataset, size, k) if k else None, cut_layer=net.cut_layer)
    return _Part(data, trained_input, frozen, False, 0.0, "")


def _streamed(cfg: SweepConfig, arrays, n_variants: int) -> bool:
    """Whether this network's features are read from the cache files batch by batch: when the layers
    the method trains on, for every network searched, would not fit the memory budget."""
    layers = ("top",) if cfg.method == "feature-extraction" else ("top", "cut")
    return memory.needed_bytes(arrays, layers) * n_variants > memory.budget_bytes(cfg.memory_budget)


def _image_sets(cfg: SweepConfig, dataset: DataSet, size: int, k: int) -> dict[str, Any]:
    """Batched image datasets per split; train shuffled per epoch (unused when views are replayed)."""
    return {s: image_dataset(dataset.root, p, size, cfg.batch_size, dataset.class_names,
                             shuffle=(s == "train"), seed=cfg.seed)
            for s, p in dataset.splits.items() if not (k and s == "train")}


def _replay(cfg: SweepConfig, dataset: DataSet, size: int, k: int) -> tuple:
    """(decoded train images, their K views): the naive path recomputes the cached views every epoch."""
    import numpy as np
    import tensorflow as tf

    train = dataset.splits["train"]
    batches = image_dataset(dataset.root, train, size, cfg.batch_size, dataset.class_names)
    images = tf.constant(np.concatenate([np.asarray(x) for x, _ in batches]))
    return images, augment.Views(cfg.augmentation, k, len(train.files), size)
