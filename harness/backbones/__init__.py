"""The frozen networks: the backbone registry (constructor, preprocessing, feature layer, the cut
fine-tuning unfreezes, weights) and the precision a backbone pass runs in (imports: errors)."""

from harness.backbones._precision import dtype_policy, resolve_precision
from harness.backbones._registry import BackboneSpec, build_base, get_spec, split_at_cut, weights_identity

__all__ = ["BackboneSpec", "build_base", "dtype_policy", "get_spec", "resolve_precision", "split_at_cut",
           "weights_identity"]
