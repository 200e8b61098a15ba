"""Data folders: layout checks, tf.data pipelines, synthetic and prepared data sets."""

from __future__ import annotations

import hashlib
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import HarnessError

SPLITS = ("train", "validation", "test")
TUTORIAL_CLASSES = ("cats", "dogs")  # the Kaggle layout `prepare` and the demo's synthetic set use
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
PREPARE_COUNTS = {"train": 1000, "validation": 500, "test": 500}  # per class


@dataclass(frozen=True)
class Split:
    """One split's image files (sorted, so features and predictions line up) and their class
    indices (int32; index i is class_names[i])."""

    name: str
    files: tuple[Path, ...]
    labels: np.ndarray


@dataclass(frozen=True)
class DataSet:
    root: Path
    splits: dict[str, Split]
    fingerprint: str
    class_names: tuple[str, ...]

    @property
    def binary(self) -> bool:
        return len(self.class_names) == 2


def image_files(folder: Path) -> list[Path]:
    """The images directly in `folder`, sorted; hidden files and other suffixes are skipped."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_SUFFIXES)


def fingerprint(root: Path, files: list[Path]) -> str:
    """Changes when any file is added, removed, renamed or changed in any byte: every file's
    content is hashed (SHA-256: 0.16-0.4 s for the 4,000 tutorial photos, 32 MB, in the OS's
    cache, about 1 s from disk), so a photo edited in place is never mistaken for the old one."""
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as content:
            digest = hashlib.file_digest(content, "sha256").hexdigest()
        h.update(f"{f.relative_to(root).as_posix()}\0{digest}\n".encode())
    return h.hexdigest()[:16]


def class_folders(folder: Path) -> list[str]:
    """Sub-folder names, sorted as Keras sorts them (hidden ones skipped): label i is the i-th."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_names(root: Path) -> tuple[str, ...]:
    """The classes of the train split, checked to be exactly those of validation and test."""
    for split in SPLITS:
        if not (root / split).is_dir():
            raise HarnessError(f"missing folder {root / split} (expected {{train,validation,test}}/<class>/<images>)")
    names = class_folders(root / "train")
    if len(names) < 2:
        raise HarnessError(f"{root / 'train'} has {len(names)} class folder(s); a classifier needs at least 2")
    for split in SPLITS[1:]:
        found = class_folders(root / split)
        missing, extra = sorted(set(names) - set(found)), sorted(set(found) - set(names))
        if missing:
            raise HarnessError(f"split {split} has no folder for class {missing[0]!r} (train has "
                               f"{', '.join(names)}); every split needs the same classes")
        if extra:
            raise HarnessError(f"split {split} has an extra class {extra[0]!r} that train does not have "
                               f"({', '.join(names)}); every split needs the same classes")
    return tuple(names)


def scan(root: str | Path) -> DataSet:
    """Check the `{train,validation,test}/<class>/<images>` layout; one clear error if it is off."""
    root = Path(root)
    if not root.is_dir():
        raise HarnessError(f"data folder not found: {root}")
    class_names = _class_names(root)
    splits, every_file = {}, []
    for split in SPLITS:
        files, labels = [], []
        for label, cls in enumerate(class_names):
            found = image_files(root / split / cls)
            if not found:
                raise HarnessError(f"no images in {root / split / cls}")
            files += found
            labels += [label] * len(found)
        splits[split] = Split(split, tuple(files), np.asarray(labels, dtype="int32"))
        every_file += files
    for path in every_file:
        check_image(path)
    return DataSet(root, splits, fingerprint(root, every_file), class_names)


def check_image(path: Path) -> None:
    """Decode `path` once, so a corrupt or mislabelled file is named before any compute.

    JPEGs decode at reduced scale (PIL's draft mode), which still reads every byte of the
    file, so a truncated one fails here; a whole folder of photos checks in about a second.
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.draft("RGB", (32, 32))
            img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise HarnessError(f"{path} is not a readable image: {reason}") from None


def image_dataset(root: Path, split: Split, image_size: int, batch_size: int, class_names: tuple[str, ...],
                  shuffle: bool = False, seed: int | None = None):
    """Keras' directory loader; unshuffled it keeps file order, so row i is split.files[i].

    Labels come as the head's loss wants them: 0/1 floats for two classes (one sigmoid unit),
    class indices for more (softmax)."""
    import keras
    import tensorflow as tf

    ds = keras.utils.image_dataset_from_directory(
        root / split.name, labels="inferred", label_mode="binary" if len(class_names) == 2 else "int",
        class_names=list(class_names),
        image_size=(image_size, image_size), batch_size=batch_size, shuffle=shuffle, seed=seed, verbose=False)
    if not shuffle and [Path(p) for p in ds.file_paths] != list(split.files):
        raise HarnessError(f"{root / split.name}: the image loader sees other files than the layout check")
    return ds.prefetch(tf.data.AUTOTUNE)


# Two classes are the tutorial's: cats as warm horizontal stripes, dogs as cool vertical ones.
TWO_SYNTHETIC_CLASSES = (("cats", 0.0, (200, 120, 60)), ("dogs", 90.0, (60, 120, 200)))
# More classes: tints around the colour wheel (30 degrees apart), stripes turned 180/N degrees
# further per class, so even a random-weight backbone's features tell them apart somewhat.
PALETTE = (("red", (217, 54, 54)), ("orange", (217, 135, 54)), ("yellow", (217, 217, 54)),
           ("lime", (135, 217, 54)), ("green", (54, 217, 54)), ("mint", (54, 217, 135)),
           ("cyan", (54, 217, 217)), ("azure", (54, 135, 217)), ("blue", (54, 54, 217)),
           ("violet", (135, 54, 217)), ("magenta", (217, 54, 217)), ("pink", (217, 54, 135)))


def synthetic_classes(n: int) -> tuple[tuple[str, float, tuple[int, int, int]], ...]:
    """(name, stripe angle in degrees, tint) of each of n synthetic classes."""
    if not 2 <= n <= len(PALETTE):
        raise HarnessError(f"synthetic data has 2 to {len(PALETTE)} classes, not {n}")
    if n == 2:
        return TWO_SYNTHETIC_CLASSES
    return tuple((PALETTE[k * len(PALETTE) // n][0], 180.0 * k / n, PALETTE[k * len(PALETTE) // n][1])
                 for k in range(n))


def _synthetic_image(angle: float, tint: tuple[int, int, int], size: int,
                     rng: np.random.Generator, spread: float = 0.0) -> np.ndarray:
    """Stripes at `angle` (0: horizontal) in a jittered tint, plus noise. `spread` > 0 makes the
    classes overlap: the angle varies by up to 2/3 * spread degrees and the tint by `spread` more."""
    if spread:  # no extra draws otherwise: spread 0 keeps the pixels the tests were written on
        angle = angle + rng.uniform(-2 * spread / 3, 2 * spread / 3)
        tint = tuple(np.asarray(tint) + rng.normal(0, spread, 3))
    period = rng.integers(6, 14)
    phase = rng.uniform(0, 2 * np.pi)
    # Rounded so 0 and 90 degrees are exact: the two-class set keeps its exact pixels.
    c, s = (float(np.round(f(np.radians(angle)), 12)) for f in (np.cos, np.sin))
    rows, cols = np.mgrid[0:size, 0:size]
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * (rows * c + cols * s) / period + phase)
    tint = np.asarray(tint) + rng.normal(0, 25, 3)
    img = wave[..., None] * tint + rng.normal(0, 30, (size, size, 3)) + 30
    return np.clip(img, 0, 255).astype("uint8")


def write_synthetic(root: str | Path, per_class: int = 20, size: int = 64, seed: int = 0,
                    classes: int = 2, spread: float = 0.0) -> Path:
    """A small JPEG set of `classes` classes in the split layout; per_class images in every split;
    `spread` (see _synthetic_image) makes them harder to tell apart."""
    from PIL import Image

    if per_class < 1 or size < 8:
        raise HarnessError("synthetic data needs --per-class >= 1 and --size >= 8")
    kinds = synthetic_classes(classes)
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split in SPLITS:
        for name, angle, tint in kinds:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            stem = name[:-1] if classes == 2 else name  # cat.0.jpg, as in the tutorial
            for i in range(per_class):
                Image.fromarray(_synthetic_image(angle, tint, size, rng, spread)).save(
                    folder / f"{stem}.{i}.jpg", quality=90)
    return root


def prepare(source: str | Path, dest: str | Path, seed: int = 0) -> dict[str, int]:
    """The tutorial's 1000/500/500-per-class split from Kaggle-style cat.N.jpg / dog.N.jpg files.

    Files are ordered by their number N and shuffled with a fixed seed, so the same
    source folder always gives the same split.
    """
    source, dest = Path(source), Path(dest)
    if not source.is_dir():
        raise HarnessError(f"source folder not found: {source}")
    if dest.exists() and any(dest.iterdir()):
        raise HarnessError(f"destination {dest} is not empty")
    needed = sum(PREPARE_COUNTS.values())
    counts = {}
    for cls in TUTORIAL_CLASSES:
        stem = cls[:-1]
        found = [p for p in source.iterdir() if p.name.startswith(f"{stem}.") and p.suffix.lower() in IMAGE_SUFFIXES]
        numbered = sorted(found, key=lambda p: (_number(p), p.name))
        if len(numbered) < needed:
            raise HarnessError(f"{source} has {len(numbered)} {stem}.N images; the split needs {needed}")
        random.Random(seed).shuffle(numbered)
        start = 0
        for split, n in PREPARE_COUNTS.items():
            folder = dest / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for p in numbered[start:start + n]:
                shutil.copy2(p, folder / p.name)
            start += n
            counts[f"{split}/{cls}"] = n
    return counts


def _number(path: Path) -> int:
    parts = path.name.split(".")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else -1
