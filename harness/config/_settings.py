"""SweepConfig, each top-level sweep setting declared once on its field, and what follows from
the declarations: parse (TOML table -> config), validate, load (file + CLI overrides)."""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any

from harness.config._choices import BACKBONES, METHODS, POOLINGS, PRECISIONS, PREPROCESSING, TUNERS
from harness.config._declare import (Rule, as_tuple, check_fields, read_fields, setting,
                                     table)
from harness.config._files import read_sweep_file
from harness.config._space import Augmentation, SearchSpace, check_space, read_space
from harness.errors import HarnessError

_ALPHA = Rule("0 or (0, 1.4]", lambda v: 0 <= v <= 1.4, "must be 0 (the backbone's own) or in (0, 1.4], got {value}")
_UNFREEZE = Rule(">= 1, or a layer name", lambda v: bool(v) if isinstance(v, str) else v >= 1,
                 "must be a number of stages >= 1 or a layer name, got {value!r}")
_A_FOLDER = Rule("a folder", bool, "must name a folder")
_WEIGHTS = Rule("imagenet, none or a file path", bool, "must be imagenet, none or a file path")


@dataclass(frozen=True)
class SweepConfig:
    """Everything a sweep needs, resolved: file values overridden by CLI flags. Each field declares
    its setting (type, default, allowed values, help, flag, logged as a param) in one place."""

    method: str = setting(MISSING, str, "The transfer-learning method: set by the sweep command, which "
                          "a file may only repeat", choices=METHODS)
    data: str = setting("data/cats_and_dogs_small", str, "Data folder: {train,validation,test}/<class>/<images>",
                        rule=_A_FOLDER, flag="--data")
    backbone: str | tuple[str, ...] = setting("vgg16", str, "Pretrained base network (`harness backbones` lists "
                                              "them); a list is searched, one cache entry each",
                                              choices=BACKBONES, listable=True, flag="--backbone", param=True)
    weights: str = setting("imagenet", str, "imagenet | none | PATH to a .weights.h5 file or a Keras 2 .h5 "
                           "weights file", rule=_WEIGHTS,
                           flag="--weights", param=True)
    # alpha is logged too, as each backbone resolves it, by the sweep itself
    alpha: float = setting(0.0, float, "Width of the MobileNets (mobilenet, mobilenet_v2, mobilenet_v3_*); 0: "
                           "the backbone's own (mobilenet_v2: 0.35, the shared offline weights; others: 1.0)",
                           rule=_ALPHA)
    unfreeze: int | str | tuple = setting(1, (int, str), "Fine-tune: what phase 2 unfreezes: the top N stages of "
                                          "the backbone (1: the tutorial's block5) or every layer after the named "
                                          "one; a list is searched, one cache entry each", rule=_UNFREEZE,
                                          listable=True, flag="--unfreeze",
                                          param=lambda cfg: cfg.method == "fine-tune")
    image_size: int | tuple[int, ...] = setting(150, int, "Image side in pixels; each size has its own "
                                                "cache entry", at_least=32, listable=True,
                                                flag="--image-size", param=True)
    epochs: int = setting(20, int, "Epochs per phase (fine-tune runs two)", at_least=1, flag="--epochs",
                          param=True)
    batch_size: int = setting(64, int, "Training batch size", at_least=1, flag="--batch-size", param=True)
    preprocessing: str = setting("backbone", str, "backbone: the network's own; rescale: the tutorial's 1/255",
                                 choices=PREPROCESSING, param=True)
    augment: bool = setting(False, bool, "Train on randomly transformed images (the [augmentation] table)",
                            flag="--augment", param=True)
    augment_views: int = setting(5, int, "With augment: K augmented views of every training image, cached; "
                                 "0: fresh augmentation every epoch, uncached", at_least=0,
                                 flag="--augment-views", param=lambda cfg: cfg.augment)
    augmentation: Augmentation = table(Augmentation, "With augment: the random transformations, as Keras "
                                       "preprocessing layers; 0 switches one off", param=lambda cfg: cfg.augment)
    pooling: str | tuple[str, ...] = setting("flatten", str, "The head's first layer: flatten (the tutorial's) "
                                             "or global average pooling", choices=POOLINGS, listable=True,
                                             param=True)
    # precision is logged too, but as resolved ("auto" decided), by the sweep itself
    precision: str = setting("auto", str, "Precision of the frozen backbone pass; auto: bfloat16 where it is "
                             "faster (training is always float32)", choices=PRECISIONS, flag="--precision")
    memory_budget: float = setting(0.0, float, "GB of RAM trials may hold cached features in; more is read from "
                                   "the cache files batch by batch; 0: half of the memory available "
                                   "(HARNESS_MEMORY_BUDGET overrides)", at_least=0)
    tuner: str = setting("random", str, "KerasTuner oracle", choices=TUNERS, flag="--tuner", param=True)
    max_trials: int = setting(10, int, "Number of trials (hyperband: configurations to try at least)",
                              at_least=1, flag="--max-trials")
    max_consecutive_failed_trials: int = setting(3, int, "Stop the sweep when this many trials in a row fail",
                                                 at_least=1)
    seed: int = setting(42, int, "One seed for Python, NumPy, TensorFlow and the order of augmented views "
                        "(trial i uses seed + i)", at_least=0, flag="--seed", param=True)
    experiment: str = setting("", str, "MLflow experiment (default: the data folder's name)", flag="--experiment")
    space: SearchSpace = table(SearchSpace, "What the tuner may vary", read=read_space, check=check_space)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def image_sizes(self) -> tuple[int, ...]:
        return as_tuple(self.image_size)

    @property
    def poolings(self) -> tuple[str, ...]:
        return as_tuple(self.pooling)

    @property
    def backbones(self) -> tuple[str, ...]:
        return as_tuple(self.backbone)

    @property
    def unfreezes(self) -> tuple[int | str, ...]:
        """The cuts fine-tuning searches (feature extraction reads the first one's entry): all numbers,
        or all text where one is a layer name, because a keras-tuner Choice holds one type."""
        values = as_tuple(self.unfreeze)
        return values if all(isinstance(v, int) for v in values) else tuple(map(str, values))

    @property
    def experiment_name(self) -> str:
        """One experiment per data set unless told otherwise."""
        return self.experiment or Path(self.data).resolve().name


def validate(cfg: SweepConfig) -> SweepConfig:
    """Reject impossible values, naming the key, before any compute happens."""
    check_fields(cfg)
    return cfg


def parse(table: dict[str, Any], method: str) -> SweepConfig:
    """Build a SweepConfig from a TOML table; every key is checked."""
    values = {"method": method, **read_fields(SweepConfig, table)}
    if values["method"] != method:
        raise HarnessError(f"method: the file is for {values['method']!r}, not {method!r}")
    return SweepConfig(**values)


def load(path: Path | None, method: str, overrides: dict[str, Any] | None = None) -> SweepConfig:
    """Read a sweep file (None: the packaged default for `method`), apply overrides (None means 'not
    given'; any sweep-file key, a list where the file may have one), validate. Overrides are laid
    over the file's table, so they are read and checked exactly as the file's own values."""
    table = read_sweep_file(path, method)
    table.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return validate(parse(table, method))
