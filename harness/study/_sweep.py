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

from harness.backbones import _registry as backbones
from harness.tracking import _ui_views as saved_views
from harness.serving import _winner as winner
from harness.data._check import check_dataset, warnings
from harness.config._settings import SweepConfig
from harness.data._folders import DataSet, scan
from harness.training._heads import loss_for
from harness.training._prepare import Network, Prepared, build_network, cached_features, prepare, view_count  # noqa: F401
from harness.interrupts import signals_interrupt
from harness.progress import NullReporter
from harness.tuning._resume import claim, sweep_key
from harness.training._seeding import seed_everything
from harness.tracking import Store, Tracker, resolve_store
from harness.tuning._oracles import hyperband_params
from harness.tuning._tuner import TrackedTuner, TrialRecord, log_confusion_matrix, make_oracle
from harness.tracking import experiments, reading, runs


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
    model_uri: str | None = None  # the winner's logged model
    registered_model: str | None = None  # models:/NAME/VERSION with --register


def fixed_params_of(cfg: SweepConfig, prepared: Prepared) -> dict[str, Any]:
    keys = ("backbone", "weights", "epochs", "batch_size", "preprocessing", "augment", "tuner", "seed")
    params = {k: getattr(cfg, k) for k in keys}
    for key, values in (("image_size", cfg.image_sizes), ("pooling", cfg.poolings)):
        if len(values) == 1:
            params[key] = values[0]
        else:  # searched: each trial's own value is its hyperparameter of this name
            params[f"{key}_choices"] = ",".join(map(str, values))
    if cfg.augment:
        params["augment_views"] = cfg.augment_views
        params["augmentation"] = " ".join(f"{k}={v}" for k, v in cfg.augmentation.__dict__.items())
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
    k = view_count(cfg)
    if cfg.augment and not k:
        return "off (augment_views = 0, fresh augmentation: the full network runs every epoch)"
    if not prepared.cache_path:
        replay = f", replaying {k} augmented views" if k else ""
        return f"off (naive: the full network runs every epoch{replay})"
    return ("hit" if prepared.cache_hit else "miss") + (f" ({k} augmented views per training image)" if k else "")


def warn_about_data(dataset: DataSet, reporter) -> None:
    """Duplicates across splits or classes: one warning line per kind; the sweep goes on."""
    for line in warnings(check_dataset(dataset)):
        reporter.warn(line)


def tuner_dir(store: Store) -> Path:
    """keras-tuner's own state lives beside a local store, else in the working folder."""
    return (store.local_dir or Path(".harness")) / "tuner"


def run_sweep(cfg: SweepConfig, tracking_uri: str | None = None, reporter=None,
              resume: str = "auto", use_cache: bool = True, register: str | None = None) -> SweepResult:
    """Run one sweep, or continue the interrupted one with the same configuration
    (resume: auto | resume | fresh); the parent ends FINISHED, FAILED or KILLED, never RUNNING.
    `use_cache=False` is the naive baseline: the backbone runs inside every trial (bench/).
    `register`: the winner becomes a new version of that registered model."""
    reporter = reporter or NullReporter()
    start = time.perf_counter()
    dataset = scan(cfg.data)  # bad folders and images fail here, before any compute or logging
    warn_about_data(dataset, reporter)
    backbones.get_spec(cfg.backbone)
    store = resolve_store(tracking_uri)
    tracker = Tracker(store, reporter.store_waiting)
    experiments.find(tracker, cfg.experiment_name)  # a name MLflow refuses, or a deleted experiment's
    key = sweep_key(cfg, dataset.fingerprint)
    seed_everything(cfg.seed)
    prepared = prepare(cfg, dataset, reporter, use_cache)
    experiment_id = experiments.ensure(tracker, cfg.experiment_name)
    tags = {**sweep_tags(cfg, dataset, prepared), "sweep_key": key}
    claimed = claim(tracker, cfg.experiment_name, key, tuner_dir(store), resume)
    try:
        with signals_interrupt():
            parent = _open_parent(tracker, claimed, experiment_id, cfg, tags, prepared)
            tuner, best, seconds, model = _search(tracker, store, parent, experiment_id, cfg, prepared, reporter,
                                                  start, tags, register)
    finally:
        claimed.release()
    saved_views.write_views(tracker, experiment_id)  # the UI's saved views now include this sweep
    return SweepResult(cfg.method, cfg.experiment_name, parent, store.uri, list(tuner.records.values()),
                       best, seconds, prepared.cache_hit, prepared.extraction_seconds, tags, *model)


def _open_parent(tracker: Tracker, claimed, experiment_id: str, cfg: SweepConfig, tags, prepared) -> str:
    """The claimed parent, its stale RUNNING trials marked KILLED; else a new parent run."""
    if claimed.parent_id:
        parent = claimed.parent_id
        runs.end_running_children(tracker, experiment_id, parent, "KILLED")  # left by a killed process
    else:
        name = f"{cfg.method} · {cfg.backbone} · {datetime.now():%Y-%m-%d %H:%M:%S}"
        parent = runs.start(tracker, experiment_id, name, tags)
        claimed.hold(parent)
    try:
        if claimed.parent_id:
            tracker.client.update_run(parent, status="RUNNING")
            runs.set_tags(tracker, parent, tags)
            return parent
        runs.log_params(tracker, parent, {**fixed_params_of(cfg, prepared),
                                    "max_trials": cfg.max_trials})
        tracker.client.log_dict(parent, cfg.to_dict(), "sweep_config.json")
        runs.log_metrics(tracker, parent, {"extraction_seconds": prepared.extraction_seconds,
                                     "cache_hit": float(prepared.cache_hit)})
    except BaseException:
        _end_sweep(tracker, experiment_id, parent)
        raise
    return parent


def _search(tracker: Tracker, store: Store, parent: str, experiment_id: str, cfg: SweepConfig,
            prepared: Prepared, reporter, start: float, tags: dict[str, str], register: str | None):
    """keras-tuner's search under `parent`, then the winner logged (and registered); on any exit
    but success, its runs end KILLED or FAILED. Returns (tuner, best, seconds, (model URI, registered))."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # keras-tuner's "Reloading Tuner" line
            tuner = TrackedTuner(
                make_oracle(cfg), prepared.hypermodel, cfg=cfg, tracker=tracker, experiment_id=experiment_id,
                parent_id=parent, fixed_params=fixed_params_of(cfg, prepared),
                reporter=reporter,
                directory=str(tuner_dir(store)), project_name=parent, overwrite=False)
        tuner.restore_records(reading.children(tracker, parent, experiment_id))
        if cfg.tuner == "hyperband":
            runs.log_params(tracker, parent, hyperband_params(tuner.oracle))
        reporter.sweep_started(cfg, tracker.client.get_run(parent).info.run_name, tuner.planned_trials)
        tuner.search(prepared.data, verbose=0)  # our reporter, not the oracle's printout
        best = _record_best(tracker, parent, tuner)
        uri = None
        if best is not None:
            log_confusion_matrix(tracker, best.run_id, f"{best.name} · test split")
            size = best.hyperparameters.get("image_size", cfg.image_sizes[0])  # the trial's size when searched
            uri = winner.log_winner(tracker, parent, best, tuner, prepared.frozen[size], cfg, size,
                                    prepared.data.class_names)
        seconds = time.perf_counter() - start
        runs.log_metrics(tracker, parent, {"sweep_seconds": seconds, "trials_finished": sum(
            r.status == "FINISHED" for r in tuner.records.values())})
        tracker.client.set_terminated(parent, "FINISHED")
    except BaseException:
        _end_sweep(tracker, experiment_id, parent)
        raise
    # after the sweep has ended FINISHED: a registry problem does not undo a finished sweep
    registered = winner.register(tracker, register, uri, parent, best, tags) if register and uri else None
    return tuner, best, seconds, (uri, registered)


def _end_sweep(tracker: Tracker, experiment_id: str, parent: str) -> None:
    """While an exception propagates: end the trial in progress and the parent, KILLED or FAILED."""
    status = "KILLED" if _interrupted() else "FAILED"
    try:
        runs.end_running_children(tracker, experiment_id, parent, status)
    finally:  # the parent too, even if the store would not list its children
        tracker.client.set_terminated(parent, status)


def _interrupted() -> bool:
    import sys

    return isinstance(sys.exc_info()[1], KeyboardInterrupt)


def _record_best(tracker: Tracker, parent: str, tuner: TrackedTuner) -> TrialRecord | None:
    """The best trial by validation accuracy, as keras-tuner's oracle ranks them."""
    best_trials = tuner.oracle.get_best_trials(1)
    if not best_trials:
        return None
    best = tuner.records[best_trials[0].trial_id]
    runs.set_tags(tracker, parent, {"best_trial_id": best.trial_id, "best_run_id": best.run_id,
                              **{f"best.{k}": v for k, v in best.hyperparameters.items()}})
    metrics = {"best_val_accuracy": best.val_accuracy}
    if not math.isnan(best.test_accuracy):
        metrics["best_test_accuracy"] = best.test_accuracy
    runs.log_metrics(tracker, parent, metrics)
    return best
