"""`harness report`: gather the sweeps, build the sections, write report.html (self-contained) and
report.md with its PNGs, and log both to MLflow under `report/` of the comparison run (or of a
new `kind=report` run when these sweeps were never compared)."""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from harness.report import _html, _markdown
from harness.report._answer import answer, curves
from harness.report._document import Para, Section
from harness.report._gather import LABEL, Study, gather
from harness.report._importance import importance as importance_of
from harness.report._mistakes import mistakes
from harness.report._provenance import data_state, provenance
from harness.report._search import importance, search
from harness.tracking import Tracker, resolve_store
from harness.tracking import runs

ARTIFACT_DIR = "report"
RUN_TAGS = {"feature-extraction": "feature_extraction_run", "fine-tune": "fine_tune_run"}


@dataclass(frozen=True)
class ReportResult:
    """Where the report went: its files, and the MLflow run that holds it as artifacts."""

    html: Path
    markdown: Path
    run_id: str
    run_kind: str  # comparison, or report (a run made for it)
    experiment: str
    notes: tuple[str, ...]  # what the report says it cannot show


def build_report(tracking_uri: str | None = None, experiment: str | None = None, sweeps=(),
                 out: str | Path | None = None, thumbnails: bool = True) -> ReportResult:
    tracker = Tracker(resolve_store(tracking_uri))
    study = gather(tracker, experiment, list(sweeps))
    out = Path(out) if out else Path("reports") / re.sub(r"[^\w.-]+", "_", study.experiment)
    run_id, kind, made = _target_run(tracker, study)
    try:
        sections = build_sections(study, thumbnails)
        intro = _intro(study, run_id, kind)
        title = f"harness report · experiment {study.experiment}"
        html, md = _write(out, title, intro, sections)
        _log(tracker, run_id, out, [html, md, *_pngs(out, sections)])
        if made:
            tracker.client.set_terminated(run_id, "FINISHED")
    except BaseException as exc:
        if made:  # never left RUNNING
            tracker.client.set_terminated(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    notes = tuple(b.text for s in sections for b in s.blocks if isinstance(b, Para) and b.note)
    return ReportResult(html, md, run_id, kind, study.experiment, notes)


def build_sections(study: Study, thumbnails: bool = True) -> list[Section]:
    data = {d: data_state(d) for d in dict.fromkeys(s.parent.tags.get("data_dir", "") for s in study.sweeps.values())}
    first = next(iter(data.values()))
    found = {m: importance_of(s) for m, s in study.sweeps.items()}
    parts = [("answer", "The answer", lambda: answer(study, first.train_images)),
             ("curves", "The winners' training curves", lambda: curves(study)),
             ("search", "The search", lambda: search(study)),
             ("importance", "Hyperparameter importance", lambda: importance(study, found)),
             ("mistakes", "Where the models go wrong", lambda: mistakes(study, thumbnails)),
             ("provenance", "What was run", lambda: provenance(study, data))]
    return [Section(id, title, _guarded(build, title)) for id, title, build in parts]


def _guarded(build, title: str) -> tuple:
    """A section that cannot be drawn says so and why; the rest of the report still comes."""
    try:
        return build()
    except Exception as exc:
        return (Para(f"This section could not be drawn ({type(exc).__name__}: {exc}).", note=True),)


def _target_run(tracker: Tracker, study: Study) -> tuple[str, str, bool]:
    """(run id, kind, made here): the comparison of these sweeps, else a new kind=report run."""
    if study.comparison is not None:
        return study.comparison.run_id, "comparison", False
    tags = {"kind": "report", **{RUN_TAGS[m]: s.parent.run_id for m, s in study.sweeps.items()}}
    run_id = runs.start(tracker, study.experiment_id, f"report · {datetime.now():%Y-%m-%d %H:%M:%S}", tags)
    return run_id, "report", True


def _intro(study: Study, run_id: str, kind: str) -> list[str]:
    swept = "; ".join(f"{LABEL[m]}: sweep run {s.parent.run_id} ({s.parent.name})" for m, s in study.sweeps.items())
    return [f"Experiment {study.experiment!r} in {study.store}. {swept}.",
            f"Written {datetime.now():%Y-%m-%d %H:%M:%S}; logged to MLflow run {run_id} (kind={kind}) under "
            f"{ARTIFACT_DIR}/. Numbers are read back from MLflow; accuracies to 3 decimals."]


def _write(out: Path, title: str, intro: list[str], sections: list[Section]) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "thumbs", ignore_errors=True)  # an earlier report's thumbnails are not this one's
    text, files = _markdown.render(title, intro, sections)
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    md = out / "report.md"
    md.write_text(text, encoding="utf-8")
    html = out / "report.html"
    html.write_text(_html.render(title, intro, sections), encoding="utf-8")
    return html, md


def _pngs(out: Path, sections: list[Section]) -> list[Path]:
    _, files = _markdown.render("", [], sections)
    return [out / name for name in files]


def _log(tracker: Tracker, run_id: str, out: Path, paths: list[Path]) -> None:
    """Only the report's own files go to MLflow, not whatever else --out holds."""
    with tempfile.TemporaryDirectory() as staging:
        for path in paths:
            dest = Path(staging) / path.relative_to(out)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        tracker.client.log_artifacts(run_id, staging, ARTIFACT_DIR)
    runs.set_tags(tracker, run_id, {"report": f"{ARTIFACT_DIR}/report.html"})
