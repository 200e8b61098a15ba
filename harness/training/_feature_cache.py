"""The feature cache: where it lives, what keys an entry, reading, listing and clearing entries
(filling one: harness.training._extraction)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.data._folders import DataSet
from harness.errors import HarnessError

# 2: meta.json records every file's size; entries are checked before use.
# 3: preprocessing in standard Keras layers; the test split stored in float32 from a float32 pass.
# 4: every split from the one pass the winner is served with (bfloat16 where that is faster).
FORMAT_VERSION = 4
LAYERS = ("cut", "top")  # cut: input of the top block (fine-tune); top: backbone output (both)
# Stored in float32, so the test predictions trials log are exactly what the logged network
# computes on the images; train and validation stay float16 on disk (half the memory). Every
# split comes from the same pass (the winner's frozen part), whatever its precision.
EXACT_SPLITS = ("test",)


def cache_root() -> Path:
    """The feature cache's folder (HARNESS_CACHE_DIR, else ~/.cache/harness), made if absent.

    Checked here, where every use of the cache starts (a sweep's extraction, before its parent
    run exists; `harness cache ls|clear`): a file in the way or a folder this user cannot write
    is one line naming it, not a NotADirectoryError or PermissionError from deep in an extraction.
    """
    import tempfile

    named = os.environ.get("HARNESS_CACHE_DIR")
    root = Path(named or Path.home() / ".cache" / "harness")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):  # writable for real: root, read-only mounts, ACLs
            pass
    except OSError as exc:
        raise _unusable(root, named, exc) from None
    return root


def _unusable(root: Path, named: str | None, exc: OSError) -> HarnessError:
    label = f"HARNESS_CACHE_DIR={named}" if named else f"the feature cache folder {root}"
    fix = "point it at a folder" if named else "point HARNESS_CACHE_DIR at a folder"
    if isinstance(exc, (FileExistsError, NotADirectoryError)):  # a file where a folder should be
        blocker = next((p for p in (root, *root.parents) if p.exists()), root)
        if blocker == root:
            return HarnessError(f"{label} is a file, not a folder: {fix}")
        return HarnessError(f"{label} cannot be made: {blocker} is a file, not a folder: {fix}")
    return HarnessError(f"{label} cannot be written ({exc.strerror or exc}): {fix} you can write")


@dataclass(frozen=True)
class FeatureKey:
    """Everything that changes what the backbone outputs for the same files."""

    backbone: str
    alpha: float | None
    weights: str  # 'imagenet', 'none' or 'sha256:...'
    image_size: int
    preprocessing: str
    cut_layer: str
    data_fingerprint: str
    precision: str = "float32"
    views: str = ""  # augmented training views: settings, K and seed (harness.data._augment.identity); "" none

    def digest(self) -> str:
        fields = {k: v for k, v in self.__dict__.items() if k != "views" or v}  # plain entries keep their id
        text = json.dumps({**fields, "format": FORMAT_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Features:
    """Cached arrays per split: arrays[layer][split], memory-mapped float16 (EXACT_SPLITS float32)."""

    arrays: dict[str, dict[str, np.ndarray]]
    labels: dict[str, np.ndarray]
    files: dict[str, list[str]]
    path: Path
    hit: bool
    seconds: float  # time spent in the backbone now (0 on a hit)

    @property
    def shape(self) -> dict[str, tuple[int, ...]]:
        return {layer: tuple(self.arrays[layer]["train"].shape[1:]) for layer in LAYERS}


def complete(path: Path) -> bool:
    """An entry a run may use: meta.json (written last) and every file at its recorded size.
    Anything else (a crash or a full disk mid-write, an older writer) is extracted again."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        return all((path / name).stat().st_size == size for name, size in meta["sizes"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def open_entry(path: Path, hit: bool, seconds: float) -> Features:
    meta = json.loads((path / "meta.json").read_text())
    arrays = {layer: {s: np.load(path / f"{s}.{layer}.npy", mmap_mode="r") for s in meta["splits"]}
              for layer in LAYERS}
    labels = {s: np.load(path / f"{s}.labels.npy") for s in meta["splits"]}
    return Features(arrays, labels, meta["files"], path, hit, seconds)


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seal(folder: Path, key: FeatureKey, data: DataSet, seconds: float) -> None:
    """Every array on disk first, then meta.json (with their sizes), then the folder itself."""
    sizes = {}
    for path in sorted(folder.iterdir()):
        fsync(path)
        sizes[path.name] = path.stat().st_size
    meta = {"key": key.__dict__, "splits": list(data.splits), "seconds": seconds, "sizes": sizes,
            "files": {s: [str(f.relative_to(data.root)) for f in p.files] for s, p in data.splits.items()}}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    fsync(folder / "meta.json")
    fsync(folder)


def list_entries() -> list[dict]:
    """What the cache holds: one dict per entry with its key, size and extraction time."""
    entries = []
    root = cache_root()
    for meta_file in sorted(root.glob("*/meta.json")) if root.is_dir() else []:
        if ".partial" in meta_file.parent.name:  # sealed, not yet renamed into place
            continue
        meta = json.loads(meta_file.read_text())
        size = sum(f.stat().st_size for f in meta_file.parent.iterdir())
        entries.append({"id": meta_file.parent.name, "bytes": size, "seconds": meta["seconds"],
                        "images": sum(len(v) for v in meta["files"].values()), **meta["key"]})
    return entries


def clear() -> int:
    """Delete every entry; returns how many bytes were freed."""
    root = cache_root()
    if not root.is_dir():
        return 0
    freed = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    shutil.rmtree(root)
    return freed
