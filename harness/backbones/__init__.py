"""The frozen networks: every keras.applications image network as a backbone (constructor,
preprocessing, input sizes), its weights (ImageNet in Keras' cache, or a file), the cuts
fine-tuning unfreezes found from its graph and the exact split at one, what `harness backbones`
lists, and the precision a backbone pass runs in (imports: errors)."""

from harness.backbones._catalog import BackboneInfo, catalog, describe
from harness.backbones._precision import dtype_policy, resolve_precision
from harness.backbones._registry import (MODES, REGISTRY, BackboneSpec, build_base, cut_points, fresh_copy,
                                         get_spec, preprocess, preprocessing_mode, resolve_cut, split_at_cut,
                                         weights_identity)
from harness.backbones._weights import keras_models_dir

__all__ = ["MODES", "REGISTRY", "BackboneInfo", "BackboneSpec", "build_base", "catalog", "cut_points", "describe",
           "dtype_policy", "fresh_copy", "get_spec", "keras_models_dir", "preprocess", "preprocessing_mode",
           "resolve_cut", "resolve_precision", "split_at_cut", "weights_identity"]
