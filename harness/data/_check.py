"""Data checks before any compute: exact duplicate images across splits or classes, class counts."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from harness.data._folders import SPLITS, DataSet, class_folders, image_files
from harness.errors import HarnessError


@dataclass(frozen=True)
class ImageFile:
    """One image file: where it sits in the layout (split '' for an unsplit folder)."""

    split: str
    label: str
    path: Path


@dataclass(frozen=True)
class Duplicates:
    """Files with the same bytes (sha256 `digest`), paths relative to the checked folder."""

    digest: str
    images: tuple[ImageFile, ...]

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(sorted({i.split for i in self.images}))

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted({i.label for i in self.images}))


@dataclass(frozen=True)
class DataReport:
    """What `harness data check` found; `leaks` and `conflicts` are problems, `repeats` is info."""

    root: Path
    splits: tuple[str, ...]  # ('',) for a folder of class folders that is not split yet
    classes: tuple[str, ...]
    counts: dict[tuple[str, str], int]  # (split, class) -> images
    leaks: tuple[Duplicates, ...]  # the same image in two splits (test leakage)
    conflicts: tuple[Duplicates, ...]  # the same image under two classes (conflicting labels)
    repeats: tuple[Duplicates, ...]  # the same image twice in one class of one split

    @property
    def images(self) -> int:
        return sum(self.counts.values())

    @property
    def problems(self) -> bool:
        return bool(self.leaks or self.conflicts)

    def imbalance(self, split: str) -> float:
        """Largest over smallest class count in `split` (inf when a class is empty)."""
        counts = [self.counts[split, c] for c in self.classes]
        return max(counts) / min(counts) if min(counts) else float("inf")


def digests(paths: list[Path]) -> dict[Path, str]:
    """sha256 of every file that shares its size with another one; a file of unique size
    cannot have an exact duplicate, so it is never read (most files, on real photos)."""
    by_size: dict[int, list[Path]] = defaultdict(list)
    for path in paths:
        by_size[path.stat().st_size].append(path)
    found = {}
    for same_size in by_size.values():
        if len(same_size) > 1:
            for path in same_size:
                with open(path, "rb") as f:
                    found[path] = hashlib.file_digest(f, "sha256").hexdigest()
    return found


def check_dataset(dataset: DataSet) -> DataReport:
    """The report on a data set that `data.scan` has already accepted (what a sweep runs on)."""
    images = [ImageFile(split, path.parent.name, path)
              for split, part in dataset.splits.items() for path in part.files]
    return _report(dataset.root, tuple(dataset.splits), images)


def check_folder(root: str | Path) -> DataReport:
    """The report on `root`: the split layout `{train,validation,test}/<class>/`, or a folder of
    class folders not split yet (then only duplicates across and within classes can show)."""
    root = Path(root)
    if not root.is_dir():
        raise HarnessError(f"data folder not found: {root}")
    present = [s for s in SPLITS if (root / s).is_dir()]
    if present and len(present) < len(SPLITS):
        missing = next(s for s in SPLITS if s not in present)
        raise HarnessError(f"{root} has {', '.join(present)} but no {missing}/ folder")
    splits = tuple(present) or ("",)
    classes = class_folders(root / splits[0])
    if not classes:
        raise HarnessError(f"no class folders in {root / splits[0]}")
    for split in splits[1:]:
        _same_classes(root, split, classes, splits[0])
    images = [ImageFile(split, label, path) for split in splits for label in classes
              for path in image_files(root / split / label)]
    return _report(root, splits, images)


def _same_classes(root: Path, split: str, classes: list[str], reference: str) -> None:
    found = class_folders(root / split)
    missing = sorted(set(classes) - set(found))
    extra = sorted(set(found) - set(classes))
    if missing:
        raise HarnessError(f"{root / split} has no class folder {missing[0]!r} ({reference}/ has it)")
    if extra:
        raise HarnessError(f"{root / split} has a class folder {extra[0]!r} that {reference}/ lacks")


def _report(root: Path, splits: tuple[str, ...], images: list[ImageFile]) -> DataReport:
    classes = tuple(sorted({i.label for i in images} | _class_names(root, splits)))
    counts = {(s, c): 0 for s in splits for c in classes}
    for image in images:
        counts[image.split, image.label] += 1
    found = digests([i.path for i in images])
    groups: dict[str, list[ImageFile]] = defaultdict(list)
    for image in images:
        if image.path in found:
            groups[found[image.path]].append(
                ImageFile(image.split, image.label, image.path.relative_to(root)))
    dups = [Duplicates(d, tuple(g)) for d, g in sorted(groups.items(), key=lambda kv: kv[1][0].path)
            if len(g) > 1]
    return DataReport(
        root, splits, classes, counts,
        leaks=tuple(d for d in dups if len(d.splits) > 1),
        conflicts=tuple(d for d in dups if len(d.classes) > 1),
        repeats=tuple(d for d in dups if _repeated_in_one_place(d)))


def _class_names(root: Path, splits: tuple[str, ...]) -> set[str]:
    """Class folders, counted even when empty, so an empty class shows as 0."""
    return {name for s in splits for name in class_folders(root / s)}


def _repeated_in_one_place(dup: Duplicates) -> bool:
    places = [(i.split, i.label) for i in dup.images]
    return len(set(places)) < len(places)


def warnings(report: DataReport) -> list[str]:
    """One line per kind of problem, with its count, for a sweep to show before it starts."""
    lines = []
    if report.leaks:
        lines.append(f"{len(report.leaks)} images appear in two splits (test leakage: "
                     f"{sum(len(d.images) for d in report.leaks)} files); "
                     f"`harness data check {report.root}` lists them")
    if report.conflicts:
        lines.append(f"{len(report.conflicts)} images appear under two classes (conflicting labels: "
                     f"{sum(len(d.images) for d in report.conflicts)} files); "
                     f"`harness data check {report.root}` lists them")
    return lines
