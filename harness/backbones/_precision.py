"""What the machine can do fast: bfloat16 support, and the precision a backbone pass runs in."""

from __future__ import annotations

import contextlib
from pathlib import Path

_BF16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}


def cpu_has_bf16() -> bool:
    """True on CPUs with native bfloat16 arithmetic (AVX512-BF16 or AMX); elsewhere bf16 is emulated."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return bool(_BF16_CPU_FLAGS & set(flags))


def gpu_has_bf16() -> bool:
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        if capability >= (8, 0):
            return True
    return False


def resolve_precision(precision: str, faster_in_bf16: bool = True) -> str:
    """'auto' becomes bfloat16 for a backbone that gains from it on hardware that computes it
    natively, else float32."""
    if precision != "auto":
        return precision
    return "bfloat16" if faster_in_bf16 and (gpu_has_bf16() or cpu_has_bf16()) else "float32"


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Layers built inside compute in `precision` (weights stay float32); restored afterwards."""
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def float32_copy(model):
    """The same layers and weights computing in float32: a block taken from a base built in
    bfloat16 that trials will train (the optimizer keeps float32 weights either way)."""
    import keras

    def as_float32(layer):
        if not isinstance(layer, keras.layers.Layer):  # a raw operation (ConvNeXt's x + y) has no dtype
            return layer.__class__.from_config(layer.get_config())
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=as_float32)
    copy.set_weights(model.get_weights())
    return copy
