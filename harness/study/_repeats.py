"""Seed variance: retrain a sweep's best configuration with other seeds, on the cached features."""

from __future__ import annotations

import json
import math

import keras
import keras_tuner as kt

from harness import config as config
from harness.training._callbacks import KeepBestWeights, Validation
from harness.data._folders import scan
from harness.progress import NullReporter
from harness.training._seeding import seed_everything
from harness.tracking import RunView, Tracker
from harness.tracking import reading

SEED_OFFSET = 1000  # clear of the seeds the sweep's trials used (seed + trial index)


def sweep_config(tracker: Tracker, parent: RunView) -> config.SweepConfig:
    """The sweep's resolved settings, as it logged them."""
    table = json.loads(reading.read_text(tracker, parent.run_id, "sweep_config.json"))
    return config.validate(config.parse(table, table["method"]))


def best_hyperparameters(hypermodel, params: dict[str, str]) -> kt.HyperParameters:
    """The hypermodel's space with every value set to the best trial's (from its string params)."""
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    for name, default in list(hp.values.items()):
        if name in params:
            value = params[name]
            hp.values[name] = value if isinstance(default, str) else type(default)(float(value))
    return hp


def train_once(prepared, hp, seed: int) -> tuple[float, float]:
    """One training run as a trial does it: best epoch by val_accuracy, then tested. (val, test)."""
    seed_everything(seed)
    data = prepared.data.for_trial(hp)  # the features of the configuration's image size
    model = prepared.hypermodel.build(hp)
    validation = Validation(data)
    best = KeepBestWeights(model, validation)
    prepared.hypermodel.fit(hp, model, data, callbacks=[keras.callbacks.TerminateOnNaN(), best],
                            validation=validation)  # the sweep's whole schedule
    if best.best_weights is None:
        return math.nan, math.nan
    best.restore()
    outputs = data.predict(model, prepared.hypermodel.input_layer, "test")
    return best.best_logs["val_accuracy"], data.loss_and_accuracy("test", outputs)[1]


def retrain(tracker: Tracker, parent: RunView, best_params: dict[str, str], k: int, log) -> list[float]:
    """Retrain the best configuration with k seeds; `log(seed, val, test)` records each."""
    from harness.training._prepare import prepare

    cfg = sweep_config(tracker, parent)
    prepared = prepare(cfg, scan(cfg.data), NullReporter())  # a feature-cache hit after the sweep
    hp = best_hyperparameters(prepared.hypermodel, best_params)
    tests = []
    for i in range(k):
        seed = cfg.seed + SEED_OFFSET + i
        val, test = train_once(prepared, hp, seed)
        log(seed, val, test)
        tests.append(test)
    return tests
