"""The study report: the sweeps of an experiment read back from MLflow into one self-contained HTML
file and a Markdown file with PNGs, logged back to MLflow (imports: study and everything below)."""

from harness.report._build import ReportResult, build_report

__all__ = ["ReportResult", "build_report"]
