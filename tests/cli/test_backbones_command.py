"""`harness backbones`: the listing a user reads before choosing a network, through the CLI."""

import pytest
from typer.testing import CliRunner

from harness.cli import app

runner = CliRunner()


def _rows(output: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in output.splitlines()[1:] if line and not line.startswith("ImageNet")}


@pytest.mark.slow  # builds three networks twice each
def test_lists_parameters_features_cut_and_whether_imagenet_is_cached(tmp_path, monkeypatch):
    import keras

    from harness.backbones import keras_models_dir

    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)  # Keras falls back to /tmp/.keras when its folder cannot be written
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path / "keras"))
    assert keras_models_dir() == models
    (models / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"")  # as copied by hand
    result = runner.invoke(app, ["backbones", "vgg16", "resnet50", "mobilenet_v3_small", "--image-size", "64"])
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert rows["vgg16"][1:5] == ["14.7M", "2x2x512", "block4_pool", "4"]
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(64, 64, 3))
    assert rows["resnet50"][1] == f"{resnet.count_params() / 1e6:.1f}M" and rows["resnet50"][2] == "2x2x2048"
    assert " ".join(rows["resnet50"][-4:]) == "in the Keras cache" and rows["mobilenet_v3_small"][-1] == "use"
    assert str(models) in result.output


def test_a_size_below_a_networks_minimum_says_so_and_an_unknown_name_is_one_line():
    result = runner.invoke(app, ["backbones", "xception", "--image-size", "40"])
    assert result.exit_code == 0 and "needs>=71px" in result.output
    bad = runner.invoke(app, ["backbones", "resnet"])
    assert bad.exit_code == 2 and "unknown backbone 'resnet'" in bad.output and "Traceback" not in bad.output


@pytest.mark.slow
def test_every_backbone_is_listed():
    from harness.config import BACKBONES

    result = runner.invoke(app, ["backbones", "--image-size", "96"])
    assert result.exit_code == 0, result.output
    assert list(_rows(result.output)) == list(BACKBONES)
