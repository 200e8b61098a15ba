"""One sweep end to end: check inputs, get features, run the tuner, record the best trial."""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import backbones, features, hardware, winner
from harness.config import SweepConfig
from harness.data import DataSet, image_dataset, scan
from harness.methods import METHODS, TrialData, loss_for
from harness.interrupts import signals_interrupt
from harness.progress import NullReporter
from harness.resume import claim, sweep_key
from harness.seeding import seed_everything
from harness.tracking import Store, Tracker, resolve_store
from harness.oracles import hyperband_params
from harness.tuning import TrackedTuner, TrialRecord, log_confusion_matrix, make_oracle


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
    precision: str
    frozen: Any = None  # images -> the trained part's input (for the winner's image network)


@dataclass
class Network:
    """The backbone in pieces: the frozen pass (in `precision`) and the float32 top block to train."""

    spec: backbones.BackboneSpec
    precision: str
    mode: str  # preprocessing mode
    full: Any  # raw images -> top features (frozen, for feature extraction on images)
    below: Any  # raw images -> cut features (frozen)
    top_block: Any  # cut features -> top features, float32, the template fine-tuning copies
    extractor: Any  # raw images -> [cut features, top features]


def build_network(cfg: SweepConfig) -> Network:
    """Build the base once in the pass precision and, if that is not float32, once more for training."""
    import keras

    spec = backbones.get_spec(cfg.backbone)
    precision = hardware.resolve_precision(cfg.precision, spec.faster_in_bf16)
    mode = backbones.preprocessing_mode(spec, cfg.preprocessing)
    with hardware.dtype_policy(precision):
        base = backbones.build_base(cfg.backbone, cfg.image_size, cfg.weights, cfg.alpha)
        below, top = backbones.split_at_cut(base, spec.cut_layer)
        images = keras.Input((cfg.image_size, cfg.image_size, 3), name="images")
        pixels = backbones.Preprocess(mode)(images)
        cut = below(pixels, training=False)
        feats = top(cut, training=False)
    if precision != "float32":
        _, top = backbones.split_at_cut(
            backbones.build_base(cfg.backbone, cfg.image_size, cfg.weights, cfg.alpha), spec.cut_layer)
    return Network(spec, precision, mode, keras.Model(images, feats, name="frozen"),
                   keras.Model(images, cut, name="frozen"), top,
                   keras.Model(images, [cut, feats], name="extractor"))


def _feature_key(cfg: SweepConfig, net: Network, dataset: DataSet) -> features.FeatureKey:
    return features.FeatureKey(
        cfg.backbone, cfg.alpha if cfg.backbone == "mobilenet_v2" else None,
        backbones.weights_identity(cfg.weights), cfg.image_size, net.mode, net.spec.cut_layer,
        dataset.fingerprint, net.precision)


def cached_features(cfg: SweepConfig, net: Network, dataset: DataSet, progress=None) -> features.Features:
    """The feature cache's entry for this backbone and data, extracted now on a miss."""
    return features.extract(
        _feature_key(cfg, net, dataset), dataset, net.extractor,
        lambda s: image_dataset(dataset.root, dataset.splits[s], cfg.image_size, cfg.batch_size,
                                dataset.class_names),
        progress=progress)


def prepare(cfg: SweepConfig, dataset: DataSet, reporter, use_cache: bool = True) -> Prepared:
    """Build the backbone; with no augmentation, get cached features (extracting on a miss).

    `use_cache=False` trains every trial on images through the frozen backbone, as the
    tutorial does: the benchmark's naive baseline, and the only way with augmentation.
    """
    net = build_network(cfg)
    files = {s: [str(f.relative_to(dataset.root)) for f in p.files] for s, p in dataset.splits.items()}
    labels = {s: p.labels for s, p in dataset.splits.items()}
    hm_cls = METHODS[cfg.method]
    fe = cfg.method == "feature-extraction"
    top_arg = tuple(net.full.output.shape[1:]) if fe else net.top_block
    classes = dataset.class_names
    if cfg.augment or not use_cache:
        images = {s: image_dataset(dataset.root, p, cfg.image_size, cfg.batch_size, classes,
                                   shuffle=(s == "train"), seed=cfg.seed) for s, p in dataset.splits.items()}
        data = TrialData(labels, files, cfg.batch_size, classes, images=images)
        hm = hm_cls(cfg.space, top_arg, cfg.epochs, len(classes), frozen=net.full if fe else net.below,
                    image_size=cfg.image_size, augment=cfg.augment)
        return Prepared(data, hm, False, 0.0, "", net.precision)
    feats = cached_features(cfg, net, dataset, progress=reporter.extracting)
    data = TrialData(labels, files, cfg.batch_size, classes, arrays=feats.arrays)
    return Prepared(data, hm_cls(cfg.space, top_arg, cfg.epochs, len(classes)), feats.hit, feats.seconds,
                    str(feats.path), net.precision, frozen=net.full if fe else net.below)


def fixed_params_of(cfg: SweepConfig, prepared: Prepared) -> dict[str, Any]:
    keys = ("backbone", "weights", "image_size", "epochs", "batch_size", "preprocessing", "augment",
            "tuner", "seed")
    params = {k: getattr(cfg, k) for k in keys}
    params["n_classes"] = prepared.data.n_classes
    params["output"] = "sigmoid" if prepared.data.n_classes == 2 else "softmax"
    params["loss"] = loss_for(prepared.data.n_classes).name
    if cfg.backbone == "mobilenet_v2":
        params["alpha"] = cfg.alpha
    params["precision"] = prepared.precision
    params["optimizer"] = "adam" if cfg.method == "feature-extraction" else "adam, then rmsprop"
    return params


def sweep_tags(cfg: SweepConfig, dataset: DataSet, prepared: Prepared) -> dict[str, str]:
    return {"method": cfg.method, "backbone": cfg.backbone, "weights": cfg.weights, "tuner": cfg.tuner,
            "seed": str(cfg.seed), "data_dir": str(dataset.root.resolve()),
            "data_fingerprint": dataset.fingerprint, "sweep": "true",
            "classes": json.dumps(list(dataset.class_names), ensure_ascii=False),
            "feature_cache": _cache_tag(cfg, prepared),
            "augment": str(cfg.augment).lower(), "precision": prepared.precision}


def _cache_tag(cfg: SweepConfig, prepared: Prepared) -> str:
    if cfg.augment:
        return "off (augmentation: the full network runs every epoch)"
    if not prepared.cache_path:
        return "off (naive: the full network runs every epoch)"
    return "hit" if prepared.cache_hit else "miss"


def tuner_dir(store: Store) -> Path:
    """keras-tuner's own state lives beside a local store, else in the working folder."""
    return (store.local_dir or Path(".harness")) / "tuner"


def run_sweep(cfg: SweepConfig, tracking_uri: str | None = None, reporter=None,
              resume: str = "auto", use_cache: bool = True) -> SweepResult:
    """Run one sweep, or continue the interrupted one with the same configuration
    (resume: auto | resume | fresh); the parent ends FINISHED, FAILED or KILLED, never RUNNING.
    `use_cache=False` is the naive baseline: the backbone runs inside every trial (bench/)."""
    reporter = reporter or NullReporter()
    start = time.perf_counter()
    dataset = scan(cfg.data)  # bad folders and images fail here, before any compute or logging
    backbones.get_spec(cfg.backbone)
    store = resolve_store(tracking_uri)
    tracker = Tracker(store)
    key = sweep_key(cfg, dataset.fingerprint)
    seed_everything(cfg.seed)
    prepared = prepare(cfg, dataset, reporter, use_cache)
    experiment_id = tracker.experiment_id(cfg.experiment_name)
    tags = {**sweep_tags(cfg, dataset, prepared), "sweep_key": key}
    claimed = claim(tracker, cfg.experiment_name, key, tuner_dir(store), resume)
    try:
        with signals_interrupt():
            parent = _open_parent(tracker, claimed, experiment_id, cfg, tags, prepared)
            tuner, best, seconds = _search(tracker, store, parent, experiment_id, cfg, prepared, reporter, start)
    finally:
        claimed.release()
    return SweepResult(cfg.method, cfg.experiment_name, parent, store.uri, list(tuner.records.values()),
                       best, seconds, prepared.cache_hit, prepared.extraction_seconds, tags)


def _open_parent(tracker: Tracker, claimed, experiment_id: str, cfg: SweepConfig, tags, prepared) -> str:
    """The claimed parent, its stale RUNNING trials marked KILLED; else a new parent run."""
    if claimed.parent_id:
        parent = claimed.parent_id
        tracker.end_running_children(experiment_id, parent, "KILLED")  # left by a killed process
    else:
        name = f"{cfg.method} · {cfg.backbone} · {datetime.now():%Y-%m-%d %H:%M:%S}"
        parent = tracker.start_run(experiment_id, name, tags)
        claimed.hold(parent)
    try:
        if claimed.parent_id:
            tracker.reopen_run(parent)
            tracker.set_tags(parent, tags)
            return parent
        tracker.log_params(parent, {**fixed_params_of(cfg, prepared),
                                    "max_trials": cfg.max_trials})
        tracker.log_dict(parent, cfg.to_dict(), "sweep_config.json")
        tracker.log_metrics(parent, {"extraction_seconds": prepared.extraction_seconds,
                                     "cache_hit": float(prepared.cache_hit)})
    except BaseException:
        _end_sweep(tracker, experiment_id, parent)
        raise
    return parent


def _search(tracker: Tracker, store: Store, parent: str, experiment_id: str, cfg: SweepConfig,
            prepared: Prepared, reporter, start: float):
    """keras-tuner's search under `parent`; on any exit but success, its runs end KILLED or FAILED."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # keras-tuner's "Reloading Tuner" line
            tuner = TrackedTuner(
                make_oracle(cfg), prepared.hypermodel, cfg=cfg, tracker=tracker, experiment_id=experiment_id,
                parent_id=parent, fixed_params=fixed_params_of(cfg, prepared),
                reporter=reporter,
                directory=str(tuner_dir(store)), project_name=parent, overwrite=False)
        tuner.restore_records(tracker.children(parent, experiment_id))
        if cfg.tuner == "hyperband":
            tracker.log_params(parent, hyperband_params(tuner.oracle))
        reporter.sweep_started(cfg, tracker.run_name(parent), tuner.planned_trials)
        tuner.search(prepared.data, verbose=0)  # our reporter, not the oracle's printout
        best = _record_best(tracker, parent, tuner)
        if best is not None:
            log_confusion_matrix(tracker, best.run_id, f"{best.name} · test split")
            winner.log_winner(tracker, parent, best, tuner, prepared.frozen, cfg.image_size)
        seconds = time.perf_counter() - start
        tracker.log_metrics(parent, {"sweep_seconds": seconds, "trials_finished": sum(
            r.status == "FINISHED" for r in tuner.records.values())})
        tracker.end_run(parent, "FINISHED")
    except BaseException:
        _end_sweep(tracker, experiment_id, parent)
        raise
    return tuner, best, seconds


def _end_sweep(tracker: Tracker, experiment_id: str, parent: str) -> None:
    """While an exception propagates: end the trial in progress and the parent, KILLED or FAILED."""
    status = "KILLED" if _interrupted() else "FAILED"
    try:
        tracker.end_running_children(experiment_id, parent, status)
    finally:  # the parent too, even if the store would not list its children
        tracker.end_run(parent, status)


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
