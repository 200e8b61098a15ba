"""The trial runner of a sweep in one process: keras-tuner's tracked tuner, resumable (the claim on
an interrupted parent with the same configuration), and the winner logged as an MLflow model."""

from __future__ import annotations

import contextlib
import io

from harness.serving import _winner as winner
from harness.training import _variants as variants
from harness.tracking import reading, runs
from harness.tuning._context import SweepContext
from harness.tuning._oracles import hyperband_params
from harness.tuning._resume import Claim, claim, sweep_key
from harness.tuning._tuner import TrackedTuner, TrialRecord, make_oracle


class LocalRunner:
    """Trials run here, by `TrackedTuner.search`; `resume` is auto | resume | fresh."""

    params: dict[str, object] = {}

    def __init__(self, resume: str = "auto"):
        self.resume = resume
        self.tags: dict[str, str] = {}
        self.claimed: Claim | None = None
        self.tuner: TrackedTuner | None = None

    def claim(self, ctx: SweepContext) -> str | None:
        key = sweep_key(ctx.cfg, ctx.dataset.fingerprint)
        self.tags = {"sweep_key": key}
        self.claimed = claim(ctx.tracker, ctx.cfg.experiment_name, key, ctx.tuner_dir, self.resume)
        return self.claimed.parent_id

    def hold(self, parent: str) -> None:
        self.claimed.hold(parent)

    def run(self, ctx: SweepContext, parent: str) -> None:
        cfg = ctx.cfg
        with contextlib.redirect_stdout(io.StringIO()):  # keras-tuner's "Reloading Tuner" line
            self.tuner = TrackedTuner(
                make_oracle(cfg), ctx.prepared.hypermodel, cfg=cfg, tracker=ctx.tracker,
                experiment_id=ctx.experiment_id, parent_id=parent, fixed_params=ctx.fixed_params,
                reporter=ctx.reporter, directory=str(ctx.tuner_dir), project_name=parent, overwrite=False)
        self.tuner.restore_records(reading.children(ctx.tracker, parent, ctx.experiment_id))
        if cfg.tuner == "hyperband":
            runs.log_params(ctx.tracker, parent, hyperband_params(self.tuner.oracle))
        name = ctx.tracker.client.get_run(parent).info.run_name
        ctx.reporter.sweep_started(cfg, name, self.tuner.planned_trials)
        self.tuner.search(ctx.prepared.data, verbose=0)  # our reporter, not the oracle's printout

    def records(self) -> list[TrialRecord]:
        return list(self.tuner.records.values()) if self.tuner else []

    def best_trial_id(self) -> str | None:
        best = self.tuner.oracle.get_best_trials(1)
        return best[0].trial_id if best else None

    def log_winner(self, ctx: SweepContext, parent: str, best: TrialRecord) -> str:
        """The winner with its trial's frozen network (backbone, image size, cut: searched or not) in front."""
        variant = variants.of_trial(best.hyperparameters, ctx.prepared.frozen)
        return winner.log_winner(ctx.tracker, parent, best, self.tuner, ctx.prepared.frozen[variant], ctx.cfg,
                                 variant.image_size, ctx.prepared.data.class_names, variant.backbone)

    def stop(self) -> None:
        """Nothing to stop: the tuner's trial ends with the exception."""

    def close(self) -> None:
        if self.claimed is not None:
            self.claimed.release()
