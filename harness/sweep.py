"""One sweep end to end: check inputs, get features, run the tuner, record the best trial."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import backbones, features, winner
from harness.config import SweepConfig
from harness.data import DataSet, image_dataset, scan
from harness.methods import METHODS, TrialData
from harness.progress import NullReporter
from harness.seeding import seed_everything
from harness.tracking import Store, Tracker, resolve_store
from harness.tuning import TrackedTuner, TrialRecord, make_oracle


@dataclass
class SweepResult:
    """What the CLI prints at the end; everything here is also in MLflow."""

    method: str
    experiment: str
    parent_run_id: str
    store_uri: str
    trials: list[TrialRecord]
    best: TrialRecord | None
    seconds: float
    cache_hit: bool
    extraction_seconds: float
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Prepared:
    """The frozen parts of the network and the data trials train on."""

    data: TrialData
    hypermodel: Any
    cache_hit: bool
    extraction_seconds: float
    cache_path: str
    frozen: Any = None  # images -> the trained part's input; None when trials train on images


def _extractor(base, spec, cfg: SweepConfig):
    """Raw images -> [cut features, top features], preprocessing included."""
    import keras

    below, top = backbones.split_at_cut(base, spec.cut_layer)
    mode = backbones.preprocessing_mode(spec, cfg.preprocessing)
    images = keras.Input((cfg.image_size, cfg.image_size, 3))
    cut = below(backbones.Preprocess(mode)(images), training=False)
    return keras.Model(images, [cut, top(cut, training=False)]), below, top, mode


def _frozen_on_images(below, mode: str, cfg: SweepConfig, method: str, base):
    """The part a trial does not train, applied to images (augmentation / naive path)."""
    import keras

    images = keras.Input((cfg.image_size, cfg.image_size, 3))
    inner = base if method == "feature-extraction" else below
    return keras.Model(images, inner(backbones.Preprocess(mode)(images), training=False), name="frozen")


def prepare(cfg: SweepConfig, dataset: DataSet, reporter, use_cache: bool = True) -> Prepared:
    """Build the backbone; with no augmentation, get cached features (extracting on a miss)."""
    spec = backbones.get_spec(cfg.backbone)
    base = backbones.build_base(cfg.backbone, cfg.image_size, cfg.weights, cfg.alpha)
    extractor, below, top, mode = _extractor(base, spec, cfg)
    files = {s: [str(f.relative_to(dataset.root)) for f in p.files] for s, p in dataset.splits.items()}
    labels = {s: p.labels for s, p in dataset.splits.items()}
    hm_cls = METHODS[cfg.method]
    top_arg = tuple(base.output.shape[1:]) if cfg.method == "feature-extraction" else top
    if cfg.augment or not use_cache:
        images = {s: image_dataset(dataset.root, p, cfg.image_size, cfg.batch_size, shuffle=(s == "train"),
                                   seed=cfg.seed) for s, p in dataset.splits.items()}
        frozen = _frozen_on_images(below, mode, cfg, cfg.method, base)
        data = TrialData(labels, files, cfg.batch_size, images=images)
        hm = hm_cls(cfg.space, top_arg, cfg.epochs, frozen=frozen, image_size=cfg.image_size, augment=cfg.augment)
        return Prepared(data, hm, False, 0.0, "")
    key = features.FeatureKey(
        cfg.backbone, cfg.alpha if cfg.backbone == "mobilenet_v2" else None,
        backbones.weights_identity(cfg.weights), cfg.image_size, mode, spec.cut_layer, dataset.fingerprint)
    feats = features.extract(
        key, dataset, extractor,
        lambda s: image_dataset(dataset.root, dataset.splits[s], cfg.image_size, cfg.batch_size),
        progress=reporter.extracting)
    arrays = {layer: {s: feats.get(layer, s) for s in dataset.splits} for layer in features.LAYERS}
    data = TrialData(labels, files, cfg.batch_size, arrays=arrays)
    return Prepared(data, hm_cls(cfg.space, top_arg, cfg.epochs), feats.hit, feats.seconds, str(feats.path),
                    frozen=_frozen_on_images(below, mode, cfg, cfg.method, base))


def _fixed_params(cfg: SweepConfig) -> dict[str, Any]:
    keys = ("backbone", "weights", "image_size", "epochs", "batch_size", "preprocessing", "augment",
            "tuner", "seed")
    params = {k: getattr(cfg, k) for k in keys}
    if cfg.backbone == "mobilenet_v2":
        params["alpha"] = cfg.alpha
    params["optimizer"] = "adam" if cfg.method == "feature-extraction" else "adam, then rmsprop"
    return params


def _sweep_tags(cfg: SweepConfig, dataset: DataSet, prepared: Prepared) -> dict[str, str]:
    return {"method": cfg.method, "backbone": cfg.backbone, "weights": cfg.weights, "tuner": cfg.tuner,
            "seed": str(cfg.seed), "data_dir": str(dataset.root.resolve()),
            "data_fingerprint": dataset.fingerprint, "sweep": "true",
            "feature_cache": "off (augmentation: full network every epoch)" if cfg.augment else
            ("hit" if prepared.cache_hit else "miss"),
            "augment": str(cfg.augment).lower()}


def tuner_dir(store: Store) -> Path:
    """keras-tuner's own state lives beside a local store, else in the working folder."""
    return (store.local_dir or Path(".harness")) / "tuner"


def run_sweep(cfg: SweepConfig, tracking_uri: str | None = None, reporter=None) -> SweepResult:
    """Run one sweep; the parent run ends FINISHED, FAILED or KILLED, never RUNNING."""
    reporter = reporter or NullReporter()
    start = time.perf_counter()
    dataset = scan(cfg.data)  # bad folders fail here, before any compute or logging
    backbones.get_spec(cfg.backbone)
    store = resolve_store(tracking_uri)
    tracker = Tracker(store)
    seed_everything(cfg.seed)
    prepared = prepare(cfg, dataset, reporter)
    experiment_id = tracker.experiment_id(cfg.experiment_name)
    name = f"{cfg.method} · {cfg.backbone} · {datetime.now():%Y-%m-%d %H:%M:%S}"
    tags = _sweep_tags(cfg, dataset, prepared)
    parent = tracker.start_run(experiment_id, name, tags)
    try:
        tracker.log_params(parent, {**_fixed_params(cfg), "max_trials": cfg.max_trials})
        tracker.log_dict(parent, cfg.to_dict(), "sweep_config.json")
        tracker.log_metrics(parent, {"extraction_seconds": prepared.extraction_seconds,
                                     "cache_hit": float(prepared.cache_hit)})
        tuner = TrackedTuner(
            make_oracle(cfg), prepared.hypermodel, cfg=cfg, tracker=tracker, experiment_id=experiment_id,
            parent_id=parent, fixed_params=_fixed_params(cfg), reporter=reporter,
            directory=str(tuner_dir(store)), project_name=parent, overwrite=True)
        reporter.sweep_started(cfg, name)
        tuner.search(prepared.data, verbose=0)  # our reporter, not the oracle's printout
        best = _record_best(tracker, parent, tuner)
        if best is not None:
            winner.log_winner(tracker, parent, best, tuner, prepared.frozen, cfg.image_size)
        seconds = time.perf_counter() - start
        tracker.log_metrics(parent, {"sweep_seconds": seconds, "trials_finished": sum(
            r.status == "FINISHED" for r in tuner.records.values())})
        tracker.end_run(parent, "FINISHED")
    except BaseException:
        tracker.end_run(parent, "KILLED" if _interrupted() else "FAILED")
        raise
    return SweepResult(cfg.method, cfg.experiment_name, parent, store.uri, list(tuner.records.values()),
                       best, seconds, prepared.cache_hit, prepared.extraction_seconds, tags)


def _interrupted() -> bool:
    import sys

    return isinstance(sys.exc_info()[1], KeyboardInterrupt)


def _record_best(tracker: Tracker, parent: str, tuner: TrackedTuner) -> TrialRecord | None:
    """The best trial by validation accuracy, as keras-tuner's oracle ranks them."""
    best_trials = tuner.oracle.get_best_trials(1)
    if not best_trials:
        return None
    best = tuner.records[best_trials[0].trial_id]
    tracker.set_tags(parent, {"best_trial_id": best.trial_id, "best_run_id": best.run_id,
                              **{f"best.{k}": v for k, v in best.hyperparameters.items()}})
    metrics = {"best_val_accuracy": best.val_accuracy}
    if not math.isnan(best.test_accuracy):
        metrics["best_test_accuracy"] = best.test_accuracy
    tracker.log_metrics(parent, metrics)
    return best
