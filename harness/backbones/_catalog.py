"""What `harness backbones` lists: each network's size, its features at an image size, its default
fine-tuning cut, and whether its ImageNet file is already in the local Keras cache."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from harness.backbones import _registry as registry
from harness.backbones import _weights as weights_files
from harness.errors import HarnessError


@dataclass(frozen=True)
class BackboneInfo:
    """One row of the listing; `feature_shape` and `cut` are None below the network's minimum size."""

    name: str
    params: int
    feature_shape: tuple[int, ...] | None
    cut: str | None  # the last frozen layer of `unfreeze = 1`
    stages: int  # how many cuts `unfreeze = N` may count
    min_size: int
    native_size: int
    preprocessing: str
    imagenet_file: str
    imagenet_cached: Path | None


def describe(name: str, image_size: int, alpha: float | None = None) -> BackboneInfo:
    """Build the network with random weights (nothing is downloaded) at `image_size` (at its
    minimum where that is smaller) and read what the listing shows off it."""
    import keras

    spec = registry.get_spec(name)
    size = max(image_size, spec.min_size)
    base = registry.build_base(name, size, "none", alpha)
    cuts = registry.cut_points(base, spec)
    fits = image_size >= spec.min_size
    shape = (image_size, image_size, 3)
    width = {"alpha": alpha or spec.default_alpha} if spec.width else {}

    def build(w):
        return getattr(keras.applications, spec.constructor)(include_top=False, weights=w, input_shape=shape,
                                                             **width)

    with warnings.catch_warnings():  # MobileNet's "weights for 224 px will be loaded": the listing says which file
        warnings.simplefilter("ignore")
        file = weights_files.imagenet_file(build) if fits else ""
    cached = weights_files.keras_models_dir() / file if file else None
    info = BackboneInfo(name, base.count_params(), tuple(base.output.shape[1:]) if fits else None,
                        cuts[0] if fits else None, len(cuts), spec.min_size, spec.native_size, spec.preprocess_mode,
                        file, cached if cached and cached.is_file() else None)
    keras.backend.clear_session()  # the listing builds dozens of networks: free each one's graph
    return info


def catalog(image_size: int, names: list[str] | None = None, alpha: float | None = None) -> list[BackboneInfo]:
    """`describe` for each name (default: every backbone the registry knows), in registry order."""
    chosen = names or list(registry.REGISTRY)
    unknown = [n for n in chosen if n not in registry.REGISTRY]
    if unknown:
        registry.get_spec(unknown[0])  # the one-line unknown-backbone error
    if image_size < 1:
        raise HarnessError(f"--image-size must be >= 1, got {image_size}")
    return [describe(n, image_size, alpha) for n in chosen]
