"""Terminal progress for sweeps (rich): which trial of how many, its epochs, extraction."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.progress import NullReporter


class RichReporter(NullReporter):
    """Two live bars: trials of the sweep, epochs of the current trial; a line per finished trial."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                                 console=self.console, transient=True)
        self.trials = self.epochs = self.extraction = None
        self.worker_rows: dict[str, int] = {}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def warn(self, text):
        self.console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)

    def cache_planned(self, nbytes, free, folder):
        self.console.print(f"[dim]feature cache entry: {nbytes / 1e9:.2f} GB in {escape(folder)} "
                           f"({free / 1e9:.1f} GB free)[/]", soft_wrap=True)

    def extracting(self, split, count):
        self.console.print(f"[dim]extracting backbone features: {split} ({count} images)[/]")
        self._drop(self.extraction)
        self.extraction = self.progress.add_task(f"  {split}", total=count, info="")

    def extracted(self, split, done, total, seconds):
        """`done` of `total` images since this split's extraction (re)started, in `seconds`."""
        rate = done / seconds if seconds > 0 else 0.0
        eta = f", {(total - done) / rate:.0f} s left" if rate and done < total else ""
        self.progress.update(self.extraction, completed=done, total=total, info=f"{rate:.0f} images/s{eta}")
        if done >= total:
            self.console.print(f"[dim]  {split}: {total} images in {seconds:.1f} s ({rate:.0f} images/s)[/]")
            self._drop(self.extraction)
            self.extraction = None

    def _drop(self, task):
        if task is not None:
            self.progress.remove_task(task)

    def sweep_started(self, cfg, name, trials=None):
        """`trials`: how many the tuner plans (hyperband: its iterations' trials), else max_trials."""
        trials = trials or cfg.max_trials
        self.console.print(f"[bold]{name}[/]: {trials} trials, tuner {cfg.tuner}")
        self.trials = self.progress.add_task("trials", total=trials, info="")

    def trial_started(self, number, total, name):
        if self.epochs is not None:
            self.progress.remove_task(self.epochs)
        self.progress.update(self.trials, description=f"trial {number}/{total}", info=name)
        self.epochs = self.progress.add_task("  epochs", total=None, info="")

    def epoch_ended(self, epoch, total, logs):
        info = "  ".join(f"{k}={v:.3f}" for k, v in logs.items())
        self.progress.update(self.epochs, completed=epoch, total=total, info=info)

    def trial_ended(self, record):
        if not self.worker_rows:
            self.progress.advance(self.trials)
        colour = "green" if record.status == "FINISHED" else "red"
        self.console.print(f"[{colour}]{record.status:<8}[/] {record.name}  "
                           f"val_accuracy={record.val_accuracy:.3f}" +
                           ("" if record.test_accuracy != record.test_accuracy else
                            f"  test_accuracy={record.test_accuracy:.3f}"))

    def store_waiting(self, message):
        """The tracking server went away (or came back): the sweep is waiting, not stuck."""
        self.console.print(f"[yellow]{message}[/]")

    def workers_changed(self, workers, done, total):
        """Distributed sweeps: one row per worker (its trial, or idle/done/lost), trials done."""
        self.progress.update(self.trials, description=f"trials {done}/{total}", completed=done, info="")
        for w in workers:
            if w.tuner_id not in self.worker_rows:
                self.worker_rows[w.tuner_id] = self.progress.add_task(f"  {w.tuner_id}", total=None, info="")
            info = f"trial #{int(w.trial_id) + 1}" if w.state == "running" else w.state
            if w.state == "lost" and w.trial_id is not None:
                info = f"lost (trial #{int(w.trial_id) + 1} queued again)"
            self.progress.update(self.worker_rows[w.tuner_id], info=info)
