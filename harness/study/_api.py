"""The Python API each CLI command wraps, for notebooks and scripts: `harness.sweep`,
`harness.compare`, `harness.predict`. Errors are exceptions (harness.HarnessError and its
StoreError); nothing here prints.

    import harness
    fe = harness.sweep("feature-extraction", data="photos", backbone="mobilenet_v2", max_trials=3)
    ft = harness.sweep("fine-tune", data="photos", backbone="mobilenet_v2", max_trials=3)
    comparison = harness.compare(experiment="photos")
    labels = harness.predict(["cat.jpg"], run=fe.parent_run_id)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config import load
from harness.errors import HarnessError
from harness.serving import Predictions
from harness.serving import predict as _predict
from harness.study._compare import Comparison, run_compare
from harness.study._launch import Launch, launch
from harness.study._sweep import SweepResult
from harness.tuning._resume import MODES


def sweep(method: str, *, config: str | Path | None = None, tracking_uri: str | None = None,
          resume: str = "auto", register: str | None = None, workers: int = 0, reporter=None,
          **settings: Any) -> SweepResult:
    """Run one sweep of `method` (feature-extraction | fine-tune), as `harness sweep METHOD` does.

    `settings` are sweep-file keys (data=..., backbone=..., image_size=..., max_trials=...) that
    override the sweep file `config` (default: the packaged one). `resume`: auto (continue an
    interrupted sweep of the same configuration), resume (insist) or fresh. `workers`: run the
    trials on that many local worker processes. `register`: the winner becomes a new version of
    that registered model. `reporter`: a harness.progress.NullReporter-like object to watch it."""
    if resume not in MODES:
        raise HarnessError(f"resume: {resume!r} is not one of {', '.join(MODES)}")
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()}  # data=Path(...)
    cfg = load(config, method, settings)
    how = Launch(resume=resume == "resume", fresh=resume == "fresh", workers=workers, register=register)
    return launch(cfg, tracking_uri, how, reporter)


def compare(*, experiment: str | None = None, tracking_uri: str | None = None, repeats: int = 0) -> Comparison:
    """Compare the latest sweep of each method in `experiment` (default: that of the newest sweep):
    test accuracy with 95% intervals, McNemar's test, and `repeats` retrainings with other seeds;
    logged as a comparison run, as `harness compare` does."""
    return run_compare(tracking_uri, experiment, repeats)


def predict(photos: list[str | Path], *, run: str | None = None, model: str | None = None,
            tracking_uri: str | None = None, out: str | Path | None = None) -> Predictions:
    """Each photo's most probable class with a sweep's winner (`run`: its parent or trial run id;
    default: the latest sweep) or any MLflow model URI (`model`), as `harness predict` does;
    `out` also writes every class's probability to a CSV file."""
    return _predict([str(p) for p in photos], run, tracking_uri, model, Path(out) if out else None)
