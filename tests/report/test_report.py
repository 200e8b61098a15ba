"""`harness report` after tiny sweeps of both methods on a synthetic 3-class study: the HTML parses,
holds every section with its images inline and nothing from a network, its numbers are MLflow's
(read here with MlflowClient, not harness's reading code), its importances are Optuna's on exactly
the sweep's trials, and the report is an artifact of the comparison run. Then the cases a report
must survive: one method, one trial, hyperband, a missing data folder, a bad experiment name."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import one_error_line, tiny_sweep_args
from harness.cli import app

# Slow step: its own three-class study with seed repeats (the default suite's `harness demo` test
# checks a demo's report lands in MLflow); the default suite is at its 5-minute limit.
pytestmark = pytest.mark.slow
runner = CliRunner()
METHODS = ("feature-extraction", "fine-tune")
SHORT = {"feature-extraction": "fe", "fine-tune": "ft"}
LABEL = {"feature-extraction": "feature extraction", "fine-tune": "fine-tuning"}
SECTIONS = {"answer": "The answer", "curves": "The winners' training curves", "search": "The search",
            "importance": "Hyperparameter importance", "mistakes": "Where the models go wrong",
            "provenance": "What was run"}


class Page(HTMLParser):
    """What a test needs from the report: sections with their headings and images, every URL-bearing
    attribute, and each table's rows (the row's data-* attributes, its cells' texts)."""

    def __init__(self):
        super().__init__()
        self.sections: dict[str, dict] = {}
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: list[str] = []
        self.tables: dict[str, list[tuple[dict, list[str]]]] = {}
        self._section = self._table = self._cell = None
        self._heading = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.urls += [(tag, k, v) for k, v in attrs.items() if k in ("src", "href", "action", "srcset") and v]
        if tag == "section":
            self._section = self.sections.setdefault(attrs["id"], {"heading": "", "images": []})
        elif tag == "h2":
            self._heading = True
        elif tag == "img" and self._section is not None:
            self._section["images"].append(attrs["src"])
        elif tag == "table":
            self._table = self.tables.setdefault(attrs["id"], [])
        elif tag == "tr" and self._table is not None:
            self._table.append(({k[5:]: v for k, v in attrs.items() if k.startswith("data-")}, []))
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "h2":
            self._heading = False
        elif tag in ("td", "th") and self._cell is not None:
            self._table[-1][1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "section":
            self._section = None

    def handle_data(self, data):
        if self._heading and self._section is not None:
            self._section["heading"] += data
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Both methods swept (4 trials each) on 3 synthetic classes, compared (each winner retrained
    with 2 more seeds), then reported."""
    from mlflow import MlflowClient

    from harness.data._folders import write_synthetic

    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(root / "cache"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        data = write_synthetic(root / "three", per_class=6, size=40, classes=3)
        uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
        for method in METHODS:
            swept = runner.invoke(app, tiny_sweep_args(method, data, uri, "--max-trials", "4"))
            assert swept.exit_code == 0, swept.output
        compared = runner.invoke(app, ["compare", "--tracking-uri", uri, "--repeats", "2"])
        assert compared.exit_code == 0, compared.output
        reported = runner.invoke(app, ["report", "--out", str(root / "out"), "--tracking-uri", uri])
    client = MlflowClient(tracking_uri=uri)
    page = Page()
    page.feed((root / "out" / "report.html").read_text(encoding="utf-8"))
    return {"client": client, "uri": uri, "out": root / "out", "result": reported, "page": page, "root": root}


def _sweeps(client, experiment="three"):
    exp = client.get_experiment_by_name(experiment)
    parents = client.search_runs([exp.experiment_id], "tags.sweep = 'true'")
    return exp, {p.data.tags["method"]: p for p in parents}


def _trials(client, exp, parent):
    return client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
                              order_by=["attributes.start_time ASC"])


def _comparison(client, exp):
    (comparison,) = client.search_runs([exp.experiment_id], "tags.kind = 'comparison'")
    return comparison


def _rows(page, table_id) -> dict[str, list[str]]:
    """A table's body rows by their first cell."""
    return {cells[0]: cells[1:] for _, cells in page.tables[table_id][1:]}


def test_the_cli_writes_both_files_and_says_where(study):
    result = study["result"]
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert str(study["out"] / "report.html") in text and str(study["out"] / "report.md") in text
    exp, _ = _sweeps(study["client"])
    assert f"logged to MLflow run {_comparison(study['client'], exp).info.run_id} (kind=comparison)" in text


def test_every_section_is_there_with_its_images_inline_and_nothing_from_a_network(study):
    page = study["page"]
    assert {k: v["heading"] for k, v in page.sections.items()} == SECTIONS
    for name, section in page.sections.items():
        if name != "provenance":  # the provenance is tables and the sweep files
            assert section["images"], name
    images = [src for tag, attr, src in page.urls if tag == "img"]
    assert len(images) >= 11  # answer, 2 curves, search, 2 importances, 2 slices, 2 confusion, recall
    for src in images:
        assert src.startswith("data:image/png;base64,"), src[:60]
        assert base64.b64decode(src.partition(",")[2]).startswith(b"\x89PNG\r\n\x1a\n")
    # the only URLs are the images' own data and the table of contents' in-page links
    assert all(src.startswith(("data:", "#")) for _, _, src in page.urls), page.urls
    assert "link" not in page.tags and "iframe" not in page.tags
    assert not re.search(r"https?://", (study["out"] / "report.html").read_text())


def test_the_answer_and_the_paired_test_are_mlflows_numbers(study):
    client, page = study["client"], study["page"]
    exp, sweeps = _sweeps(client)
    metrics = _comparison(client, exp).data.metrics
    answer = _rows(page, "winners")
    for i, method in enumerate(METHODS):
        best = client.get_run(sweeps[method].data.tags["best_run_id"])
        short = SHORT[method]
        assert answer["its run"][i] == best.info.run_id
        assert answer["validation accuracy (selects)"][i] == f"{best.data.metrics['best_val_accuracy']:.3f}"
        assert answer["test accuracy"][i] == f"{best.data.metrics['test_accuracy']:.3f}"
        assert answer["95% Wilson interval"][i] == f"[{metrics[short + '_ci_low']:.3f}, {metrics[short + '_ci_high']:.3f}]"
        seeds = f"{metrics[short + '_repeat_mean']:.3f} ± {metrics[short + '_repeat_sd']:.3f} (2)"
        assert answer["retrained with other seeds: test mean ± sd (K)"][i] == seeds
    tutorial = [row for row in answer if row.startswith("the tutorial's test accuracy")]
    assert answer[tutorial[0]] == ["0.892", "0.920"]
    paired = _rows(page, "paired")
    assert paired["McNemar's exact p"] == [f"{metrics['mcnemar_p']:.3g}"]
    assert paired["difference in test accuracy (fine-tuning − feature extraction)"] == [f"{metrics['difference']:+.3f}"]


def test_every_trial_is_in_the_table_with_its_mlflow_numbers(study):
    client, page = study["client"], study["page"]
    exp, sweeps = _sweeps(client)
    header = page.tables["trials"][0][1]
    rows = {data["run-id"]: dict(zip(header, cells)) for data, cells in page.tables["trials"][1:]}
    runs = [t for method in METHODS for t in _trials(client, exp, sweeps[method])]
    assert len(runs) == 8 and set(rows) == {t.info.run_id for t in runs}
    for trial in runs:
        shown, m = rows[trial.info.run_id], trial.data.metrics
        assert shown["validation accuracy"] == f"{m['best_val_accuracy']:.3f}"
        assert shown["test accuracy"] == f"{m['test_accuracy']:.3f}"
        assert shown["best epoch"] == str(int(m["best_epoch"]) + 1)
        assert shown["units"] == trial.data.params["units"]
    assert 'class="sortable"' in (study["out"] / "report.html").read_text()


def _optuna_importances(client, exp, parent):
    """Optuna's evaluators, called here on a study built from MlflowClient's view of the trials."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    config = json.load(open(client.download_artifacts(parent.info.run_id, "sweep_config.json")))
    trials = [t for t in _trials(client, exp, parent) if t.info.status == "FINISHED"]
    names = ["units", "dropout", "learning_rate"] + (["fine_tune_learning_rate"]
                                                      if parent.data.tags["method"] == "fine-tune" else [])
    dists = {}
    for name in names:
        spec, seen = config["space"][name], [float(t.data.params[name]) for t in trials]
        dists[name] = (CategoricalDistribution(tuple(spec["values"])) if "values" in spec else
                       FloatDistribution(min(spec["min"], *seen), max(spec["max"], *seen), log=spec["log"]))
    varied = [n for n in names if len({t.data.params[n] for t in trials}) > 1]
    study = optuna.create_study(direction="maximize")
    for t in trials:
        params = {n: int(t.data.params[n]) if n == "units" else float(t.data.params[n]) for n in varied}
        study.add_trial(optuna.trial.create_trial(params=params, distributions={n: dists[n] for n in varied},
                                                  value=t.data.metrics["best_val_accuracy"]))
    assert len(study.trials) == len(trials) == 4
    return {"fANOVA": optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), params=varied),
            "PED-ANOVA": optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), params=varied)}


def test_importances_are_optunas_on_exactly_the_sweeps_trials(study):
    client, page = study["client"], study["page"]
    exp, sweeps = _sweeps(client)
    for method in METHODS:
        expected = _optuna_importances(client, exp, sweeps[method])
        header = page.tables[f"importance-{method}"][0][1]
        shown = {data["param"]: dict(zip(header[1:], cells[1:])) for data, cells in page.tables[f"importance-{method}"][1:]}
        assert set(shown) == set(expected["fANOVA"])
        for evaluator, values in expected.items():
            for param, value in values.items():
                assert shown[param][evaluator] == f"{value:.3f}", (method, evaluator, param)
    text = " ".join((study["out"] / "report.html").read_text().split())
    assert "PED-ANOVA is what optuna.importance.get_param_importances uses by default" in text


def test_mistakes_match_the_winners_predictions(study):
    import csv

    client, page = study["client"], study["page"]
    _, sweeps = _sweeps(client)
    wrong = []
    for method in METHODS:
        path = client.download_artifacts(sweeps[method].data.tags["best_run_id"], "predictions/test_predictions.csv")
        wrong.append({r["path"] for r in csv.DictReader(open(path)) if r["correct"] == "0"})
    both = wrong[0] & wrong[1]
    html = " ".join((study["out"] / "report.html").read_text().split())
    assert f"{len(both)} of 18 test images" in html
    assert html.count('<div class="thumbs">') == (1 if both else 0)
    assert html.count("data:image/png") == len(page.sections["mistakes"]["images"]) + sum(
        len(s["images"]) for k, s in page.sections.items() if k != "mistakes")
    assert len(page.sections["mistakes"]["images"]) == 3 + len(both)  # 2 confusion matrices, recall, thumbnails
    assert set(_rows(page, "recall")) == {"blue", "green", "red"}


def test_the_report_is_an_artifact_of_the_comparison_run(study):
    client, out = study["client"], study["out"]
    exp, _ = _sweeps(client)
    comparison = _comparison(client, exp)
    names = {a.path for a in client.list_artifacts(comparison.info.run_id, "report")}
    assert {"report/report.html", "report/report.md", "report/answer.png", "report/search.png"} <= names
    logged = Path(client.download_artifacts(comparison.info.run_id, "report/report.html")).read_text()
    assert logged == (out / "report.html").read_text()
    assert comparison.data.tags["report"] == "report/report.html"
    assert comparison.info.status == "FINISHED"
    md = (out / "report.md").read_text()
    for title in SECTIONS.values():
        assert f"\n## {title}\n" in md
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (out / image).is_file(), image


def _report(uri, out, *extra):
    result = runner.invoke(app, ["report", "--tracking-uri", uri, "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return " ".join((out / "report.html").read_text().split())


def test_one_method_with_one_trial_and_its_data_gone(study, tmp_path):
    """No comparison (a kind=report run instead), no importance, no thumbnails: each said, no traceback."""
    data = shutil.copytree(study["root"] / "three", tmp_path / "solo")
    swept = runner.invoke(app, tiny_sweep_args("fine-tune", data, study["uri"], "--max-trials", "1"))
    assert swept.exit_code == 0, swept.output
    shutil.rmtree(data)
    html = _report(study["uri"], tmp_path / "out", "--experiment", "solo")
    assert "the comparison needs both methods" in html
    assert "needs at least 2 completed trials; this sweep has 1" in html
    assert "cannot check the data folder now" in html
    exp, sweeps = _sweeps(study["client"], "solo")
    (run,) = study["client"].search_runs([exp.experiment_id], "tags.kind = 'report'")
    assert run.info.status == "FINISHED" and run.data.tags["fine_tune_run"] == sweeps["fine-tune"].info.run_id
    assert "report/report.md" in {a.path for a in study["client"].list_artifacts(run.info.run_id, "report")}


def test_a_hyperband_sweep_says_which_trials_it_compares(study, tmp_path):
    data = shutil.copytree(study["root"] / "three", tmp_path / "bands")
    swept = runner.invoke(app, tiny_sweep_args("feature-extraction", data, study["uri"], "--tuner", "hyperband",
                                               "--max-trials", "1", "--epochs", "3"))
    assert swept.exit_code == 0, swept.output
    html = _report(study["uri"], tmp_path / "out", "--experiment", "bands")
    assert "trained for different budgets (epochs 1, 3)" in html
    assert "budget (epochs)" in html
    assert '<div class="thumbs">' in html and " · true: " in html  # the one winner's mistakes, from the folder


def test_sweeps_given_by_run_id(study, tmp_path):
    client = study["client"]
    exp, sweeps = _sweeps(client)
    fe = sweeps["feature-extraction"].info.run_id
    html = _report(study["uri"], tmp_path / "out", "--sweep", fe)
    assert "Only feature extraction was swept" in html
    (run,) = client.search_runs([exp.experiment_id], "tags.kind = 'report'")
    assert run.info.status == "FINISHED" and run.data.tags["feature_extraction_run"] == fe
    trial = _trials(client, exp, sweeps["fine-tune"])[0].info.run_id
    one_error_line(["report", "--tracking-uri", study["uri"], "--sweep", trial], trial, "not the parent run of a sweep")


def test_a_bad_experiment_is_one_line(study):
    one_error_line(["report", "--tracking-uri", study["uri"], "--experiment", "no-such"], "no-such", "not found")


def test_compare_with_report_writes_it_into_the_comparison_it_just_logged(study, tmp_path):
    """`harness compare --report` (last in this file: it adds a second comparison run)."""
    client = study["client"]
    result = runner.invoke(app, ["compare", "--tracking-uri", study["uri"], "--experiment", "three", "--report"])
    assert result.exit_code == 0, result.output
    exp = client.get_experiment_by_name("three")
    newest = client.search_runs([exp.experiment_id], "tags.kind = 'comparison'",
                                order_by=["attributes.start_time DESC"])[0]
    assert newest.info.run_id in " ".join(result.output.split())
    logged = {a.path for a in client.list_artifacts(newest.info.run_id, "report")}
    assert {"report/report.html", "report/report.md"} <= logged
    assert (tmp_path / "reports" / "three" / "report.html").is_file()  # the default folder, in the working one
