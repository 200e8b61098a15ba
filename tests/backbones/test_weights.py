"""Backbone weights: Keras 2 HDF5 files matched by layer name, Keras 3 files, the ImageNet file
keras.applications would fetch, Keras' cache, and one-line errors offline. Small random-weight
networks only; nothing touches the network."""

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import h5py
import keras
import numpy as np
import pytest
from keras.src.backend import config as keras_config
from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group
from keras.src.utils import file_utils

from harness.backbones import _weights as weights
from harness.errors import HarnessError

MOBILENET = "mobilenet (alpha=0.25)"


def mobilenet(alpha=0.25, size=32, weights_arg=None, **kwargs):
    return keras.applications.MobileNet(alpha=alpha, include_top=False, weights=weights_arg,
                                        input_shape=(size, size, 3), **kwargs)


def vgg16():
    return keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))


def randomized(model, seed=0):
    """Every weight unlike a fresh build's, BN statistics included (fresh ones are all 0 and 1)."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.uniform(0.5, 1.5, v.shape).astype(v.dtype))
    return model


def values(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.weights]


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def write_legacy(model, path, layout="plain"):
    """The Keras 2 layout (attrs layer_names, weight_names) as Keras 3 still writes it."""
    with h5py.File(path, "w") as f:
        group = f.create_group("model_weights") if layout == "model_weights" else f
        save_weights_to_hdf5_group(group, model)
        if layout == "shuffled":
            names = list(group.attrs["layer_names"])
            np.random.default_rng(1).shuffle(names)
            group.attrs["layer_names"] = names
    return path


def one_line_error(call, *args) -> str:
    with pytest.raises(HarnessError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.fixture(scope="module")
def source_file(tmp_path_factory):
    """A random-weight MobileNet(alpha=0.25) at 32 px, its predictions, and its Keras 2 file."""
    source = randomized(mobilenet())
    x = np.random.default_rng(2).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    path = write_legacy(source, tmp_path_factory.mktemp("legacy") / "mobilenet.h5")
    return source, x, path


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """Keras reads $KERAS_HOME once, when it is imported (keras/src/backend/config.py), and its
    get_file asks config.keras_home() for it; point that value at a fresh folder."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(home))
    return home / "models"


@pytest.fixture
def no_network(monkeypatch):
    def fail(*args, **kwargs):
        pytest.fail("something tried to reach the network")

    monkeypatch.setattr(file_utils, "urlretrieve", fail)
    monkeypatch.setattr(urllib.request, "urlopen", fail)
    monkeypatch.setattr(socket.socket, "connect", fail)
    monkeypatch.setattr(socket, "create_connection", fail)


@pytest.fixture
def offline(monkeypatch):
    """What an offline machine does inside Keras' get_file: urlretrieve cannot resolve the host."""
    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "urlretrieve", unreachable)


# Keras 2 HDF5 files, matched by layer name

@pytest.mark.parametrize("layout", ["plain", "shuffled", "model_weights"])
def test_keras2_file_loads_by_name_as_keras_own_loader_does(source_file, tmp_path, layout):
    """Every weight equal to the source's and to what Keras' own (positional) loader reads from
    the plain file; a shuffled layer order, which defeats the positional loader, changes nothing."""
    source, x, plain = source_file
    path = plain if layout == "plain" else write_legacy(source, tmp_path / "w.h5", layout)
    ours = mobilenet()
    weights.load_file(ours, path, MOBILENET)
    assert_same(values(ours), values(source))
    np.testing.assert_array_equal(ours.predict(x, verbose=0), source.predict(x, verbose=0))
    if layout == "plain":
        theirs = mobilenet()
        theirs.load_weights(path)
        assert_same(values(theirs), values(ours))
    if layout == "shuffled":
        with pytest.raises(ValueError):
            mobilenet().load_weights(path)


def test_keras2_file_with_a_top_loads_into_a_frozen_base_and_sets_normalization_state(tmp_path):
    """A classifier head in the file is ignored; frozen layers keep the file's weight order; a
    Normalization layer gets the file's mean and variance into what it computes with."""
    def net(top):
        images = keras.Input((8, 8, 3))
        x = keras.layers.Normalization(name="norm")(images)
        x = keras.layers.Conv2D(4, 3, name="conv")(x)
        x = keras.layers.BatchNormalization(name="bn")(x)
        if top:
            x = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D(name="pool")(x))
        return keras.Model(images, x)

    source = randomized(net(top=True))
    source.get_layer("norm").finalize_state()
    path = write_legacy(source, tmp_path / "top.h5")
    base = net(top=False)
    base.trainable = False
    weights.load_file(base, path, "tiny")
    assert_same(values(base), values(source)[:len(base.weights)])
    x = np.random.default_rng(3).uniform(0, 2, (2, 8, 8, 3)).astype("float32")
    below = keras.Model(source.inputs, source.get_layer("bn").output)
    np.testing.assert_allclose(base.predict(x, verbose=0), below.predict(x, verbose=0), rtol=1e-6)


def test_layers_keras_named_itself_pair_up_in_order_whatever_their_numbers(tmp_path):
    """Unnamed layers are numbered per process (conv2d_93), so the numbers in a file (InceptionV3,
    Xception, EfficientNet, ConvNeXt files have such layers) never match a new build's; even a
    file whose numbers are those of the base's other layers of that class loads right."""
    def net():
        images = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(4, 3, name="stem")(images)
        x = keras.layers.BatchNormalization()(keras.layers.Conv2D(6, 1)(x))
        return keras.Model(images, keras.layers.Conv2D(8, 1)(x))

    source, base = randomized(net()), net()
    auto = [layer.name for layer in base.layers if layer.name.startswith("conv2d")]
    path = write_legacy(source, tmp_path / "auto.h5")
    with h5py.File(path, "r+") as f:  # the file's conv2d layers get the base's names, swapped
        old = [n for n in f.attrs["layer_names"] if n.startswith("conv2d")]
        for name, new in zip(old, reversed(auto)):
            f.move(name, new + "_tmp")
        for new in auto:
            f.move(new + "_tmp", new)
        f.attrs["layer_names"] = [dict(zip(old, reversed(auto))).get(n, n) for n in f.attrs["layer_names"]]
    weights.load_file(base, path, "tiny")
    assert_same(values(base), values(source))


def doctored(source, path, edit):
    write_legacy(source, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def drop_layer(f):
    f.attrs["layer_names"] = [n for n in f.attrs["layer_names"] if n != "conv_dw_3"]


def drop_weights(f):
    f["conv1_bn"].attrs["weight_names"] = f["conv1_bn"].attrs["weight_names"][:2]


@pytest.mark.parametrize("make, expected", [
    (lambda d: write_legacy(vgg16(), d / "vgg16.h5"),
     ("does not fit backbone mobilenet (alpha=0.25): layer conv1 not in the file, nor any other layer "
      "of this backbone (it has 'block1_conv1', 'block1_conv2', ... 13 layers with weights)")),
    (lambda d: write_legacy(mobilenet(alpha=0.5), d / "wider.h5"),
     ("does not fit backbone mobilenet (alpha=0.25): layer conv1 kernel is (3, 3, 3, 8) here, "
      "(3, 3, 3, 16) in the file")),
    (lambda d: doctored(mobilenet(), d / "gap.h5", drop_layer),
     "does not fit backbone mobilenet (alpha=0.25): layer conv_dw_3 not in the file (it has"),
    (lambda d: doctored(mobilenet(), d / "short.h5", drop_weights),
     "does not fit backbone mobilenet (alpha=0.25): layer conv1_bn has 4 weights here, 2 in the file"),
], ids=["other-family", "other-width", "layer-missing", "weights-missing"])
def test_keras2_file_that_does_not_fit_is_one_line_and_assigns_nothing(tmp_path, make, expected):
    path = make(tmp_path)
    base = mobilenet()
    before = values(base)
    message = one_line_error(weights.load_file, base, path, MOBILENET)
    assert message.startswith(f"weights file {path} ") and expected in message
    assert_same(values(base), before)


# Keras 3 files and file kinds

def test_keras3_weights_file_loads_and_another_architecture_is_one_line(source_file, tmp_path):
    source, _, _ = source_file
    path = tmp_path / "mobilenet.weights.h5"
    source.save_weights(path)
    ours = mobilenet()
    weights.load_file(ours, path, MOBILENET)
    assert_same(values(ours), values(source))
    for other, label in [(vgg16(), "vgg16"), (mobilenet(alpha=0.5), "mobilenet (alpha=0.5)")]:
        before = values(other)
        message = one_line_error(weights.load_file, other, path, label)
        assert message.startswith(f"weights file {path} does not fit backbone {label}: A total of ")
        assert_same(values(other), before)


def test_files_that_are_missing_or_of_another_kind(source_file, tmp_path):
    base = mobilenet()
    assert one_line_error(weights.load_file, base, tmp_path / "nope.h5", "x") == (
        f"weights file not found: {tmp_path / 'nope.h5'}")
    (tmp_path / "w.pt").write_bytes(b"torch")
    assert "pass a Keras 3 .weights.h5 file or a Keras 2 HDF5" in one_line_error(
        weights.load_file, base, tmp_path / "w.pt", "x")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    assert "cannot be read as a Keras 2 HDF5 weights file" in one_line_error(
        weights.load_file, base, tmp_path / "junk.h5", "x")
    source_file[0].save_weights(tmp_path / "k3.weights.h5")
    os.rename(tmp_path / "k3.weights.h5", tmp_path / "k3.h5")
    assert "a Keras 3 weights file must be named *.weights.h5" in one_line_error(
        weights.load_file, base, tmp_path / "k3.h5", "x")


# The ImageNet file keras.applications would fetch, and Keras' cache

def imagenet(ctor, **kwargs):
    return lambda w: ctor(include_top=False, weights=w, input_shape=(224, 224, 3), **kwargs)


@pytest.mark.parametrize("build, expected", [
    (imagenet(keras.applications.ResNet50), "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    (imagenet(keras.applications.MobileNet, alpha=0.25), "mobilenet_2_5_224_tf_no_top.h5"),
    (imagenet(keras.applications.MobileNetV2, alpha=0.35),
     "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"),
    (imagenet(keras.applications.EfficientNetB0), "efficientnetb0_notop.h5"),
    (imagenet(keras.applications.ConvNeXtTiny), "convnext_tiny_notop.h5"),
], ids=["resnet50", "mobilenet", "mobilenet_v2", "efficientnet_b0", "convnext_tiny"])
def test_imagenet_file_is_found_without_downloading(no_network, build, expected):
    assert weights.imagenet_file(build) == expected
    assert keras.utils.get_file is file_utils.get_file  # everything put back


def test_imagenet_cached_looks_where_keras_get_file_does(keras_home, no_network):
    build = imagenet(keras.applications.MobileNet, alpha=0.25)
    assert weights.keras_models_dir() == keras_home
    assert weights.imagenet_cached(build) is None
    keras_home.mkdir()
    (keras_home / "mobilenet_2_5_224_tf_no_top.h5").write_bytes(b"")
    assert weights.imagenet_cached(build) == keras_home / "mobilenet_2_5_224_tf_no_top.h5"


@pytest.mark.slow  # a fresh interpreter importing TensorFlow: 6 s on 2 cores
def test_keras_home_is_read_as_keras_reads_it(tmp_path):
    """In a fresh process, as Keras reads the variable only when it is imported."""
    code = "from harness.backbones._weights import keras_models_dir; print(keras_models_dir())"
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "kh"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    (tmp_path / "kh").mkdir()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == str(tmp_path / "kh" / "models")


# build_imagenet

def test_build_imagenet_offline_says_which_file_to_copy_where(keras_home, offline):
    message = one_line_error(weights.build_imagenet, imagenet(keras.applications.MobileNet, alpha=0.25),
                             MOBILENET)
    assert message.startswith(
        f"no ImageNet weights for {MOBILENET} here and they cannot be downloaded: Keras looks for "
        f"{keras_home / 'mobilenet_2_5_224_tf_no_top.h5'}; copy that file there, or pass --weights PATH")
    assert "Temporary failure in name resolution" in message


def test_build_imagenet_loads_a_hand_copied_file_from_the_cache(keras_home, no_network):
    source = randomized(mobilenet(size=224))
    keras_home.mkdir()
    write_legacy(source, keras_home / "mobilenet_2_5_224_tf_no_top.h5")
    model = weights.build_imagenet(imagenet(keras.applications.MobileNet, alpha=0.25), MOBILENET)
    assert_same(values(model), values(source))


def test_build_imagenet_refuses_bad_arguments_with_keras_own_words(no_network):
    message = one_line_error(weights.build_imagenet, imagenet(keras.applications.MobileNet, alpha=0.3),
                             "mobilenet (alpha=0.3)")
    assert message.startswith("keras.applications cannot build mobilenet (alpha=0.3) with ImageNet weights: "
                              "If imagenet weights are being loaded, alpha can be one of")


def test_build_imagenet_keeps_a_cached_file_keras_would_delete(keras_home, offline):
    """ResNet50's file has a published hash: Keras would re-download a file that does not match,
    and offline its failed download deletes the hand-copied file."""
    keras_home.mkdir()
    cached = keras_home / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    cached.write_bytes(b"another file")
    message = one_line_error(weights.build_imagenet, imagenet(keras.applications.ResNet50), "resnet50")
    assert f"the ImageNet weights file {cached} for resnet50 is not the one Keras expects" in message
    assert cached.read_bytes() == b"another file"


def test_build_imagenet_with_a_broken_cached_file_says_so(keras_home, no_network):
    """MobileNet's files have no published hash, so Keras loads whatever has the name."""
    keras_home.mkdir()
    (keras_home / "mobilenet_2_5_224_tf_no_top.h5").write_bytes(b"truncated")
    message = one_line_error(weights.build_imagenet, imagenet(keras.applications.MobileNet, alpha=0.25),
                             MOBILENET)
    assert message.startswith(f"the ImageNet weights file {keras_home / 'mobilenet_2_5_224_tf_no_top.h5'} "
                              f"does not load into {MOBILENET}: ")
