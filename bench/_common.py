"""What the bench scripts share: their common command-line options, defined once, and the paths they use.

Private to bench/: the scripts run as `python bench/<script>.py`, so Python finds this module
beside them (`import _common`); `harness` itself is the installed package (`pip install -e .`).
Importing this module is cheap (no harness, no TensorFlow), so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository: the source tree bench/ measures
SHARED_DATA = "../shared/data/cats_and_dogs_small"  # the README's runs, from the repository root
SHARED_WEIGHTS = "../shared/weights/mobilenet_v2_0.35_imagenet_no_top.weights.h5"

BACKBONE = "mobilenet_v2"
IMAGE_SIZE = 150
EPOCHS = 20
SEED = 11  # the sweeps' seed in the README's numbers

REQUIRED, OPTIONAL = "required", "optional"


def make_parser(doc: str | None) -> argparse.ArgumentParser:
    """A script's parser, described by the first line of its docstring."""
    return argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)


def add_common(parser: argparse.ArgumentParser, *, data: str | None = None, out: str | None = None,
               backbone: bool = False, trials: int | None = None, epochs: int | None = None,
               trials_help: str | None = None, epochs_help: str | None = None) -> argparse.ArgumentParser:
    """Add the options several scripts share, in this order.

    data:     REQUIRED or OPTIONAL: --data (a photo folder) and --weights (the backbone's weights file)
    out:      REQUIRED or OPTIONAL: --out, the JSON report's path (OPTIONAL: no file unless given)
    backbone: --backbone (default BACKBONE) and --image-size (default IMAGE_SIZE)
    trials:   --trials with this default (int)
    epochs:   --epochs with this default (int), usually EPOCHS
    None/False leaves an option out.
    """
    if data is not None:
        parser.add_argument("--data", required=_required(data, "data"),
                            help=f"photo folder with train/validation/test splits (README: {SHARED_DATA})")
        parser.add_argument("--weights", required=_required(data, "data"),
                            help=f"the backbone's weights file, or 'none' (README: {SHARED_WEIGHTS})")
    if out is not None:
        parser.add_argument("--out", required=_required(out, "out"), help="where to write the JSON report")
    if backbone:
        parser.add_argument("--backbone", default=BACKBONE)
        parser.add_argument("--image-size", type=int, default=IMAGE_SIZE)
    if trials is not None:
        parser.add_argument("--trials", type=int, default=trials, help=trials_help)
    if epochs is not None:
        parser.add_argument("--epochs", type=int, default=epochs, help=epochs_help)
    return parser


def _required(kind: str, name: str) -> bool:
    if kind not in (REQUIRED, OPTIONAL):
        raise ValueError(f"{name} must be REQUIRED or OPTIONAL, not {kind!r}")
    return kind == REQUIRED


def write_json(path: str | Path, report) -> None:
    """The report as indented JSON (as every script writes it)."""
    Path(path).write_text(json.dumps(report, indent=1))


def emit(report: dict, out: str | None) -> dict:
    """Print the report as JSON and, with --out, write it there; returns it (what main() returns)."""
    print(json.dumps(report, indent=1))
    if out:
        write_json(out, report)
    return report
