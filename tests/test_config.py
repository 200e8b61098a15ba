"""Sweep files: strict parsing, validation that names the key, CLI overrides."""


import pytest

from harness import config
from harness.errors import HarnessError

@pytest.mark.parametrize("method", config.METHODS)
def test_shipped_sweep_files_load_with_tutorial_defaults(method):
    cfg = config.load(None, method)  # None: the sweep file packaged with harness
    assert cfg.backbone == "vgg16" and cfg.weights == "imagenet" and cfg.image_size == 150
    assert cfg.epochs == 20 and cfg.batch_size == 64
    assert cfg.space.units.default == 128 and cfg.space.dropout.default == 0.5
    assert cfg.space.learning_rate.default == 1e-4
    assert cfg.space.fine_tune_learning_rate.default == 1e-5


def test_flags_override_the_file():
    cfg = config.load(None, "fine-tune",
                      {"backbone": "mobilenet_v2", "epochs": 3, "max_trials": None})
    assert (cfg.backbone, cfg.epochs, cfg.max_trials) == ("mobilenet_v2", 3, 10)


def _write(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, key", [
    ("colour = 'red'", "colour"),
    ("epochs = 'ten'", "epochs"),
    ("epochs = 0", "epochs"),
    ("augment = 1", "augment"),
    ("image_size = 8", "image_size"),
    ("tuner = 'grid'", "tuner"),
    ("backbone = 'resnet'", "backbone"),
    ("[space.learning_rate]\nmin = 0.0", "space.learning_rate.min"),
    ("[space.learning_rate]\nmin = -1e-3\nmax = 1e-3", "space.learning_rate.min"),
    ("[space.dropout]\nmax = 1.5", "space.dropout"),
    ("[space.dropout]\nmin = 0.5\nmax = 0.2\ndefault = 0.3", "space.dropout"),
    ("[space.units]\nvalues = [64, 256]", "space.units"),
    ("[space.units]\nsize = 3", "space.units.size"),
    ("[space.momentum]\nmin = 0.1", "space.momentum"),
    ("method = 'fine-tune'", "method"),
])
def test_bad_sweep_files_are_rejected_naming_the_key(tmp_path, text, key):
    with pytest.raises(HarnessError, match=key.replace(".", r"\.")):
        config.load(_write(tmp_path, text), "feature-extraction")


def test_wrong_override_type_is_rejected():
    with pytest.raises(HarnessError, match="epochs"):
        config.load(None, "fine-tune", {"epochs": "3"})


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(HarnessError, match="not valid TOML"):
        config.load(_write(tmp_path, "epochs = = 3"), "fine-tune")
    with pytest.raises(HarnessError, match="not found"):
        config.load(tmp_path / "nope.toml", "fine-tune")
