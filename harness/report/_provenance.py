"""What was run: the data (fingerprint, class counts per split, `data check`'s findings), the
sweep files, the software and machine, wall times and feature-cache hits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.data import DataReport, check_folder, scan
from harness.errors import HarnessError
from harness.report._document import Cell, Code, Para, Sub, cell, row, table
from harness.report._gather import LABEL, Study
from harness.tracking.environment import machine, recorded, versions


@dataclass(frozen=True)
class DataState:
    """A sweep's data folder as it is now: its check, its fingerprint, or why neither could be had."""

    root: Path
    report: DataReport | None
    fingerprint: str | None
    problem: str = ""

    @property
    def train_images(self) -> int | None:
        if self.report is None or "train" not in self.report.splits:
            return None
        return sum(n for (split, _), n in self.report.counts.items() if split == "train")


def data_state(root: str) -> DataState:
    path = Path(root)
    try:
        return DataState(path, check_folder(path), scan(path).fingerprint)
    except (HarnessError, OSError) as exc:
        return DataState(path, None, None, str(exc))


def provenance(study: Study, data: dict[str, DataState]) -> tuple:
    blocks = [Sub("data")]
    rows = []
    for method, sweep in study.sweeps.items():
        state = data[sweep.parent.tags.get("data_dir", "")]
        logged = sweep.parent.tags.get("data_fingerprint", "-")
        now = state.fingerprint or "-"
        rows.append(row(LABEL[method], str(state.root), logged, now,
                        "same" if now == logged else ("folder unreadable" if state.fingerprint is None else "CHANGED")))
    blocks.append(table("data", ["sweep", "data folder", "fingerprint at the sweep", "fingerprint now", ""], rows))
    for i, state in enumerate(data.values()):
        blocks += _data_check(state, f"counts-{i}")
    blocks += [Sub("sweeps"), _sweeps_table(study)]
    for method, sweep in study.sweeps.items():
        text = json.dumps(sweep.config, indent=1) if sweep.config is not None else "(sweep_config.json is missing)"
        blocks.append(Code(f"{LABEL[method]}: the sweep file as resolved (sweep_config.json of run "
                           f"{sweep.parent.run_id})", text))
    blocks += [Sub("software and machine"), *_environment(study, "software", "versions", versions()),
               *_environment(study, "machine", "machine", machine()),
               Para(f"MLflow store: {study.store}; experiment {study.experiment!r} (id {study.experiment_id}).")]
    return tuple(blocks)


def _data_check(state: DataState, id: str) -> list:
    if state.report is None:
        return [Para(f"{state.root}: cannot check the data folder now ({state.problem}): no class counts or "
                     "data check findings.", note=True)]
    report = state.report
    rows = [row(c, *(report.counts.get((s, c), 0) for s in report.splits), data={"class": c}) for c in report.classes]
    found = [f"test leakage (the same image in two splits): {len(report.leaks)}",
             f"conflicting labels (the same image under two classes): {len(report.conflicts)}",
             f"repeated within one class of one split: {len(report.repeats)}",
             "class imbalance (largest / smallest): " + ", ".join(f"{s} {report.imbalance(s):.2f}"
                                                                  for s in report.splits)]
    return [table(id, ["class", *report.splits], rows,
                  f"images per class and split in {state.root}"),
            Para("`harness data check` findings: " + "; ".join(found) + ".", note=report.problems)]


def _sweeps_table(study: Study):
    rows = []
    for method, sweep in study.sweeps.items():
        p = sweep.parent
        done = [t for t in sweep.trials if t.complete]
        per = sum(t.seconds for t in done) / len(done) if done else None
        rows.append(row(LABEL[method], p.run_id, p.name, p.tags.get("tuner", "-"), f"{len(done)} / {len(sweep.trials)}",
                        _seconds(p.metrics.get("sweep_seconds", p.seconds)), _seconds(per),
                        p.tags.get("feature_cache", "-"), _seconds(p.metrics.get("extraction_seconds")), p.tags.get("weights", "-"),
                        p.tags.get("precision", "-"), p.tags.get("seed", "-")))
    return table("sweeps", ["sweep", "parent run", "name", "tuner", "trials finished", "wall time (s)",
                            "mean s per trial", "feature cache", "extraction (s)", "weights", "precision", "seed"], rows)


def _seconds(value: float | None) -> Cell:
    return cell(value, digits=1)


def _environment(study: Study, id: str, tag: str, now: dict[str, str]) -> list:
    """What each sweep recorded (its parent run's tag) beside what wrote this report."""
    logged = {method: recorded(sweep.parent.tags, tag) for method, sweep in study.sweeps.items()}
    names = list(dict.fromkeys([*now, *(k for v in logged.values() if v for k in v)]))
    rows = [row(name, *((v or {}).get(name, "-") for v in logged.values()), now.get(name, "-")) for name in names]
    header = ["", *(f"{LABEL[m]} sweep" for m in logged), "this report"]
    blocks = [table(id, header, rows)]
    if missing := [LABEL[m] for m, v in logged.items() if v is None]:
        which = " and ".join(missing) + (" sweeps do" if len(missing) > 1 else " sweep does")
        blocks.append(Para(f"The {which} not record its {tag} (made before harness recorded it): only this "
                           "report's are shown.", note=True))
    return blocks
