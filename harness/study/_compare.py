"""Reading the sweeps back from MLflow and comparing the two methods on the same test images."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np

from harness.config import METHODS
from harness.errors import HarnessError
from harness.training._metrics import PREDICTIONS_ARTIFACT, Predictions, metric_safe, parse_predictions
from harness.tracking import RunView, Tracker
from harness.tracking import experiments, reading, runs

SWEEP_FILTER = "tags.sweep = 'true' and attributes.status = 'FINISHED'"
HP_KEYS = ("backbone", "unfreeze", "units", "dropout", "learning_rate", "fine_tune_learning_rate", "image_size",
           "pooling")
SHORT = {"learning_rate": "lr", "fine_tune_learning_rate": "ft_lr"}


@dataclass
class MethodResult:
    """One method's latest sweep, summarised by its best trial (chosen by validation accuracy)."""

    method: str
    parent_run_id: str
    best_run_id: str
    hyperparameters: dict[str, str]
    val_accuracy: float
    test_accuracy: float
    n_test: int
    ci_low: float
    ci_high: float
    trials: int
    sweep_seconds: float
    seconds_per_trial: float
    val_curve: list[float] = field(default_factory=list)
    repeats: list[float] = field(default_factory=list)
    test_recall: dict[str, float] = field(default_factory=dict)  # per class, from the test predictions
    backbone: str = ""  # the winner's network (its trial's, when the sweep searched several)
    cut_layer: str = ""  # fine-tune: the last layer the winner kept frozen

    @property
    def repeat_mean(self) -> float:
        return float(np.mean(self.repeats)) if self.repeats else math.nan

    @property
    def repeat_sd(self) -> float:
        return float(np.std(self.repeats, ddof=1)) if len(self.repeats) > 1 else math.nan


@dataclass
class Comparison:
    """Both methods, the difference in test accuracy (fine-tune minus feature extraction), McNemar."""

    experiment: str
    methods: dict[str, MethodResult]
    difference: float
    both_right: int
    only_fe_right: int
    only_ft_right: int
    both_wrong: int
    mcnemar_p: float
    run_id: str = ""

    def to_dict(self) -> dict:
        return {**asdict(self), "methods": {m: {**asdict(r), "repeat_mean": r.repeat_mean,
                                                "repeat_sd": r.repeat_sd} for m, r in self.methods.items()}}


def wilson(correct: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval for a proportion."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(correct, n, alpha=0.05, method="wilson")
    # at 0 or n correct the bound is exactly 0 or 1; keep float round-off from hiding that
    return (0.0 if correct == 0 else float(low)), (1.0 if correct == n else float(high))


def mcnemar_exact(fe_correct: np.ndarray, ft_correct: np.ndarray) -> tuple[list[list[int]], float]:
    """Exact McNemar test on paired per-image outcomes; returns the 2x2 table and its p-value."""
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = fe_correct.astype(bool), ft_correct.astype(bool)
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    return table, float(mcnemar(table, exact=True).pvalue)


def finished_sweeps(tracker: Tracker, experiment: str | None) -> tuple[str | None, list[RunView]]:
    """The FINISHED sweeps, newest first, of `experiment`, else of the experiment of the newest
    sweep (None when the store holds no sweep)."""
    if experiment:
        exp_id = experiments.find(tracker, experiment)
        if exp_id is None:
            raise HarnessError(f"experiment {experiment!r} not found in {tracker.store.shown}")
        return exp_id, reading.search(tracker, [exp_id], SWEEP_FILTER)
    found = reading.search(tracker, None, SWEEP_FILTER)
    exp_id = found[0].experiment_id if found else None
    return exp_id, [s for s in found if s.experiment_id == exp_id]


def latest_sweeps(tracker: Tracker, experiment: str | None) -> tuple[str, str, dict[str, RunView]]:
    """The newest FINISHED sweep of each method; by default in the experiment of the newest sweep."""
    exp_id, sweeps = finished_sweeps(tracker, experiment)
    if exp_id is None:
        raise HarnessError(f"no finished sweep in {tracker.store.shown}; run `harness sweep ...` first")
    latest: dict[str, RunView] = {}
    for run in sweeps:  # newest first
        if run.tags.get("kind") != "comparison" and "best_run_id" in run.tags:
            latest.setdefault(run.tags.get("method", ""), run)
    missing = [m for m in METHODS if m not in latest]
    name = tracker.client.get_experiment(exp_id).name
    if missing:
        raise HarnessError(f"experiment {name!r} has no finished {' or '.join(missing)} sweep")
    return exp_id, name, latest


def method_result(tracker: Tracker, parent: RunView) -> tuple[MethodResult, Predictions]:
    """The best trial of one sweep, with the per-image predictions the paired test needs."""
    best = reading.get(tracker, parent.tags["best_run_id"])
    predictions = parse_predictions(reading.read_text(tracker, best.run_id, PREDICTIONS_ARTIFACT))
    correct = predictions.correct
    trials = [c for c in reading.children(tracker, parent.run_id, parent.experiment_id) if c.status == "FINISHED"]
    low, high = wilson(int(correct.sum()), len(correct))
    hps = {k: best.params[k] for k in HP_KEYS if k in best.params and k != "backbone"}  # a row of its own
    curve = [v for _, v in sorted(reading.metric_history(tracker, best.run_id, "val_accuracy"))]
    result = MethodResult(
        parent.tags["method"], parent.run_id, best.run_id, hps, best.metrics["best_val_accuracy"],
        best.metrics["test_accuracy"], len(correct), low, high, len(trials),
        parent.metrics.get("sweep_seconds", parent.seconds),
        float(np.mean([c.seconds for c in trials])) if trials else math.nan, curve,
        test_recall=predictions.scores().recall, backbone=best.params.get("backbone", best.tags.get("backbone", "")),
        cut_layer=best.params.get("cut_layer", ""))
    return result, predictions


def compare(tracker: Tracker, experiment: str | None = None) -> Comparison:
    """Both methods' best trials, their confidence intervals and the paired test between them."""
    _, name, sweeps = latest_sweeps(tracker, experiment)
    fe, fe_pred = method_result(tracker, sweeps["feature-extraction"])
    ft, ft_pred = method_result(tracker, sweeps["fine-tune"])
    if fe_pred.paths != ft_pred.paths or fe_pred.true_class != ft_pred.true_class:
        raise HarnessError("the two sweeps were tested on different test files (different data?); "
                           "run both on the same data folder")
    table, p = mcnemar_exact(fe_pred.correct, ft_pred.correct)
    return Comparison(name, {fe.method: fe, ft.method: ft}, ft.test_accuracy - fe.test_accuracy,
                      table[0][0], table[0][1], table[1][0], table[1][1], p)


def run_compare(tracking_uri: str | None = None, experiment: str | None = None, repeats: int = 0) -> Comparison:
    """Compare, optionally retrain each best configuration with `repeats` seeds, and log a
    `comparison` run (tag kind=comparison) holding the table, its JSON and the plot."""
    from harness.training import _plots as plots
    from harness.tracking import resolve_store

    if repeats < 0:
        raise HarnessError(f"--repeats must be >= 0, got {repeats}")
    tracker = Tracker(resolve_store(tracking_uri))
    exp_id, _, sweeps = latest_sweeps(tracker, experiment)
    comp = compare(tracker, experiment)
    run_id = runs.start(tracker, exp_id, run_name(), {
        "kind": "comparison", "feature_extraction_run": sweeps["feature-extraction"].run_id,
        "fine_tune_run": sweeps["fine-tune"].run_id})
    try:
        if repeats:
            _repeats(tracker, exp_id, run_id, sweeps, comp, repeats)
        _log_comparison(tracker, run_id, comp, plots)
        tracker.client.set_terminated(run_id, "FINISHED")
    except BaseException as exc:
        tracker.client.set_terminated(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    comp.run_id = run_id
    return comp


def _repeats(tracker, exp_id, run_id, sweeps, comp: Comparison, k: int) -> None:
    """Retrain each method's best configuration with k seeds; one child run per retraining."""
    from harness.study import _repeats as repeats

    for method, result in comp.methods.items():
        params = reading.get(tracker, result.best_run_id).params

        def log(seed, val, test, method=method):
            child = runs.start(tracker, exp_id, f"{method} · best config · seed {seed}",
                                      {"kind": "repeat", "method": method, "seed": seed}, parent_id=run_id)
            runs.log_params(tracker, child, {**{k: params[k] for k in HP_KEYS if k in params}, "seed": seed})
            runs.log_metrics(tracker, child, {"best_val_accuracy": val, "test_accuracy": test})
            tracker.client.set_terminated(child, "FINISHED")

        result.repeats = repeats.retrain(tracker, sweeps[method], params, k, log)


def _log_comparison(tracker: Tracker, run_id: str, comp: Comparison, plots) -> None:
    metrics = {"difference": comp.difference, "mcnemar_p": comp.mcnemar_p}
    for method, r in comp.methods.items():
        short = "fe" if method == "feature-extraction" else "ft"
        metrics.update({f"{short}_test_accuracy": r.test_accuracy, f"{short}_ci_low": r.ci_low,
                        f"{short}_ci_high": r.ci_high, f"{short}_val_accuracy": r.val_accuracy})
        metrics.update({f"{short}_test_recall/{metric_safe(c)}": v for c, v in r.test_recall.items()})
        if r.repeats:
            metrics.update({f"{short}_repeat_mean": r.repeat_mean, f"{short}_repeat_sd": r.repeat_sd})
    runs.log_metrics(tracker, run_id, {k: v for k, v in metrics.items() if not math.isnan(v)})
    tracker.client.log_text(run_id, markdown(comp), "comparison/comparison.md")
    tracker.client.log_text(run_id, to_json(comp), "comparison/comparison.json")
    fig = plots.comparison(comp.methods, f"feature extraction vs fine-tuning · {comp.experiment}")
    tracker.client.log_figure(run_id, fig, "comparison/comparison.png")
    plots.close(fig)


# -- rendering -------------------------------------------------------------------
def rows(comp: Comparison) -> list[tuple[str, ...]]:
    """The comparison as (label, feature extraction, fine-tune) rows: one table for terminal and Markdown."""
    fe, ft = (comp.methods[m] for m in METHODS)

    def both(fn):
        return fn(fe), fn(ft)

    out = [
        ("backbone (of the best trial)", *both(lambda r: r.backbone + (f", frozen up to {r.cut_layer}"
                                                                      if r.cut_layer else ""))),
        ("best trial hyperparameters", *both(lambda r: ", ".join(f"{SHORT.get(k, k)}={_short(v)}" for k, v in
                                                                 r.hyperparameters.items()))),
        ("validation accuracy (selects)", *both(lambda r: f"{r.val_accuracy:.3f}")),
        ("test accuracy [95% Wilson CI]", *both(lambda r: f"{r.test_accuracy:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]")),
        ("test images", *both(lambda r: str(r.n_test))),
    ]
    out += [(f"test recall: {name}", *both(lambda r, name=name: f"{r.test_recall.get(name, math.nan):.3f}"))
            for name in fe.test_recall]
    if fe.repeats or ft.repeats:
        out.append(("retrained, other seeds: mean ± sd (K)",
                    *both(lambda r: f"{r.repeat_mean:.3f} ± {r.repeat_sd:.3f} ({len(r.repeats)})")))
    out += [
        ("trials finished", *both(lambda r: str(r.trials))),
        ("sweep wall time", *both(lambda r: f"{r.sweep_seconds:.0f} s")),
        ("time per trial", *both(lambda r: f"{r.seconds_per_trial:.0f} s")),
    ]
    return out


def verdict(comp: Comparison) -> str:
    return (f"difference (fine-tune − feature extraction): {comp.difference:+.3f}; exact McNemar on the "
            f"same {comp.methods['fine-tune'].n_test} test images: only FE right {comp.only_fe_right}, "
            f"only FT right {comp.only_ft_right}, p = {comp.mcnemar_p:.3g}")


def markdown(comp: Comparison) -> str:
    lines = [f"| experiment `{comp.experiment}` | feature extraction | fine-tuning |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows(comp)]
    return "\n".join(lines) + f"\n\n{verdict(comp)}\n"


def to_json(comp: Comparison) -> str:
    return json.dumps(comp.to_dict(), indent=1)


def _short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.3g}" if not number.is_integer() else str(int(number))


def run_name() -> str:
    return f"comparison · {datetime.now():%Y-%m-%d %H:%M:%S}"
