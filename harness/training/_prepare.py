"""Before the trials: the frozen network per image size and the data trials train on (cached
features, cached augmented views, or images through the whole network)."""

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
from harness.training._trial_data import SizedData, TrialData


@dataclass
class Prepared:
    """The frozen parts of the network and the data trials train on, for every image size searched."""

    data: TrialData | SizedData
    hypermodel: Any
    cache_hit: bool  # every size's features came from the cache
    extraction_seconds: float
    cache_path: str  # the cache entries, ';'-separated; "" when trials run on images
    precision: str
    frozen: dict[int, Any] | None = None  # {size: images -> the trained part's input}: the winner's frozen part


@dataclass
class Network:
    """The backbone in pieces, one computation end to end: the frozen pass (in `precision`) gives
    every split's features and is the frozen part of the logged winner; the top block that
    fine-tuning trains is float32."""

    spec: backbones.BackboneSpec
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
class _SizePart:
    data: TrialData
    trained_input: Any  # feature extraction: the top features' shape; fine-tuning: the top block
    frozen: Any  # images -> the trained part's input, in the pass precision (trials on images, the winner)
    hit: bool
    seconds: float
    path: str


def _frozen_pass(cfg: SweepConfig, spec: backbones.BackboneSpec, mode: str, size: int):
    """(full, below, extractor, top block) of a freshly built base, in the current dtype policy."""
    import keras

    base = backbones.build_base(cfg.backbone, size, cfg.weights, cfg.alpha)
    below, top = backbones.split_at_cut(base, spec.cut_layer)
    images = keras.Input((size, size, 3), name="images")
    cut = below(backbones.preprocess(images, mode), training=False)
    feats = top(cut, training=False)
    return (keras.Model(images, feats, name="frozen"), keras.Model(images, cut, name="frozen"),
            keras.Model(images, [cut, feats], name="extractor"), top)


def build_network(cfg: SweepConfig, size: int | None = None) -> Network:
    """Build the base once, in the pass precision. `size`: the image side (default: the sweep's first)."""
    size = size or cfg.image_sizes[0]
    spec = backbones.get_spec(cfg.backbone)
    precision = hardware.resolve_precision(cfg.precision, spec.faster_in_bf16)
    mode = backbones.preprocessing_mode(spec, cfg.preprocessing)
    with hardware.dtype_policy(precision):
        full, below, extractor, top = _frozen_pass(cfg, spec, mode, size)
    if precision != "float32":
        top = hardware.float32_copy(top)  # trials always train in float32
    return Network(spec, precision, mode, full, below, top, extractor)


def view_count(cfg: SweepConfig) -> int:
    """K when trials train on K cached augmented views per image; 0 without augmentation, and with
    `augment_views = 0` (fresh augmentation every epoch through the whole network)."""
    return cfg.augment_views if cfg.augment else 0


def _feature_key(cfg: SweepConfig, net: Network, dataset: DataSet, size: int) -> features.FeatureKey:
    k = view_count(cfg)
    return features.FeatureKey(
        cfg.backbone, cfg.alpha if cfg.backbone == "mobilenet_v2" else None,
        backbones.weights_identity(cfg.weights), size, net.mode, net.spec.cut_layer,
        dataset.fingerprint, net.precision, augment.identity(cfg.augmentation, k) if k else "")


def cached_features(cfg: SweepConfig, net: Network, dataset: DataSet, reporter=None,
                    size: int | None = None) -> features.Features:
    """The feature cache's entry for this backbone, image size and data, extracted now on a miss.
    With K augmented views, the train split holds K rows per image (row image * K + view)."""
    size = size or cfg.image_sizes[0]
    k, n_train = view_count(cfg), len(dataset.splits["train"].files)

    def images(split: str):
        batches = image_dataset(dataset.root, dataset.splits[split], size, cfg.batch_size, dataset.class_names)
        if split != "train" or not k:
            return batches
        return views.extraction_batches(batches, augment.Views(cfg.augmentation, k, n_train, size), cfg.batch_size)

    return extraction.extract(_feature_key(cfg, net, dataset, size), dataset, net.extractor, images,
                              reporter=reporter, counts={"train": k * n_train} if k else None)


def prepare(cfg: SweepConfig, dataset: DataSet, reporter, use_cache: bool = True) -> Prepared:
    """Build the backbone and get the trials' data for every image size searched.

    `use_cache=False` trains every trial on images through the frozen backbone, as the tutorial
    does: the benchmark's naive baseline (with K views it replays them). `augment_views = 0` is
    the tutorial's fresh augmentation every epoch, always on images.
    """
    parts = {size: _prepare_size(cfg, dataset, size, reporter, use_cache) for size in cfg.image_sizes}
    on_images = not next(iter(parts.values())).path
    fresh = cfg.augmentation if cfg.augment and not view_count(cfg) else None
    hypermodel = METHODS[cfg.method](
        cfg.space, {size: p.trained_input for size, p in parts.items()}, cfg.epochs, len(dataset.class_names),
        frozen={size: p.frozen for size, p in parts.items()} if on_images else None, augment=fresh,
        poolings=cfg.poolings)
    data = next(iter(parts.values())).data if len(parts) == 1 else SizedData({s: p.data for s, p in parts.items()})
    return Prepared(data, hypermodel, all(p.hit for p in parts.values()), sum(p.seconds for p in parts.values()),
                    ";".join(p.path for p in parts.values() if p.path), _precision(cfg),
                    frozen={size: p.frozen for size, p in parts.items()})


def _precision(cfg: SweepConfig) -> str:
    return hardware.resolve_precision(cfg.precision, backbones.get_spec(cfg.backbone).faster_in_bf16)


def _prepare_size(cfg: SweepConfig, dataset: DataSet, size: int, reporter, use_cache: bool) -> _SizePart:
    net = build_network(cfg, size)
    fe = cfg.method == "feature-extraction"
    trained_input = tuple(net.full.output.shape[1:]) if fe else net.top_block
    frozen = net.frozen(cfg.method)
    labels = {s: p.labels for s, p in dataset.splits.items()}
    files = {s: [str(f.relative_to(dataset.root)) for f in p.files] for s, p in dataset.splits.items()}
    k, classes = view_count(cfg), dataset.class_names
    if use_cache and not (cfg.augment and not k):
        feats = cached_features(cfg, net, dataset, reporter=reporter, size=size)
        streamed = _streamed(cfg, feats.arrays)
        data = TrialData(labels, files, cfg.batch_size, classes, arrays=feats.arrays, views=k, streamed=streamed)
        return _SizePart(data, trained_input, frozen, feats.hit, feats.seconds, str(feats.path))
    data = TrialData(labels, files, cfg.batch_size, classes, images=_image_sets(cfg, dataset, size, k), views=k,
                     replay=_replay(cfg, dataset, size, k) if k else None)
    return _SizePart(data, trained_input, frozen, False, 0.0, "")


def _streamed(cfg: SweepConfig, arrays) -> bool:
    """Whether this size's features are read from the cache files batch by batch: when the layers
    the method trains on, every size searched, would not fit the memory budget."""
    layers = ("top",) if cfg.method == "feature-extraction" else ("top", "cut")
    return memory.needed_bytes(arrays, layers) * len(cfg.image_sizes) > memory.budget_bytes(cfg.memory_budget)


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
