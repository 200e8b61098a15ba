"""`harness data split`: a folder of class folders into train/validation/test, stratified per class."""

from __future__ import annotations

import math
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.data._check import digests
from harness.data._folders import SPLITS, class_folders, image_files
from harness.errors import HarnessError


@dataclass(frozen=True)
class SplitResult:
    """What was written: images per (split, class), and how the files got there."""

    dest: Path
    classes: tuple[str, ...]
    counts: dict[tuple[str, str], int]
    linked: int  # files hard-linked to the source
    copied: int  # files copied (the file system refused a hard link)
    kept_together: int  # sets of identical files within a class, each placed in one split

    @property
    def images(self) -> int:
        return sum(self.counts.values())


def split_sizes(n: int, validation: float, test: float) -> dict[str, int]:
    """Images per split for a class of n: validation and test get n x fraction rounded half up,
    at least 1 each; train gets the rest, which must be at least 1."""
    def share(fraction: float) -> int:
        return max(1, math.floor(n * fraction + 0.5 + 1e-9))  # 1e-9: 0.7 * 5 is 3.4999...

    sizes = {"validation": share(validation), "test": share(test)}
    return {"train": n - sizes["validation"] - sizes["test"], **sizes}


def check_fractions(validation: float, test: float) -> None:
    if not (0 < validation < 1 and 0 < test < 1 and validation + test < 1):
        raise HarnessError(f"--validation {validation} and --test {test}: each must lie in (0, 1) "
                           "and together below 1, so that train keeps some images")


def source_classes(source: Path, dest: Path) -> dict[str, list[Path]]:
    """Each class folder of `source` with its images (sorted by name); every problem named."""
    if not source.is_dir():
        raise HarnessError(f"source folder not found: {source}")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise HarnessError(f"destination {dest} is not an empty folder")
    if dest.resolve().is_relative_to(source.resolve()):
        raise HarnessError(f"destination {dest} lies inside the source {source}")
    names = class_folders(source)
    if set(names) >= set(SPLITS):
        raise HarnessError(f"{source} is split already (it has {', '.join(SPLITS)} folders); "
                           "give the folder of class folders")
    if len(names) < 2:
        raise HarnessError(f"{source} has {len(names)} class folder(s); a split needs at least 2 "
                           "(one sub-folder of images per class)")
    return {name: image_files(source / name) for name in names}


def plan(classes: dict[str, list[Path]], validation: float, test: float, seed: int):
    """Which files go to which split: {(split, class): [files]}, and how many sets of identical
    files were kept in one split. Within a class, identical files are one unit (so a split never
    puts the same photo in train and test); units are ordered by their first file name, then
    shuffled with a seed of their own per class: test takes the first, validation the next."""
    placed: dict[tuple[str, str], list[Path]] = {}
    kept_together = 0
    for label, files in classes.items():
        units = _units(files)
        kept_together += sum(len(u) > 1 for u in units)
        sizes = split_sizes(len(units), validation, test)
        if sizes["train"] < 1:
            raise HarnessError(f"class {label!r} has {len(units)} distinct images: too few to give "
                               f"train, validation and test one each at --validation {validation} "
                               f"--test {test}")
        random.Random(f"{seed}:{label}").shuffle(units)
        start = 0
        for split in ("test", "validation", "train"):
            chosen = units[start:start + sizes[split]]
            placed[split, label] = sorted(f for unit in chosen for f in unit)
            start += sizes[split]
    return placed, kept_together


def _units(files: list[Path]) -> list[list[Path]]:
    """The files grouped by content (identical bytes together), in order of first name."""
    found = digests(files)
    units: dict[str, list[Path]] = {}
    for f in files:
        units.setdefault(found.get(f, f"name:{f.name}"), []).append(f)
    return list(units.values())


def split_folder(source: str | Path, dest: str | Path, validation: float = 0.2, test: float = 0.2,
                 seed: int = 0) -> SplitResult:
    """Write `dest/{train,validation,test}/<class>/` from `source/<class>/`: the same source and
    seed always give the same files under the same names. Hard links where the file system
    allows them (no space used), copies otherwise."""
    source, dest = Path(source), Path(dest)
    check_fractions(validation, test)
    classes = source_classes(source, dest)
    placed, kept_together = plan(classes, validation, test, seed)
    created = not dest.exists()
    try:
        linked, copied = _write(placed, dest)
    except BaseException:  # leave no half-written split behind
        for split in SPLITS:
            shutil.rmtree(dest / split, ignore_errors=True)
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    counts = {(s, c): len(placed[s, c]) for s in SPLITS for c in classes}
    return SplitResult(dest, tuple(classes), counts, linked, copied, kept_together)


def _write(placed: dict[tuple[str, str], list[Path]], dest: Path) -> tuple[int, int]:
    linked = copied = 0
    can_link = True
    for (split, label), files in sorted(placed.items()):
        folder = dest / split / label
        folder.mkdir(parents=True, exist_ok=True)
        for src in files:
            can_link = can_link and _link(src, folder / src.name)
            if can_link:
                linked += 1
            else:
                shutil.copy2(src, folder / src.name)
                copied += 1
    return linked, copied


def _link(src: Path, dst: Path) -> bool:
    """Hard-link `dst` to `src`; False where the file system refuses (another device, no
    permission, no hard links at all): the caller copies this file and every later one."""
    try:
        os.link(src, dst)
    except OSError:
        return False
    return True
