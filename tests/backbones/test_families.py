"""Every keras.applications family as a backbone: for its smallest member (random weights, the
smallest input it accepts) the top stage and a head on cached below-cut features predict what the
whole network predicts; its preprocessing is keras.applications' own; the larger members resolve
by name, and where cheap to build, cut where the table says."""

from dataclasses import dataclass

import keras
import numpy as np
import pytest

from harness.backbones import _registry as backbones
from harness.errors import HarnessError

# The smallest member of each family: (image size = its minimum, unfreeze=1 cut, unfreeze=2 cut).
SMALLEST = {
    "vgg16": (32, "block4_pool", "block3_pool"),
    "resnet50": (32, "conv4_block6_out", "conv3_block4_out"),
    "resnet50_v2": (32, "conv4_block5_out", "conv3_block3_out"),
    "mobilenet": (32, "conv_pw_11_relu", "conv_pw_5_relu"),
    "mobilenet_v2": (32, "block_15_add", "block_12_add"),
    "mobilenet_v3_small": (32, "expanded_conv_7_add", "expanded_conv_2_add"),
    "efficientnet_b0": (32, "block5c_add", "block3b_add"),
    "efficientnet_v2_b0": (32, "block5e_add", "block3b_add"),
    "convnext_tiny": (32, "add_14", "add_5"),
    "densenet121": (32, "pool4_pool", "pool3_pool"),
    "xception": (71, "add_10", "add_1"),
    "inception_v3": (75, "mixed7", "mixed2"),
    "inception_resnet_v2": (75, "block17_20_ac", "block35_10_ac"),
    "nasnet_mobile": (32, "normal_concat_8", "normal_concat_3"),
}
# Larger members: the cuts (unfreeze = 1, 2), built at 32 px. Only the cheap ones in the default
# suite; all of them with -m slow.
LARGER = {
    "vgg19": ("block4_pool", "block3_pool"),
    "resnet101": ("conv4_block23_out", "conv3_block4_out"),
    "resnet152": ("conv4_block36_out", "conv3_block8_out"),
    "resnet101_v2": ("conv4_block22_out", "conv3_block3_out"),
    "resnet152_v2": ("conv4_block35_out", "conv3_block7_out"),
    "mobilenet_v3_large": ("expanded_conv_11_add", "expanded_conv_5_add"),
    "efficientnet_b1": ("block5d_add", "block3c_add"),
    "efficientnet_b2": ("block5d_add", "block3c_add"),
    "efficientnet_b3": ("block5e_add", "block3c_add"),
    "efficientnet_b4": ("block5f_add", "block3d_add"),
    "efficientnet_b5": ("block5g_add", "block3e_add"),
    "efficientnet_b6": ("block5h_add", "block3f_add"),
    "efficientnet_b7": ("block5j_add", "block3g_add"),
    "efficientnet_v2_b1": ("block5f_add", "block3c_add"),
    "efficientnet_v2_b2": ("block5f_add", "block3c_add"),
    "efficientnet_v2_b3": ("block5g_add", "block3c_add"),
    "efficientnet_v2_s": ("block5i_add", "block3d_add"),
    "efficientnet_v2_m": ("block5n_add", "block3e_add"),
    "efficientnet_v2_l": ("block5s_add", "block3g_add"),
    "convnext_small": ("add_32", "add_5"),
    "convnext_base": ("add_32", "add_5"),
    "convnext_large": ("add_32", "add_5"),
    "convnext_xlarge": ("add_32", "add_5"),
    "densenet169": ("pool4_pool", "pool3_pool"),
    "densenet201": ("pool4_pool", "pool3_pool"),
    "nasnet_large": ("normal_concat_12", "normal_concat_5"),
}
CHEAP = {"vgg19"}  # under a second to build at 32 px; the rest with -m slow


@dataclass
class Built:
    base: keras.Model
    inputs: object  # the test images through our preprocessing: what the base sees
    whole: np.ndarray  # the base's output on them


@pytest.fixture(scope="module")
def bases():
    """One base per backbone for the whole module (building is most of the cost), its BatchNorm
    statistics set to the test images' own (momentum 0, one training pass), so that random
    weights give activations of ordinary size, neither vanishing nor overflowing."""
    built = {}

    def get(name) -> Built:
        if name not in built:
            size = SMALLEST[name][0]
            base = backbones.build_base(name, size, "none")
            x = _network_inputs(name, size)
            norms = {layer: layer.momentum for layer in base.layers
                     if isinstance(layer, keras.layers.BatchNormalization)}
            for layer in norms:
                layer.momentum = 0.0
            if norms:  # VGG and ConvNeXt have none
                base(x, training=True)
            for layer, momentum in norms.items():
                layer.momentum = momentum
            built[name] = Built(base, x, keras.ops.convert_to_numpy(base(x, training=False)))
        return built[name]
    return get


def _images(size: int) -> np.ndarray:
    return np.random.default_rng(size).uniform(0, 255, (4, size, size, 3)).astype("float32")


def _network_inputs(name: str, size: int):
    """The images through our preprocessing layers: what the base sees."""
    images = keras.Input((size, size, 3))
    model = keras.Model(images, backbones.preprocess(images, backbones.get_spec(name).preprocess_mode))
    return model(_images(size))


def _head(channels: int) -> keras.Model:
    features = keras.Input((None, None, channels))
    x = keras.layers.GlobalAveragePooling2D()(features)
    dense = keras.layers.Dense(5, kernel_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=7),
                               bias_initializer="zeros")
    return keras.Model(features, dense(x))


@pytest.mark.parametrize("unfreeze", [1, 2])
@pytest.mark.parametrize("name", sorted(SMALLEST))
def test_top_stage_and_head_on_cached_features_predict_what_the_whole_network_does(bases, name, unfreeze):
    built, spec = bases(name), backbones.get_spec(name)
    base = built.base
    cut = backbones.resolve_cut(base, spec, unfreeze)
    assert cut == SMALLEST[name][unfreeze]
    below, top = backbones.split_at_cut(base, cut)
    head = _head(base.output.shape[-1])
    whole = keras.ops.convert_to_numpy(head(built.whole))
    cached = keras.ops.convert_to_numpy(below(built.inputs, training=False))  # what the feature cache holds
    split = keras.ops.convert_to_numpy(head(top(cached, training=False)))
    assert whole.dtype == split.dtype == np.float32
    assert np.isfinite(whole).all() and np.abs(whole).max() > 1e-2
    assert np.abs(whole - split).max() <= 1e-4
    trained = {id(v) for layer in top.layers for v in layer.weights}
    assert trained and trained <= {id(v) for v in base.weights}  # the base's own layers, not copies


@pytest.mark.parametrize("family", sorted({s.family for s in backbones.REGISTRY.values()}))
def test_preprocessing_is_keras_applications_own(family):
    """Our preprocessing layers against keras.applications.<family>.preprocess_input, on
    fractional and whole pixels: bit for bit (the caffe and tf ones as test_backbones checks in
    either precision; torch's std division and the identity of the rest are exact too)."""
    mode = next(s.preprocess_mode for s in backbones.REGISTRY.values() if s.family == family)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 255, (8, 8, 8, 3)), rng.integers(0, 256, (8, 8, 8, 3))]).astype("float32")
    images = keras.Input((8, 8, 3))
    ours = keras.Model(images, backbones.preprocess(images, mode)).predict(x, verbose=0)
    expected = getattr(keras.applications, family).preprocess_input(x.copy())
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(ours, expected)


def test_every_keras_applications_network_is_in_the_registry_in_order():
    assert list(backbones.REGISTRY)[:3] == ["vgg16", "vgg19", "resnet50"]
    assert list(backbones.REGISTRY)[-2:] == ["nasnet_mobile", "nasnet_large"]
    assert set(backbones.REGISTRY) == set(SMALLEST) | set(LARGER)
    assert backbones.MODES == ("caffe", "tf", "torch", "none", "rescale")


@pytest.mark.parametrize("name", sorted(backbones.REGISTRY))
def test_each_name_resolves_to_a_keras_applications_network(name):
    spec = backbones.get_spec(name)
    assert spec.name == name and callable(getattr(keras.applications, spec.constructor))
    assert callable(getattr(keras.applications, spec.family).preprocess_input)
    assert spec.preprocess_mode in backbones.MODES and spec.min_size <= spec.native_size
    assert spec.width == (spec.default_alpha is not None)
    assert spec.faster_in_bf16 == name.startswith("vgg")


def _check_larger(name):
    spec = backbones.get_spec(name)
    base = backbones.build_base(name, 32, "none")
    assert backbones.cut_points(base, spec)[:2] == list(LARGER[name])
    keras.backend.clear_session()


@pytest.mark.parametrize("name", sorted(CHEAP))
def test_cheap_larger_members_cut_where_the_table_says(name):
    _check_larger(name)


@pytest.mark.slow  # a minute and more on 2 cores: ConvNeXt-XLarge alone has 350M weights to initialize
@pytest.mark.parametrize("name", sorted(set(LARGER) - CHEAP))
def test_larger_members_cut_where_the_table_says(name):
    _check_larger(name)


@pytest.mark.parametrize("name, size", [("vgg16", 47), ("xception", 100)])
def test_cut_names_do_not_depend_on_the_image_size_nor_on_what_was_built_before(bases, name, size):
    """The cut name is logged, so it names the same layer at every size; Xception's automatic
    layer names ("add_10") are the same in every build of the process."""
    bases(name)  # built before, in this process
    base = backbones.build_base(name, size, "none")
    assert backbones.cut_points(base, backbones.get_spec(name))[:2] == list(SMALLEST[name][1:])


def test_image_smaller_than_the_minimum_is_one_line():
    with pytest.raises(HarnessError, match=r"^image size 70 is too small for xception: .* 71 px") as error:
        backbones.build_base("xception", 70, "none")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError):  # keras.applications' own limit, the one we report
        keras.applications.Xception(include_top=False, weights=None, input_shape=(70, 70, 3))


def test_alpha_defaults_to_the_backbones_own_width(bases):
    assert backbones.get_spec("mobilenet_v2").default_alpha == 0.35
    assert bases("mobilenet_v2").base.get_layer("Conv1").filters == 16  # 32 * 0.35, rounded to 8
    assert backbones.build_base("mobilenet_v2", 32, "none", alpha=1.0).get_layer("Conv1").filters == 32
    assert backbones.build_base("vgg16", 32, "none", alpha=0.5) is not None  # no width: ignored


@pytest.mark.parametrize("unfreeze, message", [
    (5, r"^unfreeze = 5: resnet50 has 4 stages to unfreeze"),
    (0, r"^unfreeze = 0: resnet50 has 4 stages to unfreeze"),
    ("conv5_block1_1_relu", r"^unfreeze = 'conv5_block1_1_relu': conv5_block1_1_relu is no cut point of "
                            r"resnet50: the layers above it also read conv4_block6_out \(a skip connection"),
    ("conv5_block9_out", r"^unfreeze = 'conv5_block9_out': resnet50 has no layer 'conv5_block9_out'"),
    ("conv5_block3_out", r"is the output of resnet50: nothing above it to train"),
])
def test_resolve_cut_errors_are_one_line(bases, unfreeze, message):
    with pytest.raises(HarnessError, match=message) as error:
        backbones.resolve_cut(bases("resnet50").base, backbones.get_spec("resnet50"), unfreeze)
    assert "\n" not in str(error.value)


def test_a_cut_by_name_is_any_layer_no_skip_crosses(bases):
    built, spec = bases("resnet50"), backbones.get_spec("resnet50")
    base = built.base
    assert backbones.resolve_cut(base, spec, "conv5_block1_out") == "conv5_block1_out"
    below, top = backbones.split_at_cut(base, "conv5_block1_out")
    np.testing.assert_array_equal(top(below(built.inputs, training=False), training=False), built.whole)
    with pytest.raises(HarnessError, match="a skip connection crosses it"):
        backbones.split_at_cut(base, "conv5_block2_1_relu")


def test_nasnet_cuts_at_a_cell_with_the_cell_before_it(bases):
    """No single layer above NASNet's stem is a cut: each cell reads the two before it. The
    cached features are the two cells side by side; inside a cell is still no cut."""
    base, spec = bases("nasnet_mobile").base, backbones.get_spec("nasnet_mobile")
    below, _ = backbones.split_at_cut(base, "normal_concat_8")
    assert below.output.shape[-1] == 2 * base.get_layer("normal_concat_8").output.shape[-1]
    with pytest.raises(HarnessError, match="^unfreeze = 'normal_add_1_9': normal_add_1_9 is no cut point"):
        backbones.resolve_cut(base, spec, "normal_add_1_9")
