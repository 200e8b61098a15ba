"""What every process of one sweep shares: its settings, data, store and prepared network (the
preamble, run once per process), and what it logs about them as params and tags."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from harness.backbones import _registry as backbones
from harness.config import SweepConfig, declared
from harness.data._check import check_dataset, warnings
from harness.data._folders import DataSet, scan
from harness.errors import HarnessError
from harness.tracking import Store, Tracker, experiments, resolve_store
from harness.tracking.environment import environment_tags
from harness.training._heads import loss_for
from harness.training._prepare import Prepared, prepare, view_count, width
from harness.training._seeding import seed_everything


@dataclass
class SweepContext:
    """One sweep as this process sees it, once its inputs are checked and its features are ready."""

    cfg: SweepConfig
    dataset: DataSet
    store: Store
    tracker: Tracker
    prepared: Prepared
    reporter: Any

    @cached_property
    def experiment_id(self) -> str:
        """The sweep's experiment, created on first use (after extraction: a failed one logs nothing)."""
        return experiments.ensure(self.tracker, self.cfg.experiment_name)

    @property
    def fixed_params(self) -> dict[str, Any]:
        return fixed_params_of(self.cfg, self.prepared)

    @property
    def tags(self) -> dict[str, str]:
        return sweep_tags(self.cfg, self.dataset, self.prepared)

    @property
    def tuner_dir(self) -> Path:
        return tuner_dir(self.store)


def open_context(cfg: SweepConfig, tracking_uri: str | None, reporter, use_cache: bool = True,
                 dataset: DataSet | None = None, tracker: Tracker | None = None) -> SweepContext:
    """The preamble: data scanned (bad folders and images fail here, before any compute or
    logging) and checked, the backbone known, the store open and the experiment name usable,
    every random source seeded, the features extracted or found in the cache."""
    dataset = dataset or scan(cfg.data)
    for line in warnings(check_dataset(dataset)):  # duplicates across splits or classes; the sweep goes on
        reporter.warn(line)
    check_backbones(cfg)
    store = tracker.store if tracker else resolve_store(tracking_uri)
    tracker = tracker or Tracker(store, reporter.store_waiting)
    experiments.find(tracker, cfg.experiment_name)  # a name MLflow refuses, or a deleted experiment's
    seed_everything(cfg.seed)
    prepared = prepare(cfg, dataset, reporter, use_cache)
    return SweepContext(cfg, dataset, store, tracker, prepared, reporter)


def check_backbones(cfg: SweepConfig) -> None:
    """Every searched backbone known and able to take every searched image size, and a weights
    file only for one backbone (a file holds one network's weights): before any compute."""
    for name in cfg.backbones:
        spec = backbones.get_spec(name)
        small = min(cfg.image_sizes)
        if small < spec.min_size:
            raise HarnessError(f"image_size: {name} takes images of at least {spec.min_size} px, got {small}")
    if len(cfg.backbones) > 1 and cfg.weights not in ("imagenet", "none"):
        raise HarnessError(f"weights: a file holds one network's weights; with {len(cfg.backbones)} backbones "
                           "use imagenet or none")


def tuner_dir(store: Store) -> Path:
    """keras-tuner's own state lives beside a local store, else in the working folder."""
    return (store.local_dir or Path(".harness")) / "tuner"


def fixed_params_of(cfg: SweepConfig, prepared: Prepared) -> dict[str, Any]:
    """The sweep's settings every trial shares, as MLflow params of the parent and of each trial:
    those whose declarations say they are logged (and when), then what the sweep derives."""
    params = {}
    for key, setting in declared(SweepConfig).items():
        if not setting.logs(cfg):
            continue
        value = getattr(cfg, key)
        values = value if setting.listable and isinstance(value, tuple) else (value,)
        if setting.table:
            params[key] = " ".join(f"{k}={v}" for k, v in value.__dict__.items())
        elif len(values) == 1:
            params[key] = values[0]
        else:  # searched: each trial's own value is its hyperparameter of this name
            params[f"{key}_choices"] = ",".join(map(str, values))
    widths = {b: w for b in cfg.backbones if (w := width(cfg, b)) is not None}
    if widths:  # as each backbone resolves it (0: its own)
        params["alpha"] = next(iter(widths.values())) if len(set(widths.values())) == 1 else \
            " ".join(f"{b}={w}" for b, w in widths.items())
    params["feature_reads"] = prepared.data.reads  # images | memory | stream (see harness.training._memory)
    params["n_classes"] = prepared.data.n_classes
    params["output"] = "sigmoid" if prepared.data.n_classes == 2 else "softmax"
    params["loss"] = loss_for(prepared.data.n_classes).name
    params["precision"] = prepared.precision
    params["optimizer"] = "adam" if cfg.method == "feature-extraction" else "adam, then rmsprop"
    return params


def sweep_tags(cfg: SweepConfig, dataset: DataSet, prepared: Prepared) -> dict[str, str]:
    return {"method": cfg.method, "backbone": ",".join(cfg.backbones), "weights": cfg.weights, "tuner": cfg.tuner,
            "seed": str(cfg.seed), "data_dir": str(dataset.root.resolve()),
            "data_fingerprint": dataset.fingerprint, "sweep": "true",
            "classes": json.dumps(list(dataset.class_names), ensure_ascii=False),
            "feature_cache": _cache_tag(cfg, prepared),
            "augment": str(cfg.augment).lower(), "precision": prepared.precision, **environment_tags()}


def _cache_tag(cfg: SweepConfig, prepared: Prepared) -> str:
    k = view_count(cfg)
    if cfg.augment and not k:
        return "off (augment_views = 0, fresh augmentation: the full network runs every epoch)"
    if not prepared.cache_path:
        replay = f", replaying {k} augmented views" if k else ""
        return f"off (naive: the full network runs every epoch{replay})"
    return ("hit" if prepared.cache_hit else "miss") + (f" ({k} augmented views per training image)" if k else "")
