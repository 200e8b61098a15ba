"""The sweep file's two nested tables: `[space]`, what the tuner may vary (Choice and Range
hyperparameters, each declared once with its bounds and help), and `[augmentation]`, declared
key by key like the top-level settings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from harness.config._choices import FLIPS
from harness.config._declare import reject_unknown, setting, typed
from harness.errors import HarnessError

_KEY = "harness.hyper"  # the field-metadata key of a hyperparameter's declaration


@dataclass(frozen=True)
class Choice:
    """A categorical hyperparameter; `default` is the tutorial's value."""

    values: tuple[int, ...]
    default: int


@dataclass(frozen=True)
class Range:
    """A continuous hyperparameter on [min, max]; `log` samples on a log scale."""

    min: float
    max: float
    default: float
    log: bool = False


@dataclass(frozen=True)
class Hyper:
    """How one `[space.<name>]` table is bounded and documented."""

    help: str
    positive: bool = False  # a Range whose min must be > 0
    upper: float = math.inf  # the highest max a Range may have


def hyper(default: Choice | Range, help: str, **bounds: Any) -> Any:
    return field(default=default, metadata={_KEY: Hyper(help, **bounds)})


@dataclass(frozen=True)
class SearchSpace:
    """What the tuner may vary. `fine_tune_learning_rate` is used by fine-tune only."""

    units: Choice = hyper(Choice((64, 128, 256, 512), 128), "Units of the head's dense layer")
    dropout: Range = hyper(Range(0.0, 0.6, 0.5), "Dropout rate of the head (in steps of 0.05)", upper=0.99)
    learning_rate: Range = hyper(Range(1e-5, 1e-3, 1e-4, log=True),
                                 "Adam's learning rate (fine-tune: phase 1, the head alone)", positive=True)
    fine_tune_learning_rate: Range = hyper(Range(1e-6, 1e-4, 1e-5, log=True),
                                           "RMSprop's learning rate of fine-tune's phase 2 (the top block "
                                           "unfrozen); fine-tune only", positive=True)


def hypers() -> dict[str, tuple[Choice | Range, Hyper]]:
    """Each hyperparameter of the space: its default and its declaration, in field order."""
    return {f.name: (f.default, f.metadata[_KEY]) for f in fields(SearchSpace)}


@dataclass(frozen=True)
class Augmentation:
    """Random transformations of the training images, as Keras preprocessing layers; the defaults
    are the book's (flip horizontal, rotation 0.1, zoom 0.2). 0 switches a transformation off.
    `seed` fixes the cached views, so sweeps with other seeds share them."""

    flip: str = setting("horizontal", str, "Random flips", choices=FLIPS)
    rotation: float = setting(0.1, float, "Random rotation: a fraction of a full turn, either way",
                              within=(0, 0.5))
    zoom: float = setting(0.2, float, "Random zoom: a fraction of the side, in or out", within=(0, 0.9))
    translation: float = setting(0.0, float, "Random shift: a fraction of the side, each axis",
                                 within=(0, 0.5))
    contrast: float = setting(0.0, float, "Random contrast: a factor within 1 +- contrast", within=(0, 1.0))
    seed: int = setting(0, int, "Fixes the cached views (sweeps with other seeds share them)", at_least=0)


def read_space(where: str, table: dict[str, Any]) -> SearchSpace:
    """The `[space]` table; a hyperparameter it leaves out keeps its default, as does a key of one."""
    specs = hypers()
    reject_unknown(where, table, set(specs))
    parsed = {}
    for name, (base, _) in specs.items():
        sub = table.get(name, {})
        if not isinstance(sub, dict):
            raise HarnessError(f"{where}.{name}: expected a table")
        read = _read_choice if isinstance(base, Choice) else _read_range
        parsed[name] = read(f"{where}.{name}", sub, base)
    return SearchSpace(**parsed)


def _read_choice(key: str, table: dict[str, Any], base: Choice) -> Choice:
    reject_unknown(key, table, {"values", "default"})
    values = table.get("values", list(base.values))
    if not isinstance(values, list) or not values:
        raise HarnessError(f"{key}.values: expected a non-empty list of integers")
    values = tuple(typed(f"{key}.values", v, int) for v in values)
    default = typed(f"{key}.default", table.get("default", base.default), int)
    return Choice(values, default)


def _read_range(key: str, table: dict[str, Any], base: Range) -> Range:
    reject_unknown(key, table, {"min", "max", "default", "log"})
    lo = typed(f"{key}.min", table.get("min", base.min), float)
    hi = typed(f"{key}.max", table.get("max", base.max), float)
    default = typed(f"{key}.default", table.get("default", base.default), float)
    log = typed(f"{key}.log", table.get("log", base.log), bool)
    return Range(lo, hi, default, log)


def check_space(where: str, space: SearchSpace) -> None:
    """Reject a hyperparameter its declaration does not allow, naming the key."""
    for name, (_, spec) in hypers().items():
        value, key = getattr(space, name), f"{where}.{name}"
        if isinstance(value, Choice):
            _check_choice(key, value)
        else:
            _check_range(key, value, spec.positive, spec.upper)


def _check_choice(key: str, c: Choice) -> None:
    if any(u < 1 for u in c.values) or c.default not in c.values:
        raise HarnessError(f"{key}: values must be >= 1 and include the default {c.default}")


def _check_range(key: str, r: Range, positive: bool, upper: float = math.inf) -> None:
    if not all(math.isfinite(v) for v in (r.min, r.max, r.default)):
        raise HarnessError(f"{key}: values must be finite")
    if positive and r.min <= 0:
        raise HarnessError(f"{key}.min: must be > 0, got {r.min}")
    if r.min < 0 or r.max > upper:
        raise HarnessError(f"{key}: must lie within [0, {upper}], got [{r.min}, {r.max}]")
    if r.min > r.max:
        raise HarnessError(f"{key}: min {r.min} is greater than max {r.max}")
    if not r.min <= r.default <= r.max:
        raise HarnessError(f"{key}.default: {r.default} is outside [{r.min}, {r.max}]")
    if r.log and r.min <= 0:
        raise HarnessError(f"{key}.log: a log range needs min > 0")
