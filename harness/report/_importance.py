"""Hyperparameter importance by Optuna's own evaluators (fANOVA, and PED-ANOVA, Optuna 5's default),
on an in-memory study holding exactly the sweep's comparable trials."""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field

from harness.report._gather import Sweep, Trial
from harness.report._space import Searched

FANOVA, PED_ANOVA = "fANOVA", "PED-ANOVA"
WHY = {
    FANOVA: "fits a random forest to validation accuracy over the whole search space and splits its "
            "variance by hyperparameter (functional ANOVA): which hyperparameter moves the objective most, "
            "anywhere in the space",
    PED_ANOVA: "compares the distribution of each hyperparameter in the best trials (top 10%) with its "
               "distribution in all trials (Parzen estimators): which hyperparameter matters for reaching the "
               "best results; cheap, and meant for few trials",
}


@dataclass
class Importance:
    method: str
    trials: int  # the trials the study holds
    params: tuple[str, ...]  # the hyperparameters assessed
    constant: tuple[str, ...]  # searched, but every trial had the same value
    values: dict[str, dict[str, float]] = field(default_factory=dict)  # evaluator -> param -> importance
    notes: list[str] = field(default_factory=list)


def default_evaluator() -> str:
    """Which evaluator optuna.importance.get_param_importances uses when given none."""
    import optuna

    major = int(optuna.__version__.split(".")[0])
    return PED_ANOVA if major >= 5 and hasattr(optuna.importance, "PedAnovaImportanceEvaluator") else FANOVA


def evaluators() -> dict[str, object]:
    """The evaluators this Optuna has: fANOVA seeded (its forest is random), PED-ANOVA's defaults."""
    from optuna import importance

    found = {FANOVA: importance.FanovaImportanceEvaluator(seed=0)}
    if hasattr(importance, "PedAnovaImportanceEvaluator"):
        found[PED_ANOVA] = importance.PedAnovaImportanceEvaluator()
    return found


def distribution(spec: Searched):
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if spec.categorical:
        return CategoricalDistribution(spec.choices)
    return FloatDistribution(spec.low, spec.high, log=spec.log)


def build_study(trials: tuple[Trial, ...], space: tuple[Searched, ...]):
    """An in-memory study, maximising best_val_accuracy, one completed trial per sweep trial."""
    import optuna

    dists = {s.name: distribution(s) for s in space}
    study = optuna.create_study(direction="maximize")
    for t in trials:
        params = {s.name: s.value(t.params[s.name]) for s in space}
        if any(s.categorical and params[s.name] not in s.choices for s in space):
            continue  # a value the sweep file does not list: not in the distribution
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=t.val))
    return study


def importance(sweep: Sweep) -> Importance:
    trials = tuple(t for t in sweep.comparable if all(s.name in t.params for s in sweep.space))
    varied = tuple(s for s in sweep.space if len({t.params[s.name] for t in trials}) > 1)
    result = Importance(sweep.method, len(trials), tuple(s.name for s in varied),
                        tuple(s.name for s in sweep.space if s not in varied))
    if len(trials) < 2:
        result.notes.append(f"needs at least 2 completed trials; this sweep has {len(trials)}")
        return result
    if not varied:
        result.notes.append("no hyperparameter took more than one value in these trials")
        return result
    with quiet_optuna():
        try:
            study = build_study(trials, varied)
        except Exception as exc:  # said in the report, never a traceback
            result.notes.append(f"Optuna could not hold these trials ({type(exc).__name__}: {exc})")
            return result
        _evaluate(result, study)
    return result


def _evaluate(result: Importance, study) -> None:
    import optuna

    for label, evaluator in evaluators().items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                found = optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                                params=list(result.params))
                result.values[label] = {k: float(v) for k, v in found.items()}
            except Exception as exc:  # any evaluator failure is said in the report, never a traceback
                result.notes.append(f"{label}: Optuna could not evaluate ({type(exc).__name__}: {exc})")
        for message in dict.fromkeys(str(w.message) for w in caught):
            result.notes.append(f"{label}: Optuna warned: {message}")


@contextlib.contextmanager
def quiet_optuna():
    """No "A new study created" lines on the terminal: only the CLI prints."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)
