"""Sweep files on disk: the packaged defaults, `harness init`'s copies of them, and reading one
into a TOML table (its keys are checked by parse, not here)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from harness.config._choices import METHODS
from harness.config._declare import one_of
from harness.errors import HarnessError


def default_sweep_file(method: str):
    """The sweep file shipped inside the package for `method` (an importlib.resources Traversable)."""
    from importlib.resources import files

    one_of("method", method, METHODS)
    return files("harness").joinpath("sweeps", f"{method}.toml")


def read_sweep_file(path: Path | None, method: str) -> dict[str, Any]:
    """The TOML table of a sweep file (None: the packaged default for `method`)."""
    source = default_sweep_file(method) if path is None else Path(path)
    try:
        return tomllib.loads(source.read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError):
        raise HarnessError(f"sweep file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"sweep file {path or source.name} is not valid TOML: {exc}") from None


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
