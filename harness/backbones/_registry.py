"""The backbone registry's verbs: look a backbone up, build it with its weights resolved,
preprocess for it, and cut it where fine-tuning unfreezes its top (the table is _families, the
graph work _graph)."""

from __future__ import annotations

import collections
import contextlib
import hashlib
from pathlib import Path

import keras
import numpy as np

from harness.backbones import _graph
from harness.backbones._families import REGISTRY, BackboneSpec
from harness.errors import HarnessError

__all__ = ["MODES", "REGISTRY", "BackboneSpec", "build_base", "cut_points", "fresh_copy", "get_spec",
           "preprocess", "preprocessing_mode", "resolve_cut", "split_at_cut", "weights_identity"]

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications.imagenet_utils, "caffe" mode
_TORCH_MEAN = (0.485, 0.456, 0.406)  # and "torch" mode, after x / 255
_TORCH_STD = (0.229, 0.224, 0.225)
MODES = ("caffe", "tf", "torch", "none", "rescale")


def _true_division(pixels, divisor: float, name: str):
    """x / divisor as Normalization(mean 0, variance divisor**2): a true division (Rescaling(1/d)
    would multiply by a rounded reciprocal, 1 ulp off on most pixels)."""
    return keras.layers.Normalization(mean=0.0, variance=divisor ** 2, dtype="float32", name=name)(pixels)


def _torch(pixels):
    """x / 255, then (x - mean) / std per channel as keras.applications computes it in float32:
    the variance given is the float32 std squared, whose float32 square root is that std exactly."""
    x = _true_division(pixels, 255.0, "preprocess_torch_divide")
    std = np.asarray(_TORCH_STD, "float32")
    return keras.layers.Normalization(mean=list(_TORCH_MEAN), variance=list(std * std), dtype="float32",
                                      name="preprocess_torch_normalize")(x)


def _caffe(pixels):
    """RGB -> BGR and minus the ImageNet BGR mean as a frozen Dense(3) on the channel axis: its
    kernel is the channel permutation (every output is one input times 1 plus two zeros, which is
    exact) and its bias minus the mean."""
    rgb_to_bgr = [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]  # kernel[in, out]: out 0 (B) = in 2
    layer = keras.layers.Dense(
        3, kernel_initializer=keras.initializers.Constant(rgb_to_bgr),
        bias_initializer=keras.initializers.Constant([-m for m in _CAFFE_MEAN_BGR]),
        trainable=False, dtype="float32", name="preprocess_caffe")
    return layer(pixels)


def preprocess(pixels, mode: str):
    """Raw 0..255 RGB pixels -> what a backbone expects, in standard Keras layers only, so a saved
    network loads wherever Keras does. Always float32 (exact even when the backbone runs in bfloat16).

    tf (MobileNet, ResNetV2, Inception, Xception, NASNet): x / 127.5 - 1; torch (DenseNet):
    x / 255, minus the ImageNet mean, over its std; caffe (VGG, ResNet): RGB -> BGR, minus the
    ImageNet BGR mean; none (EfficientNet, ConvNeXt, MobileNetV3 rescale inside): the pixels as
    float32; rescale (the tutorial's ImageDataGenerator): x * (1/255).
    """
    if mode == "tf":
        x = _true_division(pixels, 127.5, "preprocess_tf_divide")
        return keras.layers.Rescaling(1.0, offset=-1.0, dtype="float32", name="preprocess_tf_shift")(x)
    if mode == "rescale":
        return keras.layers.Rescaling(1 / 255, dtype="float32", name="preprocess_rescale")(pixels)
    if mode == "torch":
        return _torch(pixels)
    if mode == "none":
        return keras.layers.Rescaling(1.0, dtype="float32", name="preprocess_none")(pixels)
    if mode != "caffe":
        raise ValueError(f"unknown preprocessing mode {mode!r}")
    return _caffe(pixels)


def get_spec(name: str) -> BackboneSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise HarnessError(f"unknown backbone {name!r} (choose from {', '.join(REGISTRY)}; "
                           f"`harness backbones` lists them)") from None


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


@contextlib.contextmanager
def _fresh_names():
    """keras.applications leaves some layers to Keras' automatic names (Xception's and ConvNeXt's
    "add_3"), numbered per process. Built from a fresh count they are the same in every build, so
    a logged cut names the same layer everywhere and a weights file finds its layers; the count
    goes on above them afterwards, so later automatic names never repeat one of the base's."""
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # a Keras that moved it: names as Keras gives them
        yield
        return
    saved = global_state.get_global_attribute("object_name_uids") or collections.defaultdict(int)
    global_state.set_global_attribute("object_name_uids", collections.defaultdict(int))
    try:
        yield
    finally:
        merged = collections.defaultdict(int, saved)
        for prefix, count in (global_state.get_global_attribute("object_name_uids") or {}).items():
            merged[prefix] = max(merged[prefix], count)
        global_state.set_global_attribute("object_name_uids", merged)


def _builder(spec: BackboneSpec, image_size: int, alpha: float | None):
    constructor = getattr(keras.applications, spec.constructor)
    extra = {"alpha": alpha} if spec.width else {}

    def build(weights):
        with _fresh_names():
            return constructor(include_top=False, weights=weights, input_shape=(image_size, image_size, 3),
                               **extra)
    return build


def build_base(name: str, image_size: int, weights: str, alpha: float | None = None) -> keras.Model:
    """The frozen-able base network with its weights resolved ('imagenet', 'none' or a file), or
    one clear HarnessError. alpha None: the backbone's default width (ignored without one)."""
    spec = get_spec(name)
    if image_size < spec.min_size:
        raise HarnessError(f"image size {image_size} is too small for {name}: keras.applications builds it "
                           f"from {spec.min_size} px (it was trained at {spec.native_size})")
    alpha = spec.default_alpha if alpha is None else alpha
    label = f"{name} (alpha={alpha})" if spec.width else name
    build = _builder(spec, image_size, alpha)
    if weights == "none":
        return build(None)
    from harness.backbones import _weights  # resolving weights is its own module's concern

    if weights == "imagenet":
        return _weights.build_imagenet(build, label)
    if not Path(weights).is_file():
        raise HarnessError(f"weights file not found: {weights}")
    base = build(None)
    _weights.load_file(base, Path(weights), label)
    return base


def cut_points(base: keras.Model, spec: BackboneSpec) -> list[str]:
    """The fine-tuning cuts from the top down: [0] for unfreeze=1 (the named cut, else the top
    stage found from the graph), [1] one stage more, ... Names at any image size from min_size."""
    g = _graph.graph(base)
    stages = [g.names[i] for i in _graph.stage_cuts(g)[0]]
    if spec.cut_layer is None:
        return stages
    position = {name: i for i, name in enumerate(g.names)}
    return [spec.cut_layer] + [s for s in stages if position[s] < position[spec.cut_layer]]


def resolve_cut(base: keras.Model, spec: BackboneSpec, unfreeze: int | str) -> str:
    """unfreeze n: the n-th stage from the top; a name: that layer, when it is a cut point (its
    output alone feeds everything after it). Else one HarnessError naming the choices."""
    cuts = cut_points(base, spec)
    if isinstance(unfreeze, int) and not isinstance(unfreeze, bool):
        if 1 <= unfreeze <= len(cuts):
            return cuts[unfreeze - 1]
        raise HarnessError(f"unfreeze = {unfreeze}: {spec.name} has {len(cuts)} stages to unfreeze "
                           f"(1..{len(cuts)}, or a cut point's name: {', '.join(cuts)})")
    try:
        _graph.check_cut(_graph.graph(base), str(unfreeze), spec.name)
    except HarnessError as exc:
        raise HarnessError(f"unfreeze = {unfreeze!r}: {exc} (its stage cuts from the top: "
                           f"{', '.join(cuts)})") from None
    return str(unfreeze)


def split_at_cut(base: keras.Model, cut_layer: str) -> tuple[keras.Model, keras.Model]:
    """Split the base into (below, top): top(below(x)) == base(x), residual and dense networks
    included. The top is the base's own layers (same weights) on a fresh input; call it with
    training=False so BatchNormalization keeps its ImageNet statistics."""
    return _graph.split(base, cut_layer)


def fresh_copy(model: keras.Model) -> keras.Model:
    """An independent copy with the same weights, so one trial's training never leaks into the next."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy
