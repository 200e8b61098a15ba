"""The feature cache: run the frozen backbone once per data set, keep its outputs on disk."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
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


def _complete(path: Path) -> bool:
    """An entry a run may use: meta.json (written last) and every file at its recorded size.
    Anything else (a crash or a full disk mid-write, an older writer) is extracted again."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        return all((path / name).stat().st_size == size for name, size in meta["sizes"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _open(path: Path, hit: bool, seconds: float) -> Features:
    meta = json.loads((path / "meta.json").read_text())
    arrays = {layer: {s: np.load(path / f"{s}.{layer}.npy", mmap_mode="r") for s in meta["splits"]}
              for layer in LAYERS}
    labels = {s: np.load(path / f"{s}.labels.npy") for s in meta["splits"]}
    return Features(arrays, labels, meta["files"], path, hit, seconds)


def _allocated(path: Path, dtype: str, shape: tuple[int, ...]) -> np.memmap:
    """A .npy memory map whose disk blocks are reserved now: a full disk is an OSError
    here, not a SIGBUS on some later write into a sparse file."""
    array = np.lib.format.open_memmap(path, "w+", dtype, shape)
    with open(path, "r+b") as f:
        os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
    return array


def _extract_split(extractor, images, out_dir: Path, split: str, count: int, dtype: str) -> None:
    """Stream batches through the backbone into memory-mapped files: memory stays flat."""
    cut_shape, top_shape = (tuple(t.shape[1:]) for t in extractor.outputs)
    cut = _allocated(out_dir / f"{split}.cut.npy", dtype, (count, *cut_shape))
    top = _allocated(out_dir / f"{split}.top.npy", dtype, (count, *top_shape))
    labels, row = [], 0
    for x, y in images:
        c, t = extractor.predict_on_batch(x)
        n = len(c)
        cut[row:row + n], top[row:row + n] = c, t
        labels.append(np.asarray(y).reshape(-1))
        row += n
    if row != count:
        raise RuntimeError(f"{split}: extracted {row} images, expected {count}")
    cut.flush(), top.flush()
    np.save(out_dir / f"{split}.labels.npy", np.concatenate(labels).astype("float32"))


def extract(key: FeatureKey, data: DataSet, extractor, make_images, progress=None,
            counts: dict[str, int] | None = None) -> Features:
    """Load features for `key`, computing and storing them on a miss.

    `extractor` maps raw images to [cut features, top features]; `make_images(split)` gives that
    split's (images, labels) batches in file order, `counts[split]` rows of them (default: one
    per file; K per file for augmented views). Writers build in a private folder, flush every
    file to disk, and only then rename it into place: concurrent sweeps never see half an
    entry, and a crash or a full disk mid-write leaves none a run would use.
    """
    final = cache_root() / key.digest()
    if _complete(final):
        return _open(final, hit=True, seconds=0.0)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    _remove_abandoned(final)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        start = time.perf_counter()
        for split, part in data.splits.items():
            count = (counts or {}).get(split, len(part.files))
            if progress:
                progress(split, count)
            _extract_split(extractor, make_images(split), tmp, split, count,
                           "float32" if split in EXACT_SPLITS else "float16")
        seconds = time.perf_counter() - start
        _seal(tmp, key, data, seconds)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise HarnessError(f"no space left for the feature cache in {cache_root()} ({exc.strerror}): free "
                               "some, e.g. `harness cache clear`, or point HARNESS_CACHE_DIR elsewhere") from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if _complete(final):  # another process finished the same entry first; theirs is as good
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        shutil.rmtree(final, ignore_errors=True)  # a broken entry left by an older writer
        tmp.rename(final)
        _fsync(final.parent)
    return _open(final, hit=False, seconds=seconds)


def _remove_abandoned(final: Path) -> None:
    """Half-written folders of this entry whose writer died (killed, machine lost)."""
    for folder in final.parent.glob(f"{final.name}.tmp-*"):
        pid = folder.name.rpartition("-")[2]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _seal(folder: Path, key: FeatureKey, data: DataSet, seconds: float) -> None:
    """Every array on disk first, then meta.json (with their sizes), then the folder itself."""
    sizes = {}
    for path in sorted(folder.iterdir()):
        _fsync(path)
        sizes[path.name] = path.stat().st_size
    meta = {"key": key.__dict__, "splits": list(data.splits), "seconds": seconds, "sizes": sizes,
            "files": {s: [str(f.relative_to(data.root)) for f in p.files] for s, p in data.splits.items()}}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    _fsync(folder / "meta.json")
    _fsync(folder)


def list_entries() -> list[dict]:
    """What the cache holds: one dict per entry with its key, size and extraction time."""
    entries = []
    root = cache_root()
    for meta_file in sorted(root.glob("*/meta.json")) if root.is_dir() else []:
        if ".tmp-" in meta_file.parent.name:  # being written
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
