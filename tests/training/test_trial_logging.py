"""A trial's cheaper bookkeeping: validation scored as Keras scores it, exact epochs from one endless
input pipeline, fine-tuning's schedule across phases, and metrics that are all in the store when a
run ends, also when the sweep is interrupted."""

from __future__ import annotations

import os
import signal

import keras
import keras_tuner as kt
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import runs_of, tiny_sweep_args
from harness.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Cached tiny features and each method's hypermodel, as a sweep prepares them."""
    from harness import config as config
    from harness.data._folders import scan, write_synthetic
    from harness.progress import NullReporter
    from harness.training._prepare import prepare

    root = tmp_path_factory.mktemp("trial")
    old = os.environ.get("HARNESS_CACHE_DIR")
    os.environ["HARNESS_CACHE_DIR"] = str(root / "cache")
    try:
        data = write_synthetic(root / "photos", per_class=6, size=40)
        out = {}
        for method in ("feature-extraction", "fine-tune"):
            cfg = config.validate(config.SweepConfig(method=method, data=str(data), backbone="vgg16", weights="none",
                                                     image_size=32, epochs=2))
            out[method] = prepare(cfg, scan(data), NullReporter())
    finally:
        os.environ.pop("HARNESS_CACHE_DIR") if old is None else os.environ.__setitem__("HARNESS_CACHE_DIR", old)
    return out


def _defaults(hypermodel) -> kt.HyperParameters:
    hp = kt.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    return hp


class _KerasEvaluate(keras.callbacks.Callback):
    """What Keras' own evaluate() says of the model being fit, after each epoch."""

    def __init__(self, data, validation):
        super().__init__()
        self.data, self.validation, self.seen = data, validation, []

    def on_epoch_end(self, epoch, logs=None):
        ours = (logs["val_loss"], logs["val_accuracy"])
        keras_says = self.model.evaluate(self.data.dataset(self.validation.layer, "validation"), verbose=0,
                                         return_dict=True)
        self.seen.append((epoch, self.model.name, ours, (keras_says["loss"], keras_says["accuracy"])))


@pytest.mark.parametrize("method", ["feature-extraction", "fine-tune"])
def test_validation_scores_are_what_keras_evaluate_reports(prepared, method):
    from harness.training._callbacks import Validation

    p = prepared[method]
    hp = _defaults(p.hypermodel)
    model = p.hypermodel.build(hp)
    validation = Validation(p.data)
    check = _KerasEvaluate(p.data, validation)
    p.hypermodel.fit(hp, model, p.data, callbacks=[check], validation=validation)
    phases = {"feature-extraction": ["head"] * 2, "fine-tune": ["head"] * 2 + ["top_and_head"] * 2}[method]
    assert [(epoch, name) for epoch, name, _, _ in check.seen] == list(enumerate(phases))
    for _, _, (loss, acc), (keras_loss, keras_acc) in check.seen:
        assert loss == pytest.approx(keras_loss, abs=1e-5) and acc == pytest.approx(keras_acc, abs=1e-6)


class _Epochs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append((epoch, self.model.name, int(self.model.optimizer.iterations.numpy())))


@pytest.mark.parametrize("first, end, expected", [
    (0, 1, [(0, "head")]),  # a short hyperband budget: the head only
    (1, 4, [(1, "head"), (2, "top_and_head"), (3, "top_and_head")]),  # continued across the phases
    (2, 4, [(2, "top_and_head"), (3, "top_and_head")]),  # continued in phase 2
])
def test_fine_tuning_trains_the_requested_part_of_its_two_phase_schedule(prepared, first, end, expected):
    p = prepared["fine-tune"]
    hp = _defaults(p.hypermodel)
    model = p.hypermodel.build(hp)
    epochs = _Epochs()
    p.hypermodel.fit(hp, model, p.data, callbacks=[epochs], epochs=end, initial_epoch=first)
    assert [(e, name) for e, name, _ in epochs.seen] == expected
    counts: dict[str, int] = {}
    for _, name, iterations in epochs.seen:  # each phase has its own optimizer
        counts[name] = counts.get(name, 0) + 1
        assert iterations == p.data.train_steps * counts[name]  # every epoch is one pass over the train split


def test_steps_per_execution_divides_the_epoch():
    from harness.training._methods import steps_per_execution

    assert [steps_per_execution(n) for n in (1, 12, 32, 64, 100, 37)] == [1, 12, 32, 32, 25, 1]


@pytest.mark.parametrize("rows, batch", [(37 * 4, 4), (100 * 4 - 3, 4), (12, 64)])
def test_an_endless_train_pipeline_still_trains_exactly_one_pass_per_epoch(rows, batch):
    from harness.training._methods import FeatureExtraction
    from harness.training._trial_data import TrialData
    from harness.config import SearchSpace

    rng = np.random.default_rng(0)
    arrays = {"top": {s: rng.normal(size=(rows, 2, 2, 3)).astype("float32") for s in ("train", "validation")}}
    labels = {s: (rng.random(rows) > 0.5).astype("float32") for s in ("train", "validation")}
    data = TrialData(labels, {}, batch_size=batch, class_names=("a", "b"), arrays=arrays)
    hypermodel = FeatureExtraction(SearchSpace(), (2, 2, 3), epochs=3, n_classes=2)
    hp = _defaults(hypermodel)
    model = hypermodel.build(hp)
    epochs = _Epochs()
    hypermodel.fit(hp, model, data, callbacks=[epochs])
    steps = -(-rows // batch)
    assert [it for _, _, it in epochs.seen] == [steps, 2 * steps, 3 * steps]


def test_metrics_logged_before_an_interruption_are_in_the_killed_run(tiny_data, store_uri, client, monkeypatch):
    """A SIGTERM in the middle of a trial ends its run KILLED with every epoch it had logged."""
    from harness.training._callbacks import EpochLogger

    real = EpochLogger.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        real(self, epoch, logs)
        if epoch == 2 and self.total_epochs == 5 and not getattr(EpochLogger, "_signalled", False):
            EpochLogger._signalled = True
            os.kill(os.getpid(), signal.SIGTERM)  # after the third epoch's metrics were logged

    monkeypatch.setattr(EpochLogger, "on_epoch_end", on_epoch_end)
    monkeypatch.setattr(EpochLogger, "_signalled", False, raising=False)
    result = runner.invoke(app, tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--epochs", "5",
                                                "--max-trials", "1"))
    assert result.exit_code == 143, result.output
    (parent,), (child,) = runs_of(client, "tiny")
    assert (parent.info.status, child.info.status) == ("KILLED", "KILLED")
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert [m.step for m in client.get_metric_history(child.info.run_id, key)] == [0, 1, 2]
