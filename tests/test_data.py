"""Data folders: layout checks with clear errors, synthetic sets, the deterministic split."""

import shutil

import numpy as np
import pytest
from PIL import Image

from harness.data import CLASSES, SPLITS, image_dataset, prepare, scan, write_synthetic
from harness.errors import HarnessError


def test_synthetic_set_has_the_tutorial_layout(tiny_data):
    ds = scan(tiny_data)
    for split in SPLITS:
        assert len(ds.splits[split].files) == 12
        assert ds.splits[split].labels.tolist() == [0.0] * 6 + [1.0] * 6
        for cls in CLASSES:
            with Image.open(next((tiny_data / split / cls).iterdir())) as img:
                assert img.format == "JPEG" and img.size == (40, 40)


def test_loader_keeps_file_order_and_labels(tiny_data):
    ds = scan(tiny_data)
    batches = list(image_dataset(tiny_data, ds.splits["test"], 24, 5))
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
    (lambda r: shutil.rmtree(r / "test" / "dogs"), "missing folder"),
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
