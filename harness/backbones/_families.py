"""Every keras.applications image network the harness can use as a frozen base: what to call,
how to preprocess for it, the input sizes it accepts and was trained at, and where fine-tuning
cuts it (named where the harness has always cut there, else found from the graph)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackboneSpec:
    """What the harness needs to know about one ImageNet base network."""

    name: str  # "resnet50"
    family: str  # the keras.applications submodule holding its preprocess_input ("resnet")
    constructor: str  # the keras.applications attribute that builds it ("ResNet50")
    # caffe | tf | torch as keras.applications.<family>.preprocess_input; none where the network
    # rescales inside (EfficientNet, EfficientNetV2, ConvNeXt, MobileNetV3)
    preprocess_mode: str
    min_size: int  # the smallest input side keras.applications accepts
    native_size: int  # the ImageNet training size
    # the output the unfreeze=1 top block reads, where the harness names it (VGG: the tutorial's
    # block5; MobileNetV2: block_16 + Conv_1, as the harness always cut); None: from the graph
    cut_layer: str | None
    description: str
    width: bool = False  # takes alpha (the width multiplier)
    default_alpha: float | None = None
    # Measured on a 2-core AMX CPU at 150 px (bench/sweep_cost.py): VGG16's dense convolutions
    # run 3.5x faster in bfloat16; MobileNetV2's depthwise ones run slower (140 vs 216 images/s).
    # Depthwise, grouped and small convolutions elsewhere: not measured, so float32.
    faster_in_bf16: bool = False


def _vgg(depth: int) -> BackboneSpec:
    return BackboneSpec(f"vgg{depth}", f"vgg{depth}", f"VGG{depth}", "caffe", 32, 224, "block4_pool",
                        f"VGG{depth}; top block block5 (conv1..{3 if depth == 16 else 4}, pool)",
                        faster_in_bf16=True)


def _resnet(depth: int, v2: bool) -> BackboneSpec:
    suffix = "_v2" if v2 else ""
    return BackboneSpec(f"resnet{depth}{suffix}", f"resnet{suffix}", f"ResNet{depth}{'V2' if v2 else ''}",
                        "tf" if v2 else "caffe", 32, 224, None,
                        f"ResNet{depth}{' v2 (pre-activation)' if v2 else ''}; top stage conv5"
                        f"{' and the strided conv4 block' if v2 else ''}")


_MOBILENETS = [
    BackboneSpec("mobilenet", "mobilenet", "MobileNet", "tf", 32, 224, None,
                 "MobileNet v1 (depthwise separable); top stage conv_dw_12..13", True, 1.0),
    BackboneSpec("mobilenet_v2", "mobilenet_v2", "MobileNetV2", "tf", 32, 224, "block_15_add",
                 "MobileNetV2; top block block_16 + Conv_1", True, 0.35),
    BackboneSpec("mobilenet_v3_small", "mobilenet_v3", "MobileNetV3Small", "none", 32, 224, None,
                 "MobileNetV3 small (rescales inside); top stage the last stride-2 blocks", True, 1.0),
    BackboneSpec("mobilenet_v3_large", "mobilenet_v3", "MobileNetV3Large", "none", 32, 224, None,
                 "MobileNetV3 large (rescales inside); top stage the last stride-2 blocks", True, 1.0),
]

_EFFICIENTNET_SIZES = {"b0": 224, "b1": 240, "b2": 260, "b3": 300, "b4": 380, "b5": 456, "b6": 528,
                       "b7": 600}
_EFFICIENTNET_V2_SIZES = {"b0": 224, "b1": 240, "b2": 260, "b3": 300, "s": 384, "m": 480, "l": 480}


def _efficientnet(member: str, size: int, v2: bool) -> BackboneSpec:
    version = "V2" if v2 else ""
    return BackboneSpec(f"efficientnet{'_v2' if v2 else ''}_{member}", f"efficientnet{'_v2' if v2 else ''}",
                        f"EfficientNet{version}{member.upper()}", "none", 32, size, None,
                        f"EfficientNet{version}-{member.upper()} (rescales inside); top stage from "
                        f"the last stride-2 block")


def _convnext(member: str) -> BackboneSpec:
    title = "XLarge" if member == "xlarge" else member.title()
    return BackboneSpec(f"convnext_{member}", "convnext", f"ConvNeXt{title}", "none", 32, 224, None,
                        f"ConvNeXt-{title} (normalizes inside); top stage from the last downsampling")


def _densenet(depth: int) -> BackboneSpec:
    return BackboneSpec(f"densenet{depth}", "densenet", f"DenseNet{depth}", "torch", 32, 224, None,
                        f"DenseNet{depth}; top stage the dense block after the last transition pool")


_INCEPTIONS = [
    BackboneSpec("xception", "xception", "Xception", "tf", 71, 299, None,
                 "Xception; top stage the strided block13 and the exit flow"),
    BackboneSpec("inception_v3", "inception_v3", "InceptionV3", "tf", 75, 299, None,
                 "Inception v3; top stage mixed8..mixed10"),
    BackboneSpec("inception_resnet_v2", "inception_resnet_v2", "InceptionResNetV2", "tf", 75, 299, None,
                 "Inception-ResNet v2; top stage mixed_7a, block8 and conv_7b"),
    BackboneSpec("nasnet_mobile", "nasnet", "NASNetMobile", "tf", 32, 224, None,
                 "NASNet-A mobile; top stage the last reduction cell and the cells after it"),
    BackboneSpec("nasnet_large", "nasnet", "NASNetLarge", "tf", 32, 331, None,
                 "NASNet-A large; top stage the last reduction cell and the cells after it"),
]


def _all() -> list[BackboneSpec]:
    return [
        _vgg(16), _vgg(19),
        *(_resnet(depth, False) for depth in (50, 101, 152)),
        *(_resnet(depth, True) for depth in (50, 101, 152)),
        *_MOBILENETS,
        *(_efficientnet(m, size, False) for m, size in _EFFICIENTNET_SIZES.items()),
        *(_efficientnet(m, size, True) for m, size in _EFFICIENTNET_V2_SIZES.items()),
        *(_convnext(m) for m in ("tiny", "small", "base", "large", "xlarge")),
        *(_densenet(depth) for depth in (121, 169, 201)),
        *_INCEPTIONS,
    ]


REGISTRY: dict[str, BackboneSpec] = {spec.name: spec for spec in _all()}
