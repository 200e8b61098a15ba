"""What the CLI shows at the end of a sweep or a comparison: rich renderables."""

from __future__ import annotations

from rich.table import Table

from harness.study._compare import Comparison, rows, verdict
from harness.study._sweep import SweepResult


SHORT = {"learning_rate": "lr", "fine_tune_learning_rate": "ft_lr"}


def _fmt(value: float) -> str:
    return "-" if value != value else f"{value:.3f}"  # NaN prints as '-'


def sweep_table(result: SweepResult) -> Table:
    best_id = result.best.trial_id if result.best else None
    table = Table(title=f"{result.method} sweep · experiment {result.experiment!r} · "
                        f"{result.seconds:.0f}s · features cache {'hit' if result.cache_hit else 'miss'}")
    for col in ("trial", "status", "hyperparameters", "best epoch", "val_acc", "test_acc"):
        table.add_column(col, justify="right" if col.endswith("acc") or col == "best epoch" else "left")
    for r in result.trials:
        hps = " ".join(f"{SHORT.get(k, k)}={v:.2g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in r.hyperparameters.items())
        rounds = r.name.partition(" · ")[2]  # hyperband: the trial's epochs, and the trial it continues
        hps += f" · {rounds}" if rounds else ""
        marker = " ★" if r.trial_id == best_id else ""
        table.add_row(f"#{int(r.trial_id) + 1}{marker}", r.status, hps, str(r.best_epoch + 1),
                      _fmt(r.val_accuracy), _fmt(r.test_accuracy))
    table.caption = ("★ best by validation accuracy (test accuracy is reported, never used to choose); "
                     f"parent run {result.parent_run_id}")
    if result.model_uri:
        table.caption += f"\nwinner {result.model_uri}"
    if result.registered_model:
        table.caption += f", registered as {result.registered_model}"
    return table


def result_view(result):
    """A finished sweep's table, or one line for a worker's share of a sweep."""
    if isinstance(result, SweepResult):
        return sweep_table(result)
    return f"worker {result.tuner_id}: {result.trials} trials of parent run {result.parent_run_id}"


def comparison_table(comp: Comparison) -> Table:
    table = Table(title=f"feature extraction vs fine-tuning · experiment {comp.experiment!r}")
    for col in ("", "feature extraction", "fine-tuning"):
        table.add_column(col)
    for row in rows(comp):
        table.add_row(*row)
    table.caption = f"{verdict(comp)}\nlogged as run {comp.run_id} (kind=comparison)"
    return table
