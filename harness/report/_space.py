"""The hyperparameters a sweep searched, read from its resolved sweep file: each a choice among
values or a float range, and a trial's logged (string) value as that hyperparameter's value."""

from __future__ import annotations

import math
from dataclasses import dataclass

# Choices a sweep file may list several of (then the tuner searches them), and the method they apply to.
LISTABLE = {"backbone": None, "image_size": None, "pooling": None, "unfreeze": "fine-tune"}
RANGES_OF = {"fine_tune_learning_rate": "fine-tune"}  # a space entry only one method uses


@dataclass(frozen=True)
class Searched:
    """One searched hyperparameter: `choices` for a categorical one, else [low, high] (`log` scale)."""

    name: str
    choices: tuple = ()
    low: float = math.nan
    high: float = math.nan
    log: bool = False

    @property
    def categorical(self) -> bool:
        return bool(self.choices)

    def value(self, text: str):
        """The logged param as this hyperparameter's value: the matching choice, or a float."""
        if not self.categorical:
            return float(text)
        for choice in self.choices:
            if str(choice) == text or (not isinstance(choice, str) and _number(text) == choice):
                return choice
        return text  # not among the sweep file's values: shown as logged


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def searched(config: dict | None, method: str, trials) -> tuple[Searched, ...]:
    """What the sweep varied: its `[space]` (ranges whose min < max, choices of 2+ values) and the
    settings it listed several values of. Without the sweep file, the trials' own values."""
    if config is None:
        return _from_trials(trials)
    found = []
    for name, spec in config.get("space", {}).items():
        if RANGES_OF.get(name, method) != method:
            continue
        if "values" in spec and len(spec["values"]) > 1:
            found.append(Searched(name, tuple(spec["values"])))
        elif "min" in spec and spec["min"] < spec["max"]:
            # keras-tuner's steps can land a hair past max (0.6000000000000001): keep what was logged
            seen = [float(t.params[name]) for t in trials if name in t.params]
            found.append(Searched(name, low=min([spec["min"], *seen]), high=max([spec["max"], *seen]),
                                  log=bool(spec.get("log"))))
    for name, only in LISTABLE.items():
        values = config.get(name)
        if isinstance(values, list) and len(values) > 1 and only in (None, method):
            found.append(Searched(name, tuple(values)))
    return tuple(found)


def _from_trials(trials) -> tuple[Searched, ...]:
    names = ("units", "dropout", "learning_rate", "fine_tune_learning_rate", *LISTABLE)
    found = []
    for name in names:
        values = sorted({t.params[name] for t in trials if name in t.params})
        if len(values) > 1:
            found.append(Searched(name, tuple(values)))
    return tuple(found)
