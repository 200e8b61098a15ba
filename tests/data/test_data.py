"""Data folders: layout checks with clear errors, synthetic sets, the deterministic split."""

import shutil

import numpy as np
import pytest
from PIL import Image

from harness.data._folders import SPLITS, TUTORIAL_CLASSES, image_dataset, prepare, scan, write_synthetic
from harness.errors import HarnessError


def test_synthetic_set_has_the_tutorial_layout(tiny_data):
    ds = scan(tiny_data)
    for split in SPLITS:
        assert len(ds.splits[split].files) == 12
        assert ds.splits[split].labels.tolist() == [0] * 6 + [1] * 6
        for cls in TUTORIAL_CLASSES:
            with Image.open(next((tiny_data / split / cls).iterdir())) as img:
                assert img.format == "JPEG" and img.size == (40, 40)


def test_loader_keeps_file_order_and_labels(tiny_data):
    ds = scan(tiny_data)
    batches = list(image_dataset(tiny_data, ds.splits["test"], 24, 5, ds.class_names))
    labels = np.concatenate([y.numpy().reshape(-1) for _, y in batches])
    assert labels.tolist() == ds.splits["test"].labels.tolist()
    assert batches[0][0].shape == (5, 24, 24, 3)


def test_fingerprint_changes_with_the_file_list(tmp_path):
    root = write_synthetic(tmp_path / "d", per_class=2, size=16)
    before = scan(root).fingerprint
    assert scan(root).fingerprint == before
    (root / "train" / "cats" / "cat.0.jpg").unlink()
    assert scan(root).fingerprint != before


@pytest.mark.parametrize("breakage, message", [
    (lambda r: shutil.rmtree(r), "data folder not found"),
    (lambda r: shutil.rmtree(r / "validation"), "missing folder"),
    (lambda r: shutil.rmtree(r / "test" / "dogs"), "split test has no folder for class 'dogs'"),
    (lambda r: (r / "validation" / "birds").mkdir(), "split validation has an extra class 'birds'"),
    (lambda r: shutil.rmtree(r / "train" / "dogs"), "has 1 class folder"),
    (lambda r: [p.unlink() for p in (r / "train" / "cats").iterdir()], "no images in"),
])
def test_layout_problems_are_named(tmp_path, breakage, message):
    root = write_synthetic(tmp_path / "d", per_class=2, size=16)
    breakage(root)
    with pytest.raises(HarnessError, match=message):
        scan(root)


def test_hidden_and_non_image_files_are_ignored(tmp_path):
    root = write_synthetic(tmp_path / "d", per_class=2, size=16)
    (root / "train" / "cats" / ".DS_Store").write_bytes(b"\0\1")
    (root / "train" / ".DS_Store").write_bytes(b"\0\1")
    assert len(scan(root).splits["train"].files) == 4


def test_prepare_builds_a_deterministic_split(tmp_path):
    src = tmp_path / "kaggle"
    src.mkdir()
    img = Image.fromarray(np.zeros((8, 8, 3), "uint8"))
    for stem in ("cat", "dog"):
        for i in range(2000):
            img.save(src / f"{stem}.{i}.jpg")
    counts = prepare(src, tmp_path / "a")
    prepare(src, tmp_path / "b")
    assert counts["train/cats"] == 1000 and counts["test/dogs"] == 500
    a, b = scan(tmp_path / "a"), scan(tmp_path / "b")
    names = lambda d: [f.name for s in SPLITS for f in d.splits[s].files]  # noqa: E731
    assert names(a) == names(b) and len(set(names(a))) == 4000


def test_prepare_refuses_too_few_images(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(HarnessError, match="the split needs 2000"):
        prepare(tmp_path / "src", tmp_path / "out")


def test_classes_come_from_the_folders_sorted_as_keras_sorts_them(tmp_path):
    """Any class names; label i is the i-th name in sorted order, the order Keras' loader uses."""
    import keras

    root = tmp_path / "mine"
    img = Image.fromarray(np.zeros((8, 8, 3), "uint8"))
    names = ("Zebra", "apple", "défaut", "no defect")
    for split in SPLITS:
        for i, cls in enumerate(names):
            (root / split / cls).mkdir(parents=True)
            for k in range(i + 1):
                img.save(root / split / cls / f"{k}.png")
    ds = scan(root)
    assert ds.class_names == tuple(sorted(names)) and not ds.binary
    keras_view = keras.utils.image_dataset_from_directory(root / "train", image_size=(8, 8), verbose=False)
    assert tuple(keras_view.class_names) == ds.class_names
    counts = {ds.class_names.index(c): names.index(c) + 1 for c in names}
    assert np.bincount(ds.splits["train"].labels).tolist() == [counts[i] for i in range(4)]
    batches = list(image_dataset(root, ds.splits["test"], 8, 4, ds.class_names))
    labels = np.concatenate([y.numpy() for _, y in batches])
    assert labels.dtype.kind == "i" and labels.tolist() == ds.splits["test"].labels.tolist()
