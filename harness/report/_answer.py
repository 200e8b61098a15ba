"""The report's first two sections: the answer (each winner's test accuracy with its interval,
the paired test, seed variance, the tutorial's numbers beside them) and the winners' curves."""

from __future__ import annotations

import math

from harness.report import _figures as figures
from harness.report._document import Figure, Para, Sub, row, table
from harness.report._gather import LABEL, Study, Sweep
from harness.study._compare import SHORT

# The seed tutorial (Chollet's Keras transfer-learning chapter): cats vs dogs, 2,000 training photos.
TUTORIAL = {"feature-extraction": 0.892, "fine-tune": 0.920}
TUTORIAL_BACKBONE, TUTORIAL_SIZE, TUTORIAL_TRAIN, TUTORIAL_CLASSES = "vgg16", 150, 2000, 2
TUTORIAL_ROW = "the tutorial's test accuracy (VGG16, 150 px, 2,000 training photos)"


def answer(study: Study, train_images: int | None) -> tuple:
    """Blocks of 'The answer' section."""
    sweeps = study.sweeps
    blocks = [table("winners", ["", *(LABEL[m] for m in sweeps)], _answer_rows(study),
                    "each method's best trial is chosen by validation accuracy; test accuracy is reported, "
                    "never used to choose")]
    blocks += _paired(study)
    blocks.append(Para(_differs(sweeps, train_images)))
    results = {LABEL[m]: (s.winner.test_accuracy, s.winner.ci_low, s.winner.ci_high, study.repeats.get(m, []))
               for m, s in sweeps.items()}
    blocks.append(Figure("answer.png", figures.answer(results, {LABEL[m]: v for m, v in TUTORIAL.items()}),
                         "test accuracy of each winner with its 95% Wilson interval; grey diamonds: the tutorial"))
    return tuple(blocks)


def _answer_rows(study: Study) -> list:
    w = {m: s.winner for m, s in study.sweeps.items()}

    def each(label, fn):
        return row(label, *(fn(m, r) for m, r in w.items()))

    return [
        each("best trial (by validation accuracy)", lambda m, r: _trial_name(study.sweeps[m])),
        each("its run", lambda m, r: r.best_run_id),
        each("backbone", lambda m, r: r.backbone + (f", frozen up to {r.cut_layer}" if r.cut_layer else "")),
        each("image size", lambda m, r: f"{r.hyperparameters.get('image_size', '?')} px"),
        each("hyperparameters", lambda m, r: ", ".join(f"{SHORT.get(k, k)}={_short(v)}"
                                                       for k, v in r.hyperparameters.items()
                                                       if k not in ("image_size",))),
        each("validation accuracy (selects)", lambda m, r: r.val_accuracy),
        each("test accuracy", lambda m, r: r.test_accuracy),
        each("95% Wilson interval", lambda m, r: f"[{r.ci_low:.3f}, {r.ci_high:.3f}]"),
        each("test images", lambda m, r: r.n_test),
        each("retrained with other seeds: test mean ± sd (K)", lambda m, r: _seeds(study.repeats.get(m, []))),
        each(TUTORIAL_ROW, lambda m, r: TUTORIAL[m]),
    ]


def _trial_name(sweep: Sweep) -> str:
    return next((t.name for t in sweep.trials if t.run_id == sweep.winner.best_run_id), sweep.winner.best_run_id)


def _seeds(tests: list[float]) -> str:
    if not tests:
        return "not measured (`harness compare --repeats K` retrains the best configuration with K seeds)"
    sd = f"{_sd(tests):.3f}" if len(tests) > 1 else "-"
    return f"{sum(tests) / len(tests):.3f} ± {sd} ({len(tests)})"


def _sd(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else f"{number:.3g}"


def _paired(study: Study) -> list:
    if len(study.sweeps) < 2:
        (only,) = study.sweeps
        return [Para(f"Only {LABEL[only]} was swept in this experiment: the comparison needs both methods "
                     "(run the other method's sweep, then `harness compare`).", note=True)]
    if study.mcnemar is None:
        return [Para("No paired test: " + "; ".join(study.notes), note=True)]
    (both, fe_only), (ft_only, neither) = study.mcnemar[0]
    fe, ft = (study.sweeps[m].winner for m in ("feature-extraction", "fine-tune"))
    rows = [row("difference in test accuracy (fine-tuning − feature extraction)", f"{ft.test_accuracy - fe.test_accuracy:+.3f}"),
            row("both right", both), row("only feature extraction right", fe_only),
            row("only fine-tuning right", ft_only), row("both wrong", neither),
            row("McNemar's exact p", f"{study.mcnemar[1]:.3g}")]
    within = "within noise" if study.mcnemar[1] >= 0.05 else "unlikely to be noise alone"
    return [table("paired", ["paired test on the same test images", ""], rows,
                  f"exact McNemar test on the {fe.n_test} test images both winners classified: {within} "
                  "at the 5% level"), ]


def _differs(sweeps: dict[str, Sweep], train_images: int | None) -> str:
    """What differs from the tutorial's study, so its numbers are read as a reference, not a target."""
    backbones = sorted({s.winner.backbone for s in sweeps.values()})
    sizes = sorted({s.winner.hyperparameters.get("image_size", "?") for s in sweeps.values()})
    weights = sorted({s.parent.tags.get("weights", "?") for s in sweeps.values()})
    classes = next(iter(sweeps.values())).predictions.class_names
    parts = [f"backbone {', '.join(backbones)} (the tutorial: VGG16)" if backbones != [TUTORIAL_BACKBONE]
             else "the same backbone (VGG16)",
             f"image size {', '.join(sizes)} px (the tutorial: 150 px)" if sizes != [str(TUTORIAL_SIZE)]
             else "the same image size (150 px)",
             _weights(weights),
             f"{len(classes)} classes ({', '.join(classes)}; the tutorial: cats and dogs)",
             f"{train_images:,} training photos (the tutorial: 2,000)" if train_images is not None
             else "training photos: the data folder is gone, so not counted (the tutorial: 2,000)"]
    return "What differs from the tutorial: " + "; ".join(parts) + "."


def _weights(weights: list[str]) -> str:
    if weights == ["imagenet"]:
        return "the same weights (ImageNet)"
    if weights == ["none"]:
        return "random weights, nothing pretrained (the tutorial: ImageNet)"
    return f"weights {', '.join(weights)} (a file; the tutorial: ImageNet, downloaded by Keras)"


def curves(study: Study) -> tuple:
    """Blocks of the winners' curves section: one two-panel figure per winner."""
    blocks = []
    for method, sweep in study.sweeps.items():
        best = next((t for t in sweep.trials if t.run_id == sweep.winner.best_run_id), None)
        phase2 = best.params.get("phase2_first_step") if best else None
        phase2 = int(phase2) if phase2 and phase2.isdigit() else None
        epoch = best.best_epoch if best else math.nan
        title = f"{LABEL[method]}: {_trial_name(sweep)}"
        blocks += [Sub(LABEL[method]),
                   Figure(f"curves-{method}.png", figures.curves(sweep.history, title, phase2, epoch),
                          f"{title} (run {sweep.winner.best_run_id})")]
        if phase2 is not None:
            blocks.append(Para(f"Phase 1 (epochs 1-{phase2}): the head trains on the frozen base (Adam); phase 2 "
                               f"(from epoch {phase2 + 1}): the top block is unfrozen too (RMSprop, lower rate)."))
        elif method == "feature-extraction":
            blocks.append(Para("Feature extraction trains the head alone, on the frozen network's features: one phase."))
        if best and best.params.get("tuner/initial_epoch", "0") != "0":
            blocks.append(Para("This hyperband trial continues an earlier one: its first epochs are that run's."))
    return tuple(blocks)
