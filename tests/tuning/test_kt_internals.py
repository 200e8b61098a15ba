"""The keras-tuner internals harness relies on (harness/tuning/_kt_internals.py) are all still there, and
behave as harness assumes: a keras-tuner upgrade that breaks one fails here, by name."""

import keras_tuner as kt
import pytest

from harness.tuning import _kt_internals as kt_internals


def _random_oracle(**kwargs):
    hp = kt.HyperParameters()
    hp.Choice("units", [64, 128], default=128)
    return kt.oracles.RandomSearchOracle(objective="val_accuracy", hyperparameters=hp, max_trials=3, **kwargs)


@pytest.mark.parametrize("owner, name", [
    (kt.oracles.RandomSearchOracle, kt_internals.RANDOM_VALUES),
    (kt.oracles.BayesianOptimizationOracle, kt_internals.RANDOM_VALUES),
    (kt.oracles.HyperbandOracle, kt_internals.RANDOM_VALUES),
    (kt.Oracle, "_duplicate"),
    (kt.oracles.HyperbandOracle, "_get_num_brackets"),
    (kt.oracles.HyperbandOracle, "_get_size"),
    (kt.oracles.HyperbandOracle, "_get_num_rounds"),
])
def test_the_private_methods_harness_uses_exist(owner, name):
    assert callable(getattr(owner, name, None)), f"keras-tuner {kt.__version__}: {owner.__name__}.{name} is gone"


def test_the_debug_switch_and_the_distributed_pieces_exist():
    from keras_tuner.src import config

    kt_internals.quiet_failed_trials()
    assert config.DEBUG is False
    assert hasattr(kt_internals.protos, "get_service_grpc") and hasattr(kt_internals.OracleServicer, "CreateTrial")
    assert {"IDLE", "STOPPED", "COMPLETED"} <= {s for s in dir(kt_internals.TrialStatus) if s.isupper()}


def test_retry_queue_and_duplicates_behave_as_assumed(tmp_path):
    oracle = _random_oracle()
    oracle._set_project_dir(str(tmp_path), "p")
    assert kt_internals.retry_queue(oracle) == []
    trial = oracle.create_trial("worker-0")
    assert not kt_internals.is_duplicate(oracle, {"units": 64}) or trial.hyperparameters.values == {"units": 64}
    assert kt_internals.is_duplicate(oracle, dict(trial.hyperparameters.values))


def test_hyperband_shape_is_keras_tuners_own_plan():
    oracle = kt.oracles.HyperbandOracle(objective="val_accuracy", max_epochs=20, factor=3)
    brackets, rounds = kt_internals.hyperband_shape(oracle)
    # keras-tuner's arithmetic for max_epochs 20, factor 3 (README, *Tuners*): 22 configurations, 30 trials
    assert brackets == 3 and sorted(rounds) == [[4], [6, 2], [12, 4, 2]]


def test_keras_tuners_consecutive_failures_stop_is_recognised(tmp_path):
    oracle = _random_oracle(max_consecutive_failed_trials=1)
    oracle._set_project_dir(str(tmp_path), "p")
    trial = oracle.create_trial("worker-0")
    trial.status = kt_internals.TrialStatus.FAILED
    with pytest.raises(RuntimeError) as stop:
        oracle.end_trial(trial)
    assert kt_internals.is_consecutive_failures_stop(stop.value), str(stop.value)
    assert not kt_internals.is_consecutive_failures_stop(RuntimeError("something else"))

