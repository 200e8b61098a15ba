"""The frozen networks a sweep searches over: one variant per backbone x image size x cut, each its
own cache entry, and each searched axis a keras-tuner hyperparameter of its setting's name."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable

AXES = ("backbone", "image_size", "unfreeze")


@dataclass(frozen=True)
class Variant:
    """One frozen network: which backbone, at which image size, cut where for fine-tuning."""

    backbone: str
    image_size: int
    unfreeze: int | str  # the fine-tuning cut; feature extraction reads the first cut's entry


def variants(cfg) -> list[Variant]:
    """Every variant the sweep's settings name, in the order of the settings' lists."""
    unfreezes = cfg.unfreezes if cfg.method == "fine-tune" else cfg.unfreezes[:1]
    return [Variant(*v) for v in itertools.product(cfg.backbones, cfg.image_sizes, unfreezes)]


def axis_values(keys: Iterable) -> dict[str, tuple]:
    """Each axis's values in first-seen order (only the axes of Variant keys)."""
    keys = [k for k in keys if isinstance(k, Variant)]
    return {axis: tuple(dict.fromkeys(getattr(k, axis) for k in keys)) for axis in AXES}


def declare(hp, keys: Iterable):
    """Declare every axis that has several values as a Choice (the first value its default) and
    return the trial's key. A single key (tests, one network) declares nothing."""
    keys = list(keys)
    if len(keys) == 1:
        return keys[0]
    chosen = {axis: values[0] if len(values) == 1 else hp.Choice(axis, list(values), default=values[0])
              for axis, values in axis_values(keys).items()}
    return Variant(**chosen)


def of_trial(hyperparameters, keys: Iterable):
    """The trial's key from its hyperparameters (declared by `declare`), without declaring anything."""
    keys = list(keys)
    if len(keys) == 1:
        return keys[0]
    values = hyperparameters if isinstance(hyperparameters, dict) else hyperparameters.values
    return Variant(**{axis: vals[0] if len(vals) == 1 else values[axis] for axis, vals in axis_values(keys).items()})
