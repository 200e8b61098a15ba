"""Sweep files (TOML) into frozen, strictly validated dataclasses, with CLI overrides."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

METHODS = ("feature-extraction", "fine-tune")
TUNERS = ("random", "bayesian", "hyperband")
PREPROCESSING = ("backbone", "rescale")
BACKBONES = ("vgg16", "mobilenet_v2")
PRECISIONS = ("auto", "float32", "bfloat16")
POOLINGS = ("flatten", "avg")  # the head's first layer: the tutorial's Flatten, or global average pooling
FLIPS = ("horizontal", "vertical", "horizontal_and_vertical", "none")


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
class SearchSpace:
    """What the tuner may vary. `fine_tune_learning_rate` is used by fine-tune only."""

    units: Choice = Choice((64, 128, 256, 512), 128)
    dropout: Range = Range(0.0, 0.6, 0.5)
    learning_rate: Range = Range(1e-5, 1e-3, 1e-4, log=True)
    fine_tune_learning_rate: Range = Range(1e-6, 1e-4, 1e-5, log=True)


@dataclass(frozen=True)
class Augmentation:
    """Random transformations of the training images, as Keras preprocessing layers; the defaults
    are the book's (flip horizontal, rotation 0.1, zoom 0.2). 0 switches a transformation off.
    `seed` fixes the cached views, so sweeps with other seeds share them."""

    flip: str = "horizontal"
    rotation: float = 0.1  # fraction of a full turn, either way
    zoom: float = 0.2  # fraction of the side, in or out
    translation: float = 0.0  # fraction of the side, each axis
    contrast: float = 0.0  # factor range 1 +- contrast
    seed: int = 0


@dataclass(frozen=True)
class SweepConfig:
    """Everything a sweep needs, resolved: file values overridden by CLI flags."""

    method: str
    data: str = "data/cats_and_dogs_small"
    backbone: str = "vgg16"
    weights: str = "imagenet"
    alpha: float = 0.35
    image_size: int | tuple[int, ...] = 150  # several: searched like a hyperparameter
    epochs: int = 20
    batch_size: int = 64
    preprocessing: str = "backbone"
    augment: bool = False
    augment_views: int = 5  # K augmented views per training image in the cache; 0: fresh every epoch, uncached
    augmentation: Augmentation = field(default_factory=Augmentation)
    pooling: str | tuple[str, ...] = "flatten"  # several: searched like a hyperparameter
    precision: str = "auto"  # of the frozen backbone pass; training is always float32
    tuner: str = "random"
    max_trials: int = 10
    max_consecutive_failed_trials: int = 3
    seed: int = 42
    experiment: str = ""
    space: SearchSpace = field(default_factory=SearchSpace)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def image_sizes(self) -> tuple[int, ...]:
        return _as_tuple(self.image_size)

    @property
    def poolings(self) -> tuple[str, ...]:
        return _as_tuple(self.pooling)

    @property
    def experiment_name(self) -> str:
        """One experiment per data set unless told otherwise."""
        return self.experiment or Path(self.data).resolve().name


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


_SCALARS: dict[str, type] = {
    "method": str, "data": str, "backbone": str, "weights": str, "alpha": float,
    "image_size": int, "epochs": int, "batch_size": int, "preprocessing": str,
    "augment": bool, "augment_views": int, "pooling": str, "precision": str, "tuner": str,
    "max_trials": int, "max_consecutive_failed_trials": int, "seed": int, "experiment": str,
}
_LISTABLE = ("image_size", "pooling")  # one value, or a list to search
_AUGMENTATION: dict[str, type] = {"flip": str, "rotation": float, "zoom": float, "translation": float,
                                  "contrast": float, "seed": int}
_SPACE_KINDS = {"units": Choice, "dropout": Range, "learning_rate": Range,
                "fine_tune_learning_rate": Range}


def _typed(key: str, value: Any, kind: type) -> Any:
    # bool is an int in Python; TOML keeps them apart, so must we.
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise HarnessError(f"{key}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _one_or_list(key: str, value: Any, kind: type) -> Any:
    """A value, or a non-empty list of distinct values (kept as a tuple)."""
    if not isinstance(value, list):
        return _typed(key, value, kind)
    values = tuple(_typed(key, v, kind) for v in value)
    if not values or len(set(values)) != len(values):
        raise HarnessError(f"{key}: expected one {kind.__name__} or a non-empty list of distinct ones")
    return values[0] if len(values) == 1 else values


def _parse_augmentation(table: Any) -> Augmentation:
    if not isinstance(table, dict):
        raise HarnessError("augmentation: expected a table")
    _reject_unknown("augmentation", table, set(_AUGMENTATION))
    return Augmentation(**{k: _typed(f"augmentation.{k}", v, _AUGMENTATION[k]) for k, v in table.items()})


def _parse_choice(key: str, table: dict[str, Any], base: Choice) -> Choice:
    _reject_unknown(key, table, {"values", "default"})
    values = table.get("values", list(base.values))
    if not isinstance(values, list) or not values:
        raise HarnessError(f"{key}.values: expected a non-empty list of integers")
    values = tuple(_typed(f"{key}.values", v, int) for v in values)
    default = _typed(f"{key}.default", table.get("default", base.default), int)
    return Choice(values, default)


def _parse_range(key: str, table: dict[str, Any], base: Range) -> Range:
    _reject_unknown(key, table, {"min", "max", "default", "log"})
    lo = _typed(f"{key}.min", table.get("min", base.min), float)
    hi = _typed(f"{key}.max", table.get("max", base.max), float)
    default = _typed(f"{key}.default", table.get("default", base.default), float)
    log = _typed(f"{key}.log", table.get("log", base.log), bool)
    return Range(lo, hi, default, log)


def _reject_unknown(where: str, table: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        prefix = f"{where}." if where else ""
        raise HarnessError(f"unknown key {prefix}{unknown[0]} (allowed: {', '.join(sorted(known))})")


def _parse_space(table: Any) -> SearchSpace:
    if not isinstance(table, dict):
        raise HarnessError("space: expected a table")
    _reject_unknown("space", table, set(_SPACE_KINDS))
    base = SearchSpace()
    parsed = {}
    for name, kind in _SPACE_KINDS.items():
        sub = table.get(name, {})
        if not isinstance(sub, dict):
            raise HarnessError(f"space.{name}: expected a table")
        parse = _parse_choice if kind is Choice else _parse_range
        parsed[name] = parse(f"space.{name}", sub, getattr(base, name))
    return SearchSpace(**parsed)


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


def _check_augmentation(aug: Augmentation) -> None:
    _one_of("augmentation.flip", aug.flip, FLIPS)
    limits = {"rotation": 0.5, "zoom": 0.9, "translation": 0.5, "contrast": 1.0}
    for key, upper in limits.items():
        value = getattr(aug, key)
        if not (math.isfinite(value) and 0 <= value <= upper):
            raise HarnessError(f"augmentation.{key}: must lie within [0, {upper}], got {value}")
    _at_least("augmentation.seed", aug.seed, 0)


def _one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise HarnessError(f"{key}: {value!r} is not one of {', '.join(allowed)}")


def _at_least(key: str, value: float, low: float) -> None:
    if value < low:
        raise HarnessError(f"{key}: must be >= {low}, got {value}")


def validate(cfg: SweepConfig) -> SweepConfig:
    """Reject impossible values, naming the key, before any compute happens."""
    _one_of("method", cfg.method, METHODS)
    _one_of("backbone", cfg.backbone, BACKBONES)
    _one_of("tuner", cfg.tuner, TUNERS)
    _one_of("preprocessing", cfg.preprocessing, PREPROCESSING)
    _one_of("precision", cfg.precision, PRECISIONS)
    for size in cfg.image_sizes:
        _at_least("image_size", size, 32)
    for pooling in cfg.poolings:
        _one_of("pooling", pooling, POOLINGS)
    _at_least("augment_views", cfg.augment_views, 0)
    _check_augmentation(cfg.augmentation)
    _at_least("epochs", cfg.epochs, 1)
    _at_least("batch_size", cfg.batch_size, 1)
    _at_least("max_trials", cfg.max_trials, 1)
    _at_least("max_consecutive_failed_trials", cfg.max_consecutive_failed_trials, 1)
    _at_least("seed", cfg.seed, 0)
    if not 0 < cfg.alpha <= 1.4:
        raise HarnessError(f"alpha: must be in (0, 1.4], got {cfg.alpha}")
    if not cfg.data:
        raise HarnessError("data: must name a folder")
    if not cfg.weights:
        raise HarnessError("weights: must be imagenet, none or a file path")
    units = cfg.space.units
    if any(u < 1 for u in units.values) or units.default not in units.values:
        raise HarnessError(f"space.units: values must be >= 1 and include the default {units.default}")
    _check_range("space.dropout", cfg.space.dropout, positive=False, upper=0.99)
    _check_range("space.learning_rate", cfg.space.learning_rate, positive=True)
    _check_range("space.fine_tune_learning_rate", cfg.space.fine_tune_learning_rate, positive=True)
    return cfg


def parse(table: dict[str, Any], method: str) -> SweepConfig:
    """Build a SweepConfig from a TOML table; every key is checked."""
    _reject_unknown("", table, set(_SCALARS) | {"space", "augmentation"})
    values: dict[str, Any] = {"method": method}
    for key, kind in _SCALARS.items():
        if key in table:
            read = _one_or_list if key in _LISTABLE else _typed
            values[key] = read(key, table[key], kind)
    if values["method"] != method:
        raise HarnessError(f"method: the file is for {values['method']!r}, not {method!r}")
    if "space" in table:
        values["space"] = _parse_space(table["space"])
    if "augmentation" in table:
        values["augmentation"] = _parse_augmentation(table["augmentation"])
    return SweepConfig(**values)


def default_sweep_file(method: str):
    """The sweep file shipped inside the package for `method` (an importlib.resources Traversable)."""
    from importlib.resources import files

    _one_of("method", method, METHODS)
    return files("harness").joinpath("sweeps", f"{method}.toml")


def load(path: Path | None, method: str, overrides: dict[str, Any] | None = None) -> SweepConfig:
    """Read a sweep file (None: the packaged default for `method`), apply CLI overrides
    (None means 'not given'), validate."""
    source = default_sweep_file(method) if path is None else Path(path)
    try:
        table = tomllib.loads(source.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError):
        raise HarnessError(f"sweep file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"sweep file {path or source.name} is not valid TOML: {exc}") from None
    cfg = parse(table, method)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    for key, value in given.items():
        _typed(key, value, _SCALARS[key])
    return validate(dataclasses.replace(cfg, **given))


def write_defaults(folder: str | Path, force: bool = False) -> list[Path]:
    """`harness init`: copy the packaged sweep files into `folder` for editing. An existing file
    is an error unless `force` (checked for both before either is written)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise HarnessError(f"{folder} is not a folder")
    targets = {m: folder / f"{m}.toml" for m in METHODS}
    existing = [t for t in targets.values() if t.exists()]
    if existing and not force:
        raise HarnessError(f"{existing[0]} exists; pass --force to overwrite it")
    folder.mkdir(parents=True, exist_ok=True)
    for method, target in targets.items():
        target.write_text(default_sweep_file(method).read_text(encoding="utf-8"), encoding="utf-8")
    return list(targets.values())
