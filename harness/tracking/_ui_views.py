"""The MLflow UI as harness opens it: links into the model-training view, and saved views that
show the sweep's metrics and hyperparameters as columns and charts without a click.

MLflow 3.17's UI opens an experiment in its GenAI view unless the URL says
`workflowType=machine_learning`, and its runs table starts with no metric or param columns.
What it offers instead of per-user settings is the saved view: an experiment tag
`mlflow.sharedViewState.<id>` holding `{name, createdAt, updatedAt, state}`, where `state` is the
runs page's JSON state (columns, sort, filter, charts); `?viewStateShareKey=<id>` opens it and the
page's "Views" menu lists it. harness writes such views at the end of each sweep and when
`harness ui` starts (MLflow's UI caps an experiment at 40 saved views: harness keeps three).
"""

from __future__ import annotations

from harness.tracking import experiments, reading

import json
import time
from dataclasses import dataclass

VIEW_TAG_PREFIX = "mlflow.sharedViewState."
WORKFLOW = "workflowType=machine_learning"
RUNS_VIEW = "harness-runs"
OBJECTIVE = "best_val_accuracy"
# The objective (validation accuracy of the epoch each trial kept), test accuracy of that model,
# the last epoch's validation accuracy, and the sweep's best test accuracy on its parent run.
METRIC_COLUMNS = (OBJECTIVE, "test_accuracy", "val_accuracy", "best_test_accuracy")
SWEEP_FILTER = "tags.sweep = 'true'"
TRIAL_BOOKKEEPING = ("phase2_first_step",)  # a trial param that is not a hyperparameter


@dataclass(frozen=True)
class Link:
    label: str
    url: str


def column(group: str, key: str) -> str:
    """A runs-table column id as the UI writes it, e.g. metrics.`val_accuracy`."""
    return f"{group}.`{key}`"


def columns(hyperparameters: list[str]) -> list[str]:
    return ([column("metrics", m) for m in METRIC_COLUMNS] + [column("params", h) for h in hyperparameters]
            + [column("attributes", "Models")])


def runs_state(hyperparameters: list[str]) -> dict:
    """Every sweep (its trials nested under it) with the key metrics and hyperparameters as columns."""
    return {"selectedColumns": columns(hyperparameters)}


def trials_state(parent_id: str, hyperparameters: list[str], section_id: str) -> dict:
    """One sweep's trials, best first, with charts of each hyperparameter against the objective."""
    charts = [{"uuid": f"{section_id}-parallel", "type": "PARALLEL", "metricSectionId": section_id,
               "runsCountToCompare": 100, "deleted": False, "isGenerated": False, "showAllRuns": True,
               "selectedParams": hyperparameters, "selectedMetrics": [OBJECTIVE]}]
    charts += [{"uuid": f"{section_id}-{h}", "type": "SCATTER", "metricSectionId": section_id,
                "runsCountToCompare": 100, "deleted": False, "isGenerated": False,
                "xaxis": {"key": h, "type": "PARAM"}, "yaxis": {"key": OBJECTIVE, "type": "METRIC"}}
               for h in hyperparameters]
    return {"searchFilter": f"tags.`mlflow.parentRunId` = '{parent_id}'",
            "orderByKey": column("metrics", OBJECTIVE), "orderByAsc": False,
            "selectedColumns": columns(hyperparameters), "runsHiddenMode": "SHOW_ALL",
            "compareRunCharts": charts,
            "compareRunSections": [{"uuid": section_id, "name": f"Hyperparameters vs {OBJECTIVE}",
                                    "display": True, "isReordered": False, "deleted": False,
                                    "isGenerated": False}]}


def envelope(name: str, state: dict) -> str:
    """A saved view as the UI stores it in an experiment tag."""
    now = int(time.time() * 1000)
    return json.dumps({"name": name, "createdAt": now, "updatedAt": now, "state": json.dumps(state)})


def experiment_url(base: str, experiment_id: str, view: str | None = None, charts: bool = False) -> str:
    query = WORKFLOW + (f"&viewStateShareKey={view}" if view else "") + ("&compareRunsMode=CHART" if charts else "")
    return f"{base}/#/experiments/{experiment_id}/runs?{query}"


def hyperparameters_of(tracker, sweep) -> list[str]:
    """A sweep's hyperparameters: its parent's best.<name> tags once it has finished, else the
    params its trials have and the parent has not (the parent logs only fixed settings)."""
    names = [k[len("best."):] for k in sweep.tags if k.startswith("best.")]
    if not names:
        children = reading.children(tracker, sweep.run_id, sweep.experiment_id)
        trial_params = children[-1].params if children else {}
        names = [k for k in trial_params if k not in sweep.params and k not in TRIAL_BOOKKEEPING]
    return sorted(names)


def write_views(tracker, experiment_id: str) -> list[tuple[str, str, bool]]:
    """Save harness's views in one experiment: every sweep with its trials (table), and the
    newest sweep of each method (its trials, table and charts). Returns (label, view id, charts)."""
    sweeps = reading.search(tracker, [experiment_id], SWEEP_FILTER)  # newest first
    if not sweeps:
        return []
    hps = {s.run_id: hyperparameters_of(tracker, s) for s in sweeps}
    tags = {VIEW_TAG_PREFIX + RUNS_VIEW: envelope("harness: sweeps and trials",
                                                  runs_state(sorted({h for v in hps.values() for h in v})))}
    views = [("sweeps and trials", RUNS_VIEW, False)]
    newest = {}
    for sweep in sweeps:
        newest.setdefault(sweep.tags.get("method", "sweep"), sweep)
    for method, sweep in sorted(newest.items()):
        key = f"harness-{method}"
        tags[VIEW_TAG_PREFIX + key] = envelope(f"harness: newest {method} sweep",
                                               trials_state(sweep.run_id, hps[sweep.run_id], key))
        views.append((f"{sweep.name}: trials, hyperparameters vs {OBJECTIVE}", key, True))
    experiments.set_tags(tracker, experiment_id, tags)
    return views


def prepare_views(tracker, base: str) -> list[Link]:
    """Write the views into every experiment that holds sweeps; links (at `base`) that open them."""
    links = []
    experiments = dict.fromkeys(s.experiment_id for s in reading.search(tracker, None, SWEEP_FILTER))
    for experiment_id in experiments:
        name = tracker.client.get_experiment(experiment_id).name
        for label, key, charts in write_views(tracker, experiment_id):
            links.append(Link(f"{name}: {label}", experiment_url(base, experiment_id, key, charts)))
    return links
