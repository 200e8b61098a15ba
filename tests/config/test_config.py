"""Sweep files: strict parsing, validation that names the key, CLI overrides."""

import json

import pytest

from harness import config as config
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
    ("augment_views = -1", "augment_views"),
    ("augment_views = 2.5", "augment_views"),
    ("augment_views = true", "augment_views"),
    ("pooling = 'max'", "pooling"),
    ("pooling = ['avg', 'avg']", "pooling"),
    ("pooling = ['flatten', 3]", "pooling"),
    ("image_size = [150, 16]", "image_size"),
    ("image_size = []", "image_size"),
    ("image_size = [150, 'big']", "image_size"),
    ("image_size = [150, 150]", "image_size"),
    ("augmentation = 1", "augmentation"),
    ("[augmentation]\nshear = 0.1", "augmentation.shear"),
    ("[augmentation]\nrotation = 0.7", "augmentation.rotation"),
    ("[augmentation]\nzoom = -0.1", "augmentation.zoom"),
    ("[augmentation]\nzoom = 1.0", "augmentation.zoom"),
    ("[augmentation]\ntranslation = 0.6", "augmentation.translation"),
    ("[augmentation]\ncontrast = 'high'", "augmentation.contrast"),
    ("[augmentation]\ncontrast = 1.5", "augmentation.contrast"),
    ("[augmentation]\nrotation = nan", "augmentation.rotation"),
    ("[augmentation]\nflip = 'diagonal'", "augmentation.flip"),
    ("[augmentation]\nflip = true", "augmentation.flip"),
    ("[augmentation]\nseed = -1", "augmentation.seed"),
])
def test_bad_sweep_files_are_rejected_naming_the_key(tmp_path, text, key):
    with pytest.raises(HarnessError, match=key.replace(".", r"\.")):
        config.load(_write(tmp_path, text), "feature-extraction")


def test_image_sizes_and_poolings_are_one_value_or_a_list_and_the_flag_picks_one(tmp_path):
    text = ("image_size = [150, 224]\npooling = ['flatten', 'avg']\naugment = true\naugment_views = 8\n"
            "[augmentation]\nflip = 'none'\ncontrast = 0.2\nseed = 4\n")
    cfg = config.load(_write(tmp_path, text), "fine-tune")
    assert cfg.image_sizes == (150, 224) and cfg.poolings == ("flatten", "avg") and cfg.augment_views == 8
    assert cfg.augmentation == config.Augmentation(flip="none", rotation=0.1, zoom=0.2, contrast=0.2, seed=4)
    assert config.parse(json.loads(json.dumps(cfg.to_dict())), "fine-tune") == cfg  # sweep_config.json reads back
    assert config.load(_write(tmp_path, text), "fine-tune", {"image_size": 192}).image_sizes == (192,)
    single = config.load(_write(tmp_path, "image_size = [224]\npooling = 'avg'"), "fine-tune")
    assert (single.image_size, single.image_sizes, single.poolings) == (224, (224,), ("avg",))
    shipped = config.load(None, "fine-tune")
    assert shipped.augmentation == config.Augmentation() and shipped.poolings == ("flatten",)
    book = (shipped.augmentation.flip, shipped.augmentation.rotation, shipped.augmentation.zoom)
    assert book == ("horizontal", 0.1, 0.2)


def test_wrong_override_type_is_rejected():
    with pytest.raises(HarnessError, match="epochs"):
        config.load(None, "fine-tune", {"epochs": "3"})


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(HarnessError, match="not valid TOML"):
        config.load(_write(tmp_path, "epochs = = 3"), "fine-tune")
    with pytest.raises(HarnessError, match="not found"):
        config.load(tmp_path / "nope.toml", "fine-tune")
