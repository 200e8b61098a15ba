"""The search sections: best-so-far validation accuracy per method, every trial in a sortable
table, and hyperparameter importance by Optuna's evaluators with the slice plots."""

from __future__ import annotations

from harness.report import _figures as figures
from harness.report._document import Cell, Figure, Para, Sub, row, table
from harness.report._gather import LABEL, Study, Sweep, Trial
from harness.report._importance import PED_ANOVA, WHY, Importance, default_evaluator, evaluators

FEW = 5  # fewer trials than this: a search curve and importances say little


def search(study: Study) -> tuple:
    blocks = []
    for method, sweep in study.sweeps.items():
        blocks += _search_notes(method, sweep)
    series = {LABEL[m]: [(t.number, _since(s, t), t.val) for t in s.comparable] for m, s in study.sweeps.items()}
    blocks.append(Figure("search.png", figures.search(series),
                         "best validation accuracy so far against trial number and against wall time; "
                         "dots: each trial's own"))
    blocks.append(_trials_table(study))
    return tuple(blocks)


def _since(sweep: Sweep, trial: Trial) -> float:
    return ((trial.end_time or trial.start_time) - sweep.parent.start_time) / 1000.0


def _search_notes(method: str, sweep: Sweep) -> list:
    notes = []
    if sweep.hyperband:
        budgets = sorted({t.budget for t in sweep.trials if t.budget is not None})
        notes.append(Para(f"{LABEL[method]}: a hyperband sweep, its trials trained for different budgets (epochs "
                          f"{', '.join(map(str, budgets))}), so their validation accuracies are not one objective; "
                          f"the curve and the importances use the {len(sweep.comparable)} trials trained to the "
                          f"full budget ({budgets[-1]} epochs); the table lists every trial with its budget.",
                          note=True))
    failed = [t for t in sweep.trials if not t.complete]
    if failed:
        notes.append(Para(f"{LABEL[method]}: {len(failed)} trial(s) did not finish "
                          f"({', '.join(sorted({t.status for t in failed}))}); they have no numbers.", note=True))
    if len(sweep.comparable) < FEW:
        notes.append(Para(f"{LABEL[method]}: only {len(sweep.comparable)} comparable trial(s): too few for the "
                          "search curve to show a trend.", note=True))
    return notes


def _trials_table(study: Study):
    names = list(dict.fromkeys(s.name for sweep in study.sweeps.values() for s in sweep.space))
    budgets = any(s.hyperband for s in study.sweeps.values())
    header = ["method", "trial", "status", *names, *(["budget (epochs)"] if budgets else []), "best epoch",
              "validation accuracy", "test accuracy", "seconds", "run"]
    rows = []
    for method, sweep in study.sweeps.items():
        best = sweep.winner.best_run_id
        for t in sweep.trials:
            params = [_param(t.params.get(n)) for n in names]
            epoch = t.best_epoch + 1 if t.best_epoch == t.best_epoch else None
            rows.append(row(LABEL[method], Cell(f"#{t.number}" + (" ★" if t.run_id == best else ""), t.number),
                            t.status, *params, *([t.budget] if budgets else []),
                            int(epoch) if epoch is not None else None, t.val, t.test, Cell(f"{t.seconds:.1f}", t.seconds),
                            t.run_id, data={"run-id": t.run_id, "method": method}))
    return table("trials", header, rows, "every trial of the sweeps (click a column to sort); ★ the winner; best "
                 "epoch counts from 1 across both fine-tuning phases", sortable=True)


def _param(text: str | None) -> Cell:
    if text is None:
        return Cell("-", None)
    try:
        number = float(text)
    except ValueError:
        return Cell(text, text)
    return Cell(str(int(number)) if number.is_integer() else f"{number:.3g}", number)


def importance(study: Study, found: dict[str, Importance]) -> tuple:
    import optuna

    default = default_evaluator()
    have = list(evaluators())
    blocks = [Para(f"Computed by Optuna {optuna.__version__}'s own evaluators on an in-memory study holding each "
                   "sweep's trials (objective: best validation accuracy). " +
                   " ".join(f"{label} {WHY[label]}." for label in have) +
                   f" {default} is what optuna.importance.get_param_importances uses by default in this version; "
                   "both are shown because with few trials they can disagree, and agreement is the signal.")]
    if PED_ANOVA not in have:
        blocks.append(Para(f"PED-ANOVA is not in Optuna {optuna.__version__} (it came with 3.6): fANOVA only.",
                           note=True))
    for method, result in found.items():
        blocks += _importance_blocks(study.sweeps[method], result, have)
    return tuple(blocks)


def _importance_blocks(sweep: Sweep, result: Importance, have: list[str]) -> list:
    label = LABEL[sweep.method]
    blocks = [Sub(label), Para(f"{result.trials} trial(s); assessed: {', '.join(result.params) or 'none'}.")]
    if result.constant and result.trials >= 2:
        blocks.append(Para(f"{label}: left out, as every trial had the same value: {', '.join(result.constant)}.", note=True))
    blocks += [Para(f"{label}: {note}", note=True) for note in result.notes]
    if not result.values:
        return blocks
    rows = [row(p, *(result.values.get(e, {}).get(p) for e in have), data={"param": p}) for p in result.params]
    blocks.append(table(f"importance-{sweep.method}", ["hyperparameter", *have], rows,
                        f"{label}: importance of each hyperparameter (each evaluator's values sum to 1)",
                        sortable=True))
    blocks.append(Figure(f"importance-{sweep.method}.png", figures.importances(result.values, label),
                         f"{label}: hyperparameter importance"))
    space = [s for s in sweep.space if s.name in result.params]
    trials = [t for t in sweep.comparable if all(s.name in t.params for s in space)]
    points = [{s.name: s.value(t.params[s.name]) for s in space} for t in trials]
    blocks.append(Figure(f"slices-{sweep.method}.png", figures.slices(space, points, [t.val for t in trials],
                                                                     f"{label}: objective against each hyperparameter"),
                         f"{label}: slice plots, best validation accuracy against each hyperparameter"))
    return blocks
