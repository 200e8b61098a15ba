"""`harness data split`, `harness data check` and `harness data synthetic --classes N`, through the CLI."""

from __future__ import annotations

import errno
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from harness.cli import app
from harness.data._folders import SPLITS, synthetic_classes, write_synthetic

runner = CliRunner()
SIZES = {"iris": 20, "lotus": 10, "poppy": 7}  # images per class of the unsplit source


def _source(root: Path, sizes=SIZES) -> Path:
    """A folder of class folders, every image different (random pixels)."""
    rng = np.random.default_rng(0)
    for label, n in sizes.items():
        (root / label).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype="uint8")
            Image.fromarray(pixels).save(root / label / f"{label}-{i:02d}.png")
    return root


def _split(src, dest, *extra):
    result = runner.invoke(app, ["data", "split", "--from", str(src), "--to", str(dest), *extra])
    assert result.exit_code == 0, result.output
    return result


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file: equal trees are byte-identical."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _placed(root: Path) -> dict[tuple[str, str], set[str]]:
    return {(s, c): {p.name for p in (root / s / c).iterdir()} for s in SPLITS for c in SIZES}


def test_split_is_stratified_per_class(tmp_path):
    src = _source(tmp_path / "src")
    result = _split(src, tmp_path / "out", "--validation", "0.2", "--test", "0.3")
    placed = _placed(tmp_path / "out")
    # n x fraction rounded half up for validation and test (at least 1), train the rest
    expected = {"iris": (10, 4, 6), "lotus": (5, 2, 3), "poppy": (4, 1, 2)}
    for label, counts in expected.items():
        assert tuple(len(placed[s, label]) for s in SPLITS) == counts
        names = [n for s in SPLITS for n in placed[s, label]]
        assert sorted(names) == sorted(p.name for p in (src / label).iterdir())  # each file once
        for split, fraction in (("validation", 0.2), ("test", 0.3)):
            assert abs(len(placed[split, label]) - SIZES[label] * fraction) <= 0.5
    assert "wrote 37 images" in result.output and "(hard links)" in result.output


def test_split_is_deterministic_for_a_seed(tmp_path):
    src = _source(tmp_path / "src")
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        _split(src, tmp_path / name, "--seed", seed)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert _placed(tmp_path / "a") != _placed(tmp_path / "c")
    assert sorted(_tree(tmp_path / "a").values()) == sorted(_tree(tmp_path / "c").values())


def test_split_hard_links_where_it_can_and_copies_otherwise(tmp_path, monkeypatch):
    src = _source(tmp_path / "src")
    _split(src, tmp_path / "linked")
    linked = next((tmp_path / "linked" / "train" / "iris").iterdir())
    assert linked.samefile(src / "iris" / linked.name)

    def refuse(*args, **kwargs):  # as on another device
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr("harness.data._split.os.link", refuse)
    result = _split(src, tmp_path / "copied")
    assert "(copies)" in result.output
    copied = tmp_path / "copied" / "train" / "iris" / linked.name
    assert not copied.samefile(src / "iris" / linked.name)
    assert _tree(tmp_path / "copied") == _tree(tmp_path / "linked")


def test_split_keeps_identical_files_of_a_class_in_one_split(tmp_path):
    src = _source(tmp_path / "src")
    shutil.copy(src / "iris" / "iris-03.png", src / "iris" / "iris-copy.png")
    for seed in range(6):
        _split(src, tmp_path / f"s{seed}", "--seed", str(seed))
        where = {s for s in SPLITS for n in ("iris-03.png", "iris-copy.png")
                 if (tmp_path / f"s{seed}" / s / "iris" / n).exists()}
        assert len(where) == 1


def _fails(args: list[str], message: str) -> str:
    result = runner.invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    return lines[0]


@pytest.mark.parametrize("setup, extra, message", [
    (lambda t: None, [], "source folder not found"),
    (lambda t: (_source(t / "src"), (t / "out").mkdir(), (t / "out" / "x").touch()), [],
     "is not an empty folder"),
    (lambda t: _source(t / "src"), ["--validation", "0"], "each must lie in (0, 1)"),
    (lambda t: _source(t / "src"), ["--test", "1.5"], "each must lie in (0, 1)"),
    (lambda t: _source(t / "src"), ["--validation", "0.5", "--test", "0.5"], "together below 1"),
    (lambda t: _source(t / "src", {"iris": 5, "lotus": 2}), [], "class 'lotus' has 2 distinct images"),
    (lambda t: _source(t / "src", {"iris": 5}), [], "has 1 class folder(s)"),
    (lambda t: write_synthetic(t / "src", per_class=2, size=16), [], "is split already"),
])
def test_split_bad_input_is_one_line(tmp_path, setup, extra, message):
    setup(tmp_path)
    _fails(["data", "split", "--from", str(tmp_path / "src"), "--to", str(tmp_path / "out"), *extra], message)
    out = tmp_path / "out"
    assert not out.exists() or [p.name for p in out.iterdir()] in ([], ["x"])  # nothing written


@pytest.fixture
def clean(tmp_path) -> Path:
    return write_synthetic(tmp_path / "photos", per_class=3, size=16)


def _check(folder: Path, code: int):
    result = runner.invoke(app, ["data", "check", str(folder)])
    assert result.exit_code == code, result.output
    return result.output


def test_check_passes_a_clean_folder_and_counts_classes(clean):
    output = _check(clean, 0)
    assert "2 classes, 18 images" in output
    assert "test leakage: none" in output and "conflicting labels: none" in output
    assert "train 1.00, validation 1.00, test 1.00" in output  # balanced


def test_check_finds_an_image_in_two_splits(clean):
    shutil.copy(clean / "train" / "cats" / "cat.0.jpg", clean / "test" / "cats" / "leaked.jpg")
    output = _check(clean, 1)
    assert "test leakage: the same image in two splits: 1 images, 2 files" in output
    assert "train/cats/cat.0.jpg  =  test/cats/leaked.jpg" in output
    assert "conflicting labels: none" in output


def test_check_finds_an_image_under_two_classes(clean):
    shutil.copy(clean / "validation" / "dogs" / "dog.2.jpg", clean / "validation" / "cats" / "cat.9.jpg")
    output = _check(clean, 1)
    assert "conflicting labels: the same image under two classes: 1 images, 2 files" in output
    assert "validation/cats/cat.9.jpg  =  validation/dogs/dog.2.jpg" in output
    assert "test leakage: none" in output
    assert "cats  │     3 │          4 │    3" in output  # the count per class per split


def test_check_reports_repeats_within_a_class_as_info(clean):
    shutil.copy(clean / "train" / "dogs" / "dog.1.jpg", clean / "train" / "dogs" / "again.jpg")
    output = _check(clean, 0)
    assert "repeated within one class of one split (info): 1 images, 2 files" in output
    assert "train/dogs/again.jpg  =  train/dogs/dog.1.jpg" in output


def test_check_of_an_unsplit_folder_finds_conflicting_labels(tmp_path):
    src = _source(tmp_path / "src")
    shutil.copy(src / "iris" / "iris-00.png", src / "poppy" / "poppy-99.png")
    output = _check(src, 1)
    assert "iris/iris-00.png  =  poppy/poppy-99.png" in output and "leakage" not in output


@pytest.mark.parametrize("breakage, message", [
    (lambda r: shutil.rmtree(r), "data folder not found"),
    (lambda r: shutil.rmtree(r / "test"), "but no test/ folder"),
    (lambda r: shutil.rmtree(r / "validation" / "dogs"), "has no class folder 'dogs'"),
    (lambda r: (r / "test" / "birds").mkdir(), "has a class folder 'birds' that train/ lacks"),
])
def test_check_bad_input_is_one_line(clean, breakage, message):
    breakage(clean)
    _fails(["data", "check", str(clean)], message)


def test_synthetic_with_three_classes(tmp_path):
    result = runner.invoke(app, ["data", "synthetic", str(tmp_path / "three"), "--classes", "3",
                                 "--per-class", "4", "--size", "24"])
    assert result.exit_code == 0, result.output
    assert "wrote 36 images" in result.output
    names = [name for name, _, _ in synthetic_classes(3)]
    assert len(set(names)) == 3 and "cats" not in names
    for split in SPLITS:
        assert sorted(p.name for p in (tmp_path / "three" / split).iterdir()) == sorted(names)
        for name in names:
            files = sorted(p.name for p in (tmp_path / "three" / split / name).iterdir())
            assert files == [f"{name}.{i}.jpg" for i in range(4)]
    assert _check(tmp_path / "three", 0)


def test_synthetic_classes_differ_in_colour_and_two_classes_stay_cats_and_dogs(tmp_path):
    root = write_synthetic(tmp_path / "five", per_class=8, size=24, classes=5)
    mean = lambda p: np.asarray(Image.open(p), dtype="float32").mean(axis=(0, 1))  # noqa: E731
    labels = [p.name for p in sorted((root / "train").iterdir())]
    centres = np.stack([np.mean([mean(p) for p in (root / "train" / c).iterdir()], axis=0) for c in labels])
    tests = [(labels.index(p.parent.name), mean(p)) for p in (root / "test").glob("*/*.jpg")]
    right = sum(np.argmin(((centres - x) ** 2).sum(axis=1)) == y for y, x in tests)
    assert right / len(tests) >= 0.9  # nearest mean colour: the classes are separable
    two = write_synthetic(tmp_path / "two", per_class=1, size=16)
    assert sorted(p.name for p in (two / "test").iterdir()) == ["cats", "dogs"]
    assert (two / "test" / "dogs" / "dog.0.jpg").is_file()
    _fails(["data", "synthetic", str(tmp_path / "one"), "--classes", "1"], "2 to 12 classes")
