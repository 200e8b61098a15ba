"""One sweep end to end, local or distributed: the preamble, the parent run (opened or resumed), the
trials, the best trial and the winner recorded, and the end, FINISHED, FAILED or KILLED, never
RUNNING. Who runs the trials is a TrialRunner: keras-tuner's tracked tuner in this process
(harness.study._local), or the chief's oracle and its workers (harness.distributed), as keras-tuner
runs the same `Tuner.search` with its oracle local or remote."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from harness.interrupts import signals_interrupt
from harness.progress import NullReporter
from harness.config import SweepConfig
from harness.serving import _winner as winner
from harness.tracking import _ui_views as saved_views
from harness.tracking import runs
from harness.tuning._context import SweepContext, open_context
from harness.tuning._tuner import TrialRecord, log_confusion_matrix


@dataclass
class SweepResult:
    """What the CLI prints at the end; everything here is also in MLflow."""

    method: str
    experiment: str
    parent_run_id: str
    store_uri: str
    trials: list[TrialRecord]
    best: TrialRecord | None
    seconds: float
    cache_hit: bool
    extraction_seconds: float
    tags: dict[str, str] = field(default_factory=dict)
    model_uri: str | None = None  # the winner's logged model
    registered_model: str | None = None  # models:/NAME/VERSION with --register


class TrialRunner(Protocol):
    """Who runs a sweep's trials. `tags` and `params` go on a new parent run besides the sweep's own."""

    tags: dict[str, str]
    params: dict[str, object]

    def claim(self, ctx: SweepContext) -> str | None:
        """The earlier parent run this sweep continues, or None; held until `close`."""

    def hold(self, parent: str) -> None:
        """A new parent run now exists: keep other processes off it."""

    def run(self, ctx: SweepContext, parent: str) -> None:
        """Run every trial as a child run of `parent`; return when none is left running."""

    def records(self) -> list[TrialRecord]: ...

    def best_trial_id(self) -> str | None:
        """The best trial by validation accuracy, as keras-tuner's oracle ranks them."""

    def log_winner(self, ctx: SweepContext, parent: str, best: TrialRecord) -> str | None:
        """The winner logged as a model (its URI), or None where this runner logs none."""

    def stop(self) -> None:
        """While an exception propagates: stop whatever runs trials."""

    def close(self) -> None:
        """Always, last: locks and helper processes let go."""


def run_sweep(cfg: SweepConfig, tracking_uri: str | None = None, reporter=None, resume: str = "auto",
              use_cache: bool = True, register: str | None = None, runner: TrialRunner | None = None) -> SweepResult:
    """Run one sweep, or continue the interrupted one with the same configuration
    (resume: auto | resume | fresh). `use_cache=False` is the naive baseline: the backbone runs
    inside every trial (bench/). `register`: the winner becomes a new version of that registered
    model. `runner`: who runs the trials (default: this process)."""
    from harness.study._local import LocalRunner

    reporter = reporter or NullReporter()
    start = time.perf_counter()
    ctx = open_context(cfg, tracking_uri, reporter, use_cache)
    runner = runner or LocalRunner(resume)
    try:
        with signals_interrupt():
            parent = open_parent(ctx, runner)
            best, uri, seconds = _trials(ctx, parent, runner, start)
    finally:
        runner.close()
    saved_views.write_views(ctx.tracker, ctx.experiment_id)  # the UI's saved views now include this sweep
    tags = {**ctx.tags, **runner.tags}
    # after the sweep has ended FINISHED: a registry problem does not undo a finished sweep
    registered = winner.register(ctx.tracker, register, uri, parent, best, tags) if register and uri else None
    return SweepResult(cfg.method, cfg.experiment_name, parent, ctx.store.uri, runner.records(), best, seconds,
                       ctx.prepared.cache_hit, ctx.prepared.extraction_seconds, tags, uri, registered)


def open_parent(ctx: SweepContext, runner: TrialRunner) -> str:
    """The parent the runner claims, its stale RUNNING trials marked KILLED; else a new parent run
    with the sweep's params and resolved config (a worker runs that config)."""
    resumed = runner.claim(ctx)
    tracker, tags = ctx.tracker, {**ctx.tags, **runner.tags}  # the runner's (a sweep key) known once it claims
    if resumed:
        parent = resumed
        runs.end_running_children(tracker, ctx.experiment_id, parent, "KILLED")  # left by a killed process
    else:
        name = f"{ctx.cfg.method} · {'+'.join(ctx.cfg.backbones)} · {datetime.now():%Y-%m-%d %H:%M:%S}"
        parent = runs.start(tracker, ctx.experiment_id, name, tags)
        runner.hold(parent)
    try:
        if resumed:
            tracker.client.update_run(parent, status="RUNNING")
            runs.set_tags(tracker, parent, tags)
            return parent
        runs.log_params(tracker, parent, {**ctx.fixed_params, "max_trials": ctx.cfg.max_trials, **runner.params})
        tracker.client.log_dict(parent, ctx.cfg.to_dict(), "sweep_config.json")
        runs.log_metrics(tracker, parent, {"extraction_seconds": ctx.prepared.extraction_seconds,
                                           "cache_hit": float(ctx.prepared.cache_hit)})
    except BaseException:
        end_sweep(ctx, parent)
        raise
    return parent


def _trials(ctx: SweepContext, parent: str, runner: TrialRunner, start: float):
    """The runner's trials under `parent`, then the best one and the winner recorded and the parent
    ended FINISHED; on any other exit its runs end KILLED or FAILED. (best, model URI, seconds)."""
    try:
        runner.run(ctx, parent)
        best = record_best(ctx, parent, runner)
        uri = runner.log_winner(ctx, parent, best) if best is not None else None
        seconds = time.perf_counter() - start
        runs.log_metrics(ctx.tracker, parent, {"sweep_seconds": seconds, "trials_finished": sum(
            r.status == "FINISHED" for r in runner.records())})
        ctx.tracker.client.set_terminated(parent, "FINISHED")
    except BaseException:
        end_sweep(ctx, parent, runner)
        raise
    return best, uri, seconds


def record_best(ctx: SweepContext, parent: str, runner: TrialRunner) -> TrialRecord | None:
    """The best trial by validation accuracy (test accuracy is reported, never used to choose): its
    ids, hyperparameters and scores on the parent, its confusion matrix on its own run."""
    best_id = runner.best_trial_id()
    best = next((r for r in runner.records() if r.trial_id == best_id and r.run_id), None)
    if best is None:
        return None
    runs.set_tags(ctx.tracker, parent, {"best_trial_id": best.trial_id, "best_run_id": best.run_id,
                                        **{f"best.{k}": v for k, v in best.hyperparameters.items()}})
    metrics = {"best_val_accuracy": best.val_accuracy}
    if not math.isnan(best.test_accuracy):
        metrics["best_test_accuracy"] = best.test_accuracy
    runs.log_metrics(ctx.tracker, parent, metrics)
    log_confusion_matrix(ctx.tracker, best.run_id, f"{best.name} · test split")
    return best


def end_sweep(ctx: SweepContext, parent: str, runner: TrialRunner | None = None) -> None:
    """While an exception propagates: stop the runner, end the trials still running and the parent,
    KILLED or FAILED. The parent ends even when the store would not list its trials, and such a
    second failure does not hide the first (it is added to it as a note)."""
    first = sys.exc_info()[1]
    status = "KILLED" if isinstance(first, KeyboardInterrupt) else "FAILED"
    try:
        if runner is not None:
            runner.stop()
        runs.end_running_children(ctx.tracker, ctx.experiment_id, parent, status)
    except Exception as exc:
        if first is None:
            raise
        first.add_note(f"while ending the sweep's runs: {exc}")
    finally:  # the parent too, even if the store would not list its children
        ctx.tracker.client.set_terminated(parent, status)
