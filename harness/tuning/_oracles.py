"""keras-tuner's oracles as sweeps use them: the tutorial's defaults first, and hyperband's epoch
budget laid on the sweep's epochs."""

from __future__ import annotations

import math

import keras_tuner as kt

from harness.tuning import _kt_internals as kt_internals
from harness.config import SweepConfig

OBJECTIVE = kt.Objective("val_accuracy", direction="max")
HYPERBAND_FACTOR = 3  # keras-tuner's default: each round keeps the best third, for 3x the epochs


class DefaultsFirst:
    """Oracle mixin: the first candidate is the search space's defaults (the tutorial's
    configuration), so every sweep holds that reference point; then the oracle's own way."""

    def _random_values(self):  # kt_internals.RANDOM_VALUES: no public hook for the first candidate
        space = self.hyperparameters
        values = {hp.name: hp.default for hp in space.space if space.is_active(hp)}
        if not kt_internals.is_duplicate(self, values):
            return values
        return super()._random_values()


class RandomOracle(DefaultsFirst, kt.oracles.RandomSearchOracle):
    pass


class BayesianOracle(DefaultsFirst, kt.oracles.BayesianOptimizationOracle):
    pass


class HyperbandOracle(DefaultsFirst, kt.oracles.HyperbandOracle):
    """keras-tuner's Hyperband, run in whole iterations (every bracket, every round): as many as
    it takes to try at least `configurations` hyperparameter sets. A trial continued to a
    higher round is a trial of its own (keras-tuner's `tuner/trial_id` names the one it
    continues); `max_trials` becomes the number of trials the iterations hold, so keras-tuner's
    own stop and trial-id width follow the plan."""

    def __init__(self, *, configurations: int, **kwargs):
        super().__init__(**kwargs)
        _, rounds = kt_internals.hyperband_shape(self)
        per_iteration = sum(bracket[0] for bracket in rounds)  # new configurations: each bracket's first round
        self.hyperband_iterations = max(1, math.ceil(configurations / per_iteration))
        self.max_trials = self.hyperband_iterations * sum(map(sum, rounds))


def schedule_epochs(cfg: SweepConfig) -> int:
    """Epochs of a full trial on the step axis: fine-tuning runs two phases of `epochs` each."""
    return 2 * cfg.epochs if cfg.method == "fine-tune" else cfg.epochs


def make_oracle(cfg: SweepConfig) -> kt.Oracle:
    common = {"objective": OBJECTIVE, "seed": cfg.seed,
              "max_consecutive_failed_trials": cfg.max_consecutive_failed_trials}
    if cfg.tuner == "bayesian":
        return BayesianOracle(max_trials=cfg.max_trials, **common)
    if cfg.tuner == "hyperband":
        # A hyperband budget of b epochs is the first b epochs of a trial's schedule (for
        # fine-tuning: phase 1, then phase 2), so max_epochs is one full trial.
        return HyperbandOracle(max_epochs=schedule_epochs(cfg), factor=HYPERBAND_FACTOR,
                               configurations=cfg.max_trials, **common)
    return RandomOracle(max_trials=cfg.max_trials, **common)


def epoch_range(values: dict) -> tuple[int, int | None]:
    """[first, end) of the schedule a trial trains: hyperband's `tuner/initial_epoch` and
    `tuner/epochs`; other tuners train the whole schedule (end None: the method's default)."""
    end = values.get("tuner/epochs")
    return int(values.get("tuner/initial_epoch", 0)), (int(end) if end is not None else None)


def continues(values: dict) -> str | None:
    """The id of the trial a hyperband trial continues from (its best epoch's saved weights), if any."""
    return values.get("tuner/trial_id")


def hyperband_params(oracle: HyperbandOracle) -> dict[str, int]:
    """What a hyperband sweep's parent run records of its plan."""
    return {"hyperband_max_epochs": oracle.max_epochs, "hyperband_factor": oracle.factor,
            "hyperband_iterations": oracle.hyperband_iterations, "planned_trials": oracle.max_trials}
