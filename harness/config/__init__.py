"""Sweep settings: each declared once (type, default, allowed values, help, CLI flag, logged or
not), and the sweep files parsed, validated and documented from those declarations (imports only
harness.errors)."""

from harness.config._choices import BACKBONES, FLIPS, METHODS, POOLINGS, PRECISIONS, PREPROCESSING, TUNERS
from harness.config._declare import Rule, Setting, declared, flagged, setting, table
from harness.config._reference import reference
from harness.config._settings import SweepConfig, load, parse, validate
from harness.config._space import Augmentation, Choice, Range, SearchSpace
from harness.config._files import default_sweep_file, write_defaults

__all__ = ["METHODS", "TUNERS", "PREPROCESSING", "BACKBONES", "PRECISIONS", "POOLINGS", "FLIPS",
           "Setting", "Rule", "setting", "table", "declared", "flagged",
           "Choice", "Range", "SearchSpace", "Augmentation", "SweepConfig",
           "parse", "validate", "load", "default_sweep_file", "write_defaults", "reference"]
