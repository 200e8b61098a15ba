"""Backbone registry: constructor, preprocessing, feature layer, top block, weights resolution."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras

from harness.errors import HarnessError

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications.imagenet_utils, "caffe" mode
MODES = ("caffe", "tf", "rescale")


def preprocess(pixels, mode: str):
    """Raw 0..255 RGB pixels -> what a backbone expects, in standard Keras layers only, so a saved
    network loads wherever Keras does. Always float32 (exact even when the backbone runs in bfloat16).

    tf (MobileNetV2): x / 127.5 - 1, as Normalization(mean 0, variance 127.5**2) (a true division:
    Rescaling(1/127.5) would multiply by a rounded reciprocal, 1 ulp off on most pixels), then
    Rescaling(1, offset=-1); rescale (the tutorial's ImageDataGenerator): x * (1/255); caffe (VGG16): RGB -> BGR and minus the ImageNet BGR mean as a frozen Dense(3) on the channel
    axis: its kernel is the channel permutation (every output is one input times 1 plus two zeros,
    which is exact) and its bias minus the mean.
    """
    if mode == "tf":
        x = keras.layers.Normalization(mean=0.0, variance=127.5 ** 2, dtype="float32", name="preprocess_tf_divide")(pixels)
        return keras.layers.Rescaling(1.0, offset=-1.0, dtype="float32", name="preprocess_tf_shift")(x)
    if mode == "rescale":
        return keras.layers.Rescaling(1 / 255, dtype="float32", name="preprocess_rescale")(pixels)
    if mode != "caffe":
        raise ValueError(f"unknown preprocessing mode {mode!r}")
    rgb_to_bgr = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]  # kernel[in, out]: out 0 (B) = in 2
    layer = keras.layers.Dense(
        3, kernel_initializer=keras.initializers.Constant(rgb_to_bgr),
        bias_initializer=keras.initializers.Constant([-m for m in _CAFFE_MEAN_BGR]),
        trainable=False, dtype="float32", name="preprocess_caffe")
    return layer(pixels)


@dataclass(frozen=True)
class BackboneSpec:
    """What the harness needs to know about one ImageNet base network."""

    name: str
    build: Callable[..., keras.Model]
    preprocess_mode: str
    cut_layer: str  # output of this layer feeds the top block that fine-tuning unfreezes
    description: str
    # Measured on a 2-core AMX CPU at 150 px (bench/sweep_cost.py): VGG16's dense convolutions
    # run 3.5x faster in bfloat16; MobileNetV2's depthwise ones run slower (140 vs 216 images/s).
    faster_in_bf16: bool = False


def _vgg16(input_shape, weights, alpha):
    return keras.applications.VGG16(include_top=False, weights=weights, input_shape=input_shape)


def _mobilenet_v2(input_shape, weights, alpha):
    return keras.applications.MobileNetV2(
        include_top=False, weights=weights, input_shape=input_shape, alpha=alpha)


REGISTRY: dict[str, BackboneSpec] = {
    "vgg16": BackboneSpec("vgg16", _vgg16, "caffe", "block4_pool",
                          "VGG16; top block block5_conv1..3 + block5_pool", faster_in_bf16=True),
    "mobilenet_v2": BackboneSpec("mobilenet_v2", _mobilenet_v2, "tf", "block_15_add",
                                 "MobileNetV2; top block block_16 + Conv_1"),
}


def get_spec(name: str) -> BackboneSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise HarnessError(f"unknown backbone {name!r} (choose from {', '.join(REGISTRY)})") from None


def weights_identity(weights: str) -> str:
    """A stable name for the weights: 'imagenet', 'none' or a content hash of the file."""
    if weights in ("imagenet", "none"):
        return weights
    if not Path(weights).is_file():
        raise HarnessError(f"weights file not found: {weights}")
    digest = hashlib.sha256(Path(weights).read_bytes()).hexdigest()
    return f"sha256:{digest[:16]}"


def preprocessing_mode(spec: BackboneSpec, preprocessing: str) -> str:
    """'backbone' uses the network's own preprocessing; 'rescale' the tutorial's 1/255."""
    return spec.preprocess_mode if preprocessing == "backbone" else "rescale"


def build_base(name: str, image_size: int, weights: str, alpha: float = 0.35) -> keras.Model:
    """The frozen-able base network with its weights resolved, or one clear HarnessError."""
    spec = get_spec(name)
    shape = (image_size, image_size, 3)
    if weights == "imagenet":
        try:
            return spec.build(shape, "imagenet", alpha)
        except Exception as exc:  # offline, DNS, HTTP or a broken download all look alike here
            raise HarnessError(
                f"could not download the ImageNet weights for {name} ({type(exc).__name__}); "
                f"offline? pass a weights file with --weights PATH") from None
    if weights == "none":
        return spec.build(shape, None, alpha)
    path = Path(weights)
    if not path.is_file():
        raise HarnessError(f"weights file not found: {weights}")
    base = spec.build(shape, None, alpha)
    try:
        with warnings.catch_warnings():
            # Keras warns once per nested container of a weights file it reads; noise here.
            warnings.simplefilter("ignore")
            base.load_weights(str(path))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise HarnessError(
            f"weights file {weights} does not fit backbone {name}"
            f"{f' (alpha={alpha})' if name == 'mobilenet_v2' else ''}: {first}") from None
    return base


def split_at_cut(base: keras.Model, cut_layer: str) -> tuple[keras.Model, keras.Model]:
    """Split the base into (below, top block): top(below(x)) == base(x).

    The top block is rebuilt on a fresh Input from the layers after the cut, which
    must form a chain (true for VGG16 block5 and MobileNetV2's last block).
    """
    names = [layer.name for layer in base.layers]
    if cut_layer not in names:
        raise HarnessError(f"cut layer {cut_layer} not found in {base.name}")
    below = keras.Model(base.input, base.get_layer(cut_layer).output, name="below_cut")
    cut_shape = tuple(base.get_layer(cut_layer).output.shape[1:])
    x = inputs = keras.Input(cut_shape, name="cut_features")
    for layer in base.layers[names.index(cut_layer) + 1:]:
        x = layer(x)
    top = keras.Model(inputs, x, name="top_block")
    return below, top


def fresh_copy(model: keras.Model) -> keras.Model:
    """An independent copy with the same weights, so one trial's training never leaks into the next."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy
