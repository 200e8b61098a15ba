"""`harness study` on a synthetic 3-class set, end to end through the CLI, and the report it writes.

The study is started as a real process and killed (SIGTERM to its group, as Ctrl-C would) once its
feature-extraction sweep has FINISHED; run again, it goes on without repeating that sweep (checked
with MLflow's client). Its report is then checked: the HTML parses, holds every section with its
images inline and nothing from a network, its numbers are MLflow's (read here with MlflowClient,
not harness's reading code), its importances are Optuna's on exactly the sweep's trials, and it is
an artifact of the comparison run. The cases a report must survive (one method, one trial,
hyperband, a missing data folder, a bad experiment) are in tests/report/test_report.py."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import TINY_FLAGS, finished_sweeps, trials_of
from harness.cli import app

runner = CliRunner()
METHODS = ("feature-extraction", "fine-tune")
SHORT = {"feature-extraction": "fe", "fine-tune": "ft"}
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


def _parents(client, experiment="three"):
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], "tags.sweep = 'true'")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """`harness study --repeats 2` (4 one-epoch trials per method), killed after its first sweep, run again."""
    from mlflow import MlflowClient

    from harness.data._folders import write_synthetic

    root = tmp_path_factory.mktemp("study")
    data = write_synthetic(root / "three", per_class=6, size=40, classes=3)
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    args = ["study", "--data", str(data), "--tracking-uri", uri, *TINY_FLAGS, "--max-trials", "4", "--epochs", "1",
            "--repeats", "2", "--out", str(root / "out")]
    env = {**os.environ, "HARNESS_CACHE_DIR": str(root / "cache")}
    env.pop("MLFLOW_TRACKING_URI", None)
    client = MlflowClient(tracking_uri=uri)
    log = root / "first.log"  # a file, not a pipe: a full pipe would stall the study
    first = subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=root, env=env,
                             stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None:
        if any(p.data.tags.get("method") == "feature-extraction" and p.info.status == "FINISHED"
               for p in _parents(client)):
            break
        time.sleep(0.5)
    assert first.poll() is None, log.read_text()[-2000:]
    os.killpg(first.pid, signal.SIGTERM)  # as Ctrl-C in its terminal would: the fine-tune sweep stops
    first.wait(timeout=120)
    (fe_before,) = [p for p in _parents(client) if p.data.tags["method"] == "feature-extraction"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(root / "cache"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        again = runner.invoke(app, args)
    page = Page()
    if (root / "out" / "report.html").is_file():
        page.feed((root / "out" / "report.html").read_text(encoding="utf-8"))
    return {"client": client, "uri": uri, "out": root / "out", "result": again, "page": page,
            "fe_before": fe_before.info.run_id}


def test_a_killed_study_resumes_without_repeating_its_finished_sweep(study):
    client, again = study["client"], study["result"]
    assert again.exit_code == 0, again.output
    fe_id = study["fe_before"]
    assert f"feature-extraction: finished sweep {fe_id}" in " ".join(again.output.split())
    parents = _parents(client)
    fe = [p for p in parents if p.data.tags["method"] == "feature-extraction"]
    ft_done = [p for p in parents if p.data.tags["method"] == "fine-tune" and p.info.status == "FINISHED"]
    assert [p.info.run_id for p in fe] == [fe_id] and len(ft_done) == 1
    assert all(p.info.status == "FINISHED" for p in parents)  # nothing left RUNNING by the kill
    comparison = _comparison(client, client.get_experiment_by_name("three"))
    assert comparison.data.tags["feature_extraction_run"] == fe_id
    assert comparison.data.tags["fine_tune_run"] == ft_done[0].info.run_id


def _sweeps(client, experiment="three"):
    return finished_sweeps(client, experiment)


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
    runs = [t for method in METHODS for t in trials_of(client, exp, sweeps[method])]
    assert set(rows) == {t.info.run_id for t in runs}  # a trial the kill stopped is listed too
    finished = [t for t in runs if t.info.status == "FINISHED"]
    assert len(finished) == 8
    for trial in finished:
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
    trials = [t for t in trials_of(client, exp, parent) if t.info.status == "FINISHED"]
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




def test_each_sweep_records_its_software_and_machine_and_the_report_shows_them(study):
    from importlib import metadata

    client, page = study["client"], study["page"]
    _, sweeps = _sweeps(client)
    software = {cells[0]: cells[1:] for _, cells in page.tables["software"][1:]}
    for i, method in enumerate(METHODS):
        tags = sweeps[method].data.tags
        versions, machine = json.loads(tags["versions"]), json.loads(tags["machine"])
        assert versions["tensorflow"] == metadata.version("tensorflow")
        assert versions["keras-tuner"] == metadata.version("keras-tuner")
        assert machine["CPU cores"] == str(os.cpu_count())
        for name in ("python", "harness", "tensorflow", "keras", "keras-tuner", "mlflow"):
            assert software[name][i] == versions[name], (method, name)
    assert page.tables["software"][0][1][1:] == ["feature extraction sweep", "fine-tuning sweep", "this report"]
    assert {cells[0] for _, cells in page.tables["machine"][1:]} >= {"platform", "CPU cores", "host"}
