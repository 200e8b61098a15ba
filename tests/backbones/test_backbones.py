"""Backbones: preprocessing, the exact top-block split, weights resolution errors."""

import keras
import numpy as np
import pytest

from harness.backbones import _registry as backbones
from harness.errors import HarnessError


@pytest.mark.parametrize("mode, reference", [
    ("caffe", keras.applications.vgg16.preprocess_input),  # RGB -> BGR, minus the ImageNet mean
    ("tf", keras.applications.mobilenet_v2.preprocess_input),  # x / 127.5 - 1
    ("rescale", lambda x: x * np.float32(1 / 255)),  # the tutorial's ImageDataGenerator(rescale=1./255)
])
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_preprocessing_layers_give_exactly_the_numbers_of_keras_applications(mode, reference, precision):
    """Bit for bit, on random (fractional, as after resizing) and whole pixels, in a model built
    under either pass precision; and only standard Keras layers."""
    from harness.backbones._precision import dtype_policy

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 255, (16, 8, 8, 3)), rng.integers(0, 256, (16, 8, 8, 3))]).astype("float32")
    with dtype_policy(precision):
        images = keras.Input((8, 8, 3))
        model = keras.Model(images, backbones.preprocess(images, mode))
    ours = model.predict(x, verbose=0)
    expected = reference(x.copy())
    assert ours.dtype == expected.dtype == np.float32
    np.testing.assert_array_equal(ours, expected)
    assert all(type(layer).__module__.startswith("keras.") for layer in model.layers)


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
    # the message is harness.backbones._weights' (which file to copy where)
    with pytest.raises(HarnessError, match="no ImageNet weights for vgg16.*cannot be downloaded.*--weights PATH"):
        backbones.build_base("vgg16", 32, "imagenet")


def test_unknown_backbone():
    with pytest.raises(HarnessError, match="unknown backbone 'resnet'"):
        backbones.get_spec("resnet")
