"""The feature cache: run the frozen backbone once per data set, keep its outputs on disk."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.data import DataSet

# 2: preprocessing in standard Keras layers; the test split stored in float32 from a float32 pass
FORMAT_VERSION = 2
LAYERS = ("cut", "top")  # cut: input of the top block (fine-tune); top: backbone output (both)
# Trials score these splits on float32 features from a float32 backbone pass, so their logged
# predictions are exactly what the logged float32 network computes on the images. Train and
# validation stay float16 on disk (half the memory) from the pass precision (bfloat16 where faster).
EXACT_SPLITS = ("test",)


def cache_root() -> Path:
    return Path(os.environ.get("HARNESS_CACHE_DIR") or Path.home() / ".cache" / "harness")


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

    def digest(self) -> str:
        text = json.dumps({**self.__dict__, "format": FORMAT_VERSION}, sort_keys=True)
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


def _open(path: Path, hit: bool, seconds: float) -> Features:
    meta = json.loads((path / "meta.json").read_text())
    arrays = {layer: {s: np.load(path / f"{s}.{layer}.npy", mmap_mode="r") for s in meta["splits"]}
              for layer in LAYERS}
    labels = {s: np.load(path / f"{s}.labels.npy") for s in meta["splits"]}
    return Features(arrays, labels, meta["files"], path, hit, seconds)


def _extract_split(extractor, images, out_dir: Path, split: str, count: int, dtype: str) -> None:
    """Stream batches through the backbone into memory-mapped files: memory stays flat."""
    cut_shape, top_shape = (tuple(t.shape[1:]) for t in extractor.outputs)
    cut = np.lib.format.open_memmap(out_dir / f"{split}.cut.npy", "w+", dtype, (count, *cut_shape))
    top = np.lib.format.open_memmap(out_dir / f"{split}.top.npy", "w+", dtype, (count, *top_shape))
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
            exact_extractor=None) -> Features:
    """Load features for `key`, computing and storing them on a miss.

    `extractor` maps raw images to [cut features, top features]; `exact_extractor` does the
    same in float32 for EXACT_SPLITS (default: `extractor`); `make_images(split)` gives that
    split's (images, labels) batches in file order. Writers build in a private folder and
    rename it into place, so concurrent sweeps never see half a cache.
    """
    final = cache_root() / key.digest()
    if (final / "meta.json").exists():
        return _open(final, hit=True, seconds=0.0)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    start = time.perf_counter()
    for split, part in data.splits.items():
        if progress:
            progress(split, len(part.files))
        exact = split in EXACT_SPLITS
        _extract_split((exact_extractor or extractor) if exact else extractor, make_images(split), tmp, split,
                       len(part.files), "float32" if exact else "float16")
    seconds = time.perf_counter() - start
    meta = {"key": key.__dict__, "splits": list(data.splits), "seconds": seconds,
            "files": {s: [str(f.relative_to(data.root)) for f in p.files] for s, p in data.splits.items()}}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    try:
        tmp.rename(final)
    except OSError:  # another process finished the same entry first; theirs is as good
        shutil.rmtree(tmp, ignore_errors=True)
    return _open(final, hit=False, seconds=seconds)


def list_entries() -> list[dict]:
    """What the cache holds: one dict per entry with its key, size and extraction time."""
    entries = []
    root = cache_root()
    for meta_file in sorted(root.glob("*/meta.json")) if root.is_dir() else []:
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
