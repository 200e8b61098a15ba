"""Backbones: preprocessing, the exact top-block split, weights resolution errors."""

import keras
import numpy as np
import pytest

from harness import backbones
from harness.errors import HarnessError


@pytest.mark.parametrize("mode, reference", [
    ("caffe", keras.applications.vgg16.preprocess_input),
    ("tf", keras.applications.mobilenet_v2.preprocess_input),
])
def test_preprocess_layer_matches_keras_applications(mode, reference):
    x = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    ours = keras.ops.convert_to_numpy(backbones.Preprocess(mode)(x))
    np.testing.assert_allclose(ours, reference(x.copy()), atol=1e-4)


@pytest.mark.parametrize("name, size", [("vgg16", 48), ("mobilenet_v2", 64)])
def test_top_block_on_cut_features_equals_the_full_base(name, size):
    base = backbones.build_base(name, size, "none")
    spec = backbones.get_spec(name)
    # Random weights make MobileNetV2's activations vanish; perturb BN statistics so the test
    # compares numbers of ordinary size.
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 0.05, "float32"))
    below, top = backbones.split_at_cut(base, spec.cut_layer)
    x = np.random.default_rng(1).uniform(-1, 1, (4, size, size, 3)).astype("float32")
    full = base.predict(x, verbose=0)
    split = top.predict(below.predict(x, verbose=0), verbose=0)
    assert np.abs(full).max() > 1e-3
    assert np.abs(full - split).max() <= 1e-4
    assert [layer.name for layer in top.layers][1] == ("block5_conv1" if name == "vgg16" else "block_16_expand")


def test_fresh_copy_is_independent():
    base = backbones.build_base("vgg16", 32, "none")
    _, top = backbones.split_at_cut(base, "block4_pool")
    copy = backbones.fresh_copy(top)
    copy.layers[1].kernel.assign(np.zeros(copy.layers[1].kernel.shape, "float32"))
    assert np.abs(keras.ops.convert_to_numpy(top.layers[1].kernel)).max() > 0


def test_weights_file_for_another_architecture_is_a_clear_error(tmp_path):
    path = tmp_path / "vgg.weights.h5"
    backbones.build_base("vgg16", 32, "none").save_weights(path)
    with pytest.raises(HarnessError, match="does not fit backbone mobilenet_v2"):
        backbones.build_base("mobilenet_v2", 32, str(path))
    assert backbones.build_base("vgg16", 32, str(path)) is not None


def test_missing_weights_file(tmp_path):
    with pytest.raises(HarnessError, match="weights file not found"):
        backbones.build_base("vgg16", 32, str(tmp_path / "nope.h5"))


def test_imagenet_without_network_says_how_to_go_offline(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.applications.vgg16.file_utils.get_file", offline)
    with pytest.raises(HarnessError, match="could not download the ImageNet weights.*--weights PATH"):
        backbones.build_base("vgg16", 32, "imagenet")


def test_unknown_backbone():
    with pytest.raises(HarnessError, match="unknown backbone 'resnet'"):
        backbones.get_spec("resnet")
