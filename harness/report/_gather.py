"""What a report shows, read back from MLflow into plain dataclasses: the sweeps (each with its
search space, trials and winner), the comparison run that matches them, and its seed repeats."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.config import METHODS
from harness.errors import HarnessError
from harness.study._compare import MethodResult, finished_sweeps, mcnemar_exact, method_result
from harness.tracking import RunView, Tracker
from harness.tracking import reading
from harness.training._metrics import Predictions
from harness.report._space import Searched, searched

CURVES = ("loss", "accuracy", "val_loss", "val_accuracy")
LABEL = {"feature-extraction": "feature extraction", "fine-tune": "fine-tuning"}


@dataclass(frozen=True)
class Trial:
    """One trial's child run; `number` is keras-tuner's trial id + 1, as the sweep table shows it."""

    run_id: str
    name: str
    number: int
    status: str
    params: dict[str, str]
    val: float
    test: float
    best_epoch: float  # 0-based, as logged
    start_time: int
    end_time: int | None
    budget: int | None  # hyperband: the epochs this trial trained up to (param tuner/epochs)

    @property
    def complete(self) -> bool:
        return self.status == "FINISHED" and not math.isnan(self.val)

    @property
    def seconds(self) -> float:
        return ((self.end_time or self.start_time) - self.start_time) / 1000.0


@dataclass
class Sweep:
    method: str
    parent: RunView
    config: dict | None  # the resolved sweep file (sweep_config.json), None when it is missing
    space: tuple[Searched, ...]
    trials: tuple[Trial, ...]  # in the order they started
    winner: MethodResult
    predictions: Predictions
    history: dict[str, list[tuple[int, float]]]  # the winner's curves, continued runs' epochs first

    @property
    def hyperband(self) -> bool:
        return any(t.budget is not None for t in self.trials)

    @property
    def comparable(self) -> tuple[Trial, ...]:
        """The completed trials that can stand side by side: with hyperband, those that trained to
        the full budget (shorter brackets' validation accuracy is not the same objective)."""
        done = [t for t in self.trials if t.complete]
        if not self.hyperband:
            return tuple(done)
        full = max((t.budget or 0) for t in done) if done else 0
        return tuple(t for t in done if t.budget == full)


@dataclass
class Study:
    experiment_id: str
    experiment: str
    store: str
    sweeps: dict[str, Sweep]  # by method, in METHODS order
    comparison: RunView | None  # the newest kind=comparison run of exactly these sweeps
    repeats: dict[str, list[float]] = field(default_factory=dict)  # test accuracy per seed, by method
    mcnemar: tuple[list[list[int]], float] | None = None
    notes: list[str] = field(default_factory=list)  # what the report cannot show, and why


def gather(tracker: Tracker, experiment: str | None, sweep_ids: list[str]) -> Study:
    exp_id, name, parents = pick_sweeps(tracker, experiment, sweep_ids)
    sweeps = {m: load_sweep(tracker, parents[m]) for m in METHODS if m in parents}
    study = Study(exp_id, name, tracker.store.shown, sweeps, comparison_run(tracker, exp_id, parents))
    if len(sweeps) == 2:
        fe, ft = (sweeps[m].predictions for m in METHODS)
        if fe.paths == ft.paths and fe.true_class == ft.true_class:
            study.mcnemar = mcnemar_exact(fe.correct, ft.correct)
        else:
            study.notes.append("the two sweeps were tested on different test images: no paired test")
    study.repeats = repeats(tracker, exp_id, parents)
    return study


def pick_sweeps(tracker: Tracker, experiment: str | None, sweep_ids: list[str]):
    """(experiment id, name, {method: parent run}): the given sweeps, or the newest finished one
    of each method, in `experiment` or else in the experiment of the newest sweep."""
    if sweep_ids:
        parents = [_given_sweep(tracker, run_id) for run_id in sweep_ids]
        exp_ids = {p.experiment_id for p in parents}
        if len(exp_ids) > 1:
            raise HarnessError("--sweep: the sweeps are in different experiments; give sweeps of one")
        exp_id = exp_ids.pop()
        name = tracker.client.get_experiment(exp_id).name
        if experiment and experiment != name:
            raise HarnessError(f"--sweep: the sweeps are in experiment {name!r}, not {experiment!r}")
        by_method: dict[str, RunView] = {}
        for p in parents:
            if by_method.setdefault(p.tags["method"], p) is not p:
                raise HarnessError(f"--sweep: two {p.tags['method']} sweeps given; give one per method")
        return exp_id, name, by_method
    exp_id, found = finished_sweeps(tracker, experiment)
    latest: dict[str, RunView] = {}
    for run in found:  # newest first
        if run.tags.get("method") in METHODS and "best_run_id" in run.tags:
            latest.setdefault(run.tags["method"], run)
    if not latest:
        where = f"experiment {experiment!r}" if experiment else tracker.store.shown
        raise HarnessError(f"no finished sweep with a best trial in {where}; run `harness sweep ...` first")
    return exp_id, tracker.client.get_experiment(exp_id).name, latest


def _given_sweep(tracker: Tracker, run_id: str) -> RunView:
    run = reading.get(tracker, run_id)
    if run.tags.get("sweep") != "true" or run.tags.get("method") not in METHODS:
        raise HarnessError(f"--sweep {run_id}: not the parent run of a sweep")
    if "best_run_id" not in run.tags:
        raise HarnessError(f"--sweep {run_id}: the sweep has no best trial (did any trial finish?)")
    return run


def load_sweep(tracker: Tracker, parent: RunView) -> Sweep:
    try:
        config = reading.load_json(tracker, parent.run_id, "sweep_config.json")
    except HarnessError:
        config = None
    views = sorted(reading.children(tracker, parent.run_id, parent.experiment_id), key=lambda r: r.start_time)
    trials = tuple(_trial(v) for v in views if v.tags.get("kind") != "repeat")
    winner, predictions = method_result(tracker, parent)
    best = reading.get(tracker, winner.best_run_id)
    return Sweep(parent.tags["method"], parent, config, searched(config, parent.tags["method"], trials),
                 trials, winner, predictions, history(tracker, best))


def _trial(view: RunView) -> Trial:
    trial_id = view.tags.get("trial_id", "")
    budget = view.params.get("tuner/epochs")
    return Trial(view.run_id, view.name, int(trial_id) + 1 if trial_id.isdigit() else 0, view.status,
                 view.params, view.metrics.get("best_val_accuracy", math.nan),
                 view.metrics.get("test_accuracy", math.nan), view.metrics.get("best_epoch", math.nan),
                 view.start_time, view.end_time, int(budget) if budget and budget.isdigit() else None)


def history(tracker: Tracker, run: RunView) -> dict[str, list[tuple[int, float]]]:
    """The run's per-epoch curves; a continued hyperband trial's start with the epochs of the run
    it continues (and that one's), so the winner's curves cover its whole training."""
    curves = {k: reading.metric_history(tracker, run.run_id, k) for k in CURVES}
    seen = {run.run_id}
    while (earlier := run.tags.get("continues_run_id")) and earlier not in seen:
        seen.add(earlier)
        run = reading.get(tracker, earlier)
        for key in CURVES:
            first = min((s for s, _ in curves[key]), default=math.inf)
            curves[key] = [(s, v) for s, v in reading.metric_history(tracker, run.run_id, key) if s < first] \
                + curves[key]
    return {k: sorted(v) for k, v in curves.items()}


def comparison_run(tracker: Tracker, exp_id: str, parents: dict[str, RunView]) -> RunView | None:
    """The newest FINISHED comparison of exactly these sweeps (there is none for one method)."""
    matching = _comparisons(tracker, exp_id, parents)
    return matching[0] if matching else None


def _comparisons(tracker: Tracker, exp_id: str, parents: dict[str, RunView]) -> list[RunView]:
    if len(parents) < 2:
        return []
    found = reading.find_runs(tracker, exp_id, {"kind": "comparison"})
    return [r for r in found if r.status == "FINISHED"
            and r.tags.get("feature_extraction_run") == parents["feature-extraction"].run_id
            and r.tags.get("fine_tune_run") == parents["fine-tune"].run_id]


def repeats(tracker: Tracker, exp_id: str, parents: dict[str, RunView]) -> dict[str, list[float]]:
    """Test accuracy of each seed retrained by `compare --repeats`: the newest comparison of these
    sweeps that retrained any."""
    for comparison in _comparisons(tracker, exp_id, parents):
        found: dict[str, list[float]] = {}
        for child in sorted(reading.children(tracker, comparison.run_id, exp_id), key=lambda r: r.start_time):
            if child.tags.get("kind") == "repeat" and "test_accuracy" in child.metrics:
                found.setdefault(child.tags.get("method", ""), []).append(child.metrics["test_accuracy"])
        if found:
            return found
    return {}
