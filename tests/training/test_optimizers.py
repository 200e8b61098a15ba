"""The fused optimizers do Keras' Adam and RMSprop arithmetic, only in one kernel."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from harness.training._optimizers import FusedAdam, FusedRMSprop


def _train(optimizer) -> list[np.ndarray]:
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((96, 40)).astype("float32"), rng.integers(0, 2, 96).astype("float32")
    model = keras.Sequential([keras.Input((40,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    return model.get_weights()


@pytest.mark.parametrize("keras_cls, fused_cls, lr", [(keras.optimizers.Adam, FusedAdam, 1e-2),
                                                      (keras.optimizers.RMSprop, FusedRMSprop, 1e-3)])
def test_fused_update_matches_keras(keras_cls, fused_cls, lr):
    reference, fused = _train(keras_cls(learning_rate=lr)), _train(fused_cls(learning_rate=lr))
    start = _train(keras_cls(learning_rate=0.0))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(reference, start))
    assert moved > 1e-2  # 18 steps did train, so agreement below is not two untouched models
    for a, b in zip(reference, fused):
        np.testing.assert_allclose(b, a, atol=1e-5)


def test_fused_optimizer_round_trips_through_keras_config():
    opt = keras.optimizers.deserialize(keras.optimizers.serialize(FusedAdam(learning_rate=3e-4)))
    assert isinstance(opt, FusedAdam) and float(opt.learning_rate) == pytest.approx(3e-4)
