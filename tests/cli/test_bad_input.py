"""Bad input through the CLI: one line naming the problem, exit 2, no traceback, the store untouched."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import keras
import pytest
from typer.testing import CliRunner

from conftest import tiny_sweep_args
from harness.cli import app
from harness.data._folders import write_synthetic

runner = CliRunner()


@pytest.fixture(scope="module")
def template_store(tmp_path_factory) -> Path:
    """A store holding one finished sweep-like run, made once and copied per test."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("template") / "store"
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.create_experiment("d", artifact_location=(folder / "artifacts").as_uri())
    run = client.create_run(exp, run_name="earlier", tags={"sweep": "true"})
    client.log_metric(run.info.run_id, "best_val_accuracy", 0.75)
    client.set_terminated(run.info.run_id, "FINISHED")
    return folder


@pytest.fixture
def seeded(tmp_path, template_store):
    """(store uri, snapshot function): the snapshot lists every run's id, status, end time, metrics."""
    from mlflow import MlflowClient

    folder = tmp_path / "store"
    shutil.copytree(template_store, folder)
    uri = f"sqlite:///{folder / 'mlflow.db'}"

    def snapshot():
        client = MlflowClient(tracking_uri=uri)
        exps = [e.experiment_id for e in client.search_experiments()]
        return sorted((r.info.run_id, r.info.status, r.info.end_time, tuple(sorted(r.data.metrics.items())))
                      for r in client.search_runs(exps))

    return uri, snapshot


@pytest.fixture
def data(tmp_path) -> Path:
    return write_synthetic(tmp_path / "d", per_class=2, size=16)


def _fails(args: list[str], message: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0], lines[0]
    return lines[0]


def _check_untouched(seeded, args, message):
    uri, snapshot = seeded
    before = snapshot()
    line = _fails(args, message)
    assert snapshot() == before  # no new run, nothing RUNNING, the earlier run as it was
    return line


def _args(data, uri, *extra):
    return tiny_sweep_args("feature-extraction", data, uri, *extra)


def _corrupt_jpeg(root):
    path = root / "train" / "cats" / "cat.1.jpg"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _text_as_jpeg(root):
    path = root / "validation" / "dogs" / "dog.7.jpg"
    path.write_text("not an image")
    return path


@pytest.mark.parametrize("breakage, message", [
    (lambda r: shutil.rmtree(r), "data folder not found"),
    (lambda r: shutil.rmtree(r / "validation"), "missing folder"),
    (lambda r: shutil.rmtree(r / "test" / "dogs"), "split test has no folder for class 'dogs'"),
    (lambda r: [p.unlink() for p in (r / "train" / "cats").iterdir()], "no images in"),
    (_corrupt_jpeg, "cat.1.jpg is not a readable image"),
    (_text_as_jpeg, "dog.7.jpg is not a readable image"),
])
def test_bad_data_folder(data, seeded, breakage, message):
    breakage(data)
    _check_untouched(seeded, _args(data, seeded[0]), message)


@pytest.mark.parametrize("text, message", [
    ("colour = 'red'", "unknown key colour"),
    ("epochs = 'ten'", "epochs: expected int"),
    ("batch_size = 0", "batch_size: must be >= 1"),
    ("max_consecutive_failed_trials = 0", "max_consecutive_failed_trials: must be >= 1"),
    ("[space.dropout]\nmax = 1.5", "space.dropout"),
    ("[space.learning_rate]\nmin = 0.0", "space.learning_rate.min: must be > 0"),
    ("[space.learning_rate]\nmin = -1e-3\nmax = 1e-3", "space.learning_rate.min: must be > 0"),
    ("backbone = 'resnet'", "backbone: 'resnet' is not one of"),
])
def test_bad_sweep_file(data, seeded, tmp_path, text, message):
    config = tmp_path / "my sweep.toml"
    config.write_text(text)
    args = ["sweep", "feature-extraction", "--config", str(config), "--data", str(data),
            "--tracking-uri", seeded[0], "--max-trials", "1"]
    _check_untouched(seeded, args, message)


def test_unknown_backbone_flag(data, seeded):
    _check_untouched(seeded, _args(data, seeded[0], "--backbone", "resnet"), "backbone: 'resnet'")


def test_weights_file_for_another_backbone(data, seeded, tmp_path):
    from harness.backbones._registry import build_base

    path = tmp_path / "vgg16.weights.h5"
    build_base("vgg16", 32, "none").save_weights(path)
    _check_untouched(seeded, _args(data, seeded[0], "--backbone", "mobilenet_v2", "--weights", str(path)),
                     "does not fit backbone mobilenet_v2")


@pytest.mark.parametrize("flags, message", [
    (["--backbone", "resnet50"], "does not fit backbone resnet50: layer conv1_conv not in the file"),
    (["--backbone", "vgg16", "--unfreeze", "9"], None),  # the file fits: refused for its cut
    (["--backbone", "xception"], "image_size: xception takes images of at least 71 px"),
    (["--backbone", "vgg16", "--backbone", "resnet50"], "weights: a file holds one network's weights"),
])
def test_keras2_weights_files_and_backbone_settings_that_cannot_be_run(data, seeded, tmp_path, flags, message):
    """A legacy HDF5 file as keras-applications publishes them (here VGG16's layout), each refusal one line."""
    import h5py
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    from harness.backbones._registry import build_base

    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with h5py.File(path, "w") as f:
        save_weights_to_hdf5_group(f, build_base("vgg16", 32, "none"))
    method = "fine-tune" if "--unfreeze" in flags else "feature-extraction"
    args = tiny_sweep_args(method, data, seeded[0], "--weights", str(path), *flags)
    _check_untouched(seeded, args, message or "unfreeze = 9: vgg16 has 4 stages to unfreeze")


def test_missing_weights_file(data, seeded, tmp_path):
    _check_untouched(seeded, _args(data, seeded[0], "--weights", str(tmp_path / "nope.h5")),
                     "weights file not found")


def test_imagenet_without_network(data, seeded, monkeypatch):
    import harness.backbones._weights  # noqa: F401  reads Keras' own get_file before it is replaced here

    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.applications.vgg16.file_utils.get_file", offline)
    _check_untouched(seeded, _args(data, seeded[0], "--weights", "imagenet"),
                     "no ImageNet weights for vgg16 here and they cannot be downloaded: Keras looks for ")


def test_unwritable_store(data, tmp_path):
    (tmp_path / "afile").write_text("a file, not a folder")
    _fails(_args(data, f"sqlite:///{tmp_path / 'afile' / 'mlflow.db'}"), "is not writable")
    assert (tmp_path / "afile").read_text() == "a file, not a folder"


def test_unreachable_tracking_server(data):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = _fails(_args(data, f"http://127.0.0.1:{port}"), f"cannot reach tracking server http://127.0.0.1:{port}")
    assert "refused" in line


def test_resume_and_fresh_together(data, seeded):
    _check_untouched(seeded, _args(data, seeded[0], "--resume", "--fresh"), "exclude each other")


def _odd_images(root: Path) -> None:
    """PNG, grayscale, CMYK, palette and odd-sized images among the JPEGs, plus hidden and text files."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "validation", "test"):
        for cls in ("cats", "dogs"):
            folder = root / split / cls
            rgb = Image.fromarray(rng.uniform(0, 255, (23, 57, 3)).astype("uint8"))
            rgb.convert("L").save(folder / "grå bild.png")
            rgb.convert("CMYK").save(folder / "cmyk photo.jpg")
            rgb.convert("P").save(folder / "palette.png")
            rgb.convert("RGBA").resize((91, 13)).save(folder / "wide alpha.png")
            rgb.convert("L").save(folder / "gray.jpeg")
            (folder / ".DS_Store").write_bytes(b"\0\1\2")
            (folder / "notes.txt").write_text("not an image, and not named like one: ignored")
        (root / split / ".DS_Store").write_bytes(b"\0\1\2")


@pytest.mark.slow  # a sweep on every kind of image: CI's slow step
def test_mixed_images_hidden_files_spaces_and_non_ascii_just_work(tmp_path):
    from mlflow import MlflowClient

    from conftest import runs_of

    data = write_synthetic(tmp_path / "my phötos" / "chats et chiens", per_class=2, size=24)
    _odd_images(data)
    uri = f"sqlite:///{tmp_path / 'störe with space' / 'mlflow.db'}"
    result = runner.invoke(app, tiny_sweep_args("feature-extraction", data, uri, "--max-trials", "1",
                                                "--epochs", "1"))
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=uri)
    (parent,), (child,) = runs_of(client, "chats et chiens")
    assert parent.info.status == child.info.status == "FINISHED"
    csv = open(client.download_artifacts(child.info.run_id, "predictions/test_predictions.csv"),
               encoding="utf-8").read()
    assert "cats/grå bild.png" in csv and "dogs/cmyk photo.jpg" in csv
    assert len(csv.strip().splitlines()) == 1 + 2 * 7
    assert ".DS_Store" not in csv and "notes.txt" not in csv
