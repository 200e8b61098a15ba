"""The report's figures as PNG bytes (matplotlib, headless): the answer, the winners' curves with
both fine-tuning phases, the search, importances, slices, per-class recall, confusion, thumbnails."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter

from harness.training import _plots as plots

DPI = 80  # small files: the HTML carries every figure inline


def png(fig, texts=()) -> bytes:
    _fonts(fig, texts)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plots.close(fig)
    return buffer.getvalue()


def _fonts(fig, texts) -> None:
    """Class names in any script: the installed fonts that have their characters (see _plots)."""
    families = plots.fallback_families([*texts, *(t.get_text() for t in fig.texts)])
    if families:
        for ax in fig.axes:
            for text in [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels()]:
                text.set_fontfamily(families)
            ax.tick_params(labelfontfamily=families)


def answer(results: dict[str, tuple[float, float, float, list[float]]], tutorial: dict[str, float]) -> bytes:
    """Test accuracy with its 95% interval per method, seeds retrained (x), the tutorial's (diamond)."""
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    for i, (label, (test, low, high, seeds)) in enumerate(results.items()):
        ax.errorbar([i], [test], yerr=[[max(0, test - low)], [max(0, high - test)]], fmt="o", capsize=8,
                    color=f"C{i}", label="best trial, 95% Wilson CI" if i == 0 else None)
        if seeds:
            ax.plot([i + 0.15] * len(seeds), seeds, "x", color="black",
                    label="retrained, other seeds" if i == 0 else None)
        if label in tutorial:
            ax.plot([i - 0.15], [tutorial[label]], "D", mfc="none", color="grey",
                    label="the tutorial (VGG16, 150 px)" if i == 0 else None)
    ax.set_xticks(range(len(results)), list(results))
    ax.set_xlim(-0.6, len(results) - 0.4)
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    return png(fig)


def curves(history: dict[str, list[tuple[int, float]]], title: str, phase2: int | None, best: float) -> bytes:
    """The tutorial's two panels, accuracy and loss per epoch (training dots, validation line);
    fine-tuning's phase 1 (head on the frozen base) and phase 2 (top block unfrozen) shaded."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    for ax, metric in zip(fig.subplots(1, 2), ("accuracy", "loss")):
        for key, style, label in ((metric, "bo", "training"), (f"val_{metric}", "b-", "validation")):
            points = history.get(key, [])
            ax.plot([s + 1 for s, _ in points], [v for _, v in points], style, label=f"{label} {metric}")
        last = max((s + 1 for s, _ in history.get(f"val_{metric}", [])), default=1)
        if phase2 is not None and 0 < phase2 < last:
            ax.axvspan(0.5, phase2 + 0.5, color="C1", alpha=0.08, label="phase 1: head, base frozen")
            ax.axvspan(phase2 + 0.5, last + 0.5, color="C2", alpha=0.08, label="phase 2: top block unfrozen")
        if metric == "accuracy" and not math.isnan(best):
            ax.axvline(best + 1, color="grey", ls=":", lw=1, label="best epoch (kept)")
        ax.set_xlabel("epoch")
        ax.set_title(f"training and validation {metric}")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return png(fig, [title])


def search(series: dict[str, list[tuple[int, float, float]]]) -> bytes:
    """Best-so-far validation accuracy against trial number and against wall time (s since the
    sweep started), one line per method; each trial's own value as a faint dot."""
    fig = Figure(figsize=(10, 3.6))
    by_number, by_time = fig.subplots(1, 2)
    for i, (label, points) in enumerate(series.items()):
        numbers, seconds, vals = (list(x) for x in zip(*points)) if points else ([], [], [])
        best = np.maximum.accumulate(vals) if vals else []
        for ax, x in ((by_number, numbers), (by_time, seconds)):
            ax.step(x, best, where="post", color=f"C{i}", label=label)
            ax.plot(x, vals, "o", color=f"C{i}", alpha=0.3, ms=4)
    by_number.xaxis.set_major_locator(MaxNLocator(integer=True))
    by_number.set_xlabel("trial number")
    by_time.set_xlabel("wall time since the sweep started (s)")
    for ax in (by_number, by_time):
        ax.set_ylabel("best validation accuracy so far")
        ax.legend(fontsize=8)
    return png(fig, list(series))


def importances(values: dict[str, dict[str, float]], title: str) -> bytes:
    """One bar per hyperparameter and evaluator."""
    params = list(next(iter(values.values())))
    fig = Figure(figsize=(7, 0.6 + 0.5 * len(params) * len(values)))
    ax = fig.subplots()
    height = 0.8 / len(values)
    for i, (label, found) in enumerate(values.items()):
        ax.barh([p + i * height for p in range(len(params))], [found.get(n, 0.0) for n in params],
                height=height, label=label, color=f"C{i}")
    ax.set_yticks([p + height * (len(values) - 1) / 2 for p in range(len(params))], params)
    ax.invert_yaxis()
    ax.set_xlabel("importance (normalised: sums to 1)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return png(fig, [title])


def slices(space, points: list[dict], vals: list[float], title: str) -> bytes:
    """Validation accuracy against each hyperparameter, one panel each (Optuna's slice plot)."""
    fig = Figure(figsize=(3.2 * len(space) + 1.0, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(space), sharey=True))
    order = np.arange(1, len(vals) + 1)
    for ax, spec in zip(axes, space):
        x = [p[spec.name] for p in points]
        if spec.categorical:
            labels = [str(c) for c in spec.choices]
            x = [labels.index(str(v)) if str(v) in labels else len(labels) for v in x]
            ax.set_xticks(range(len(labels)), labels)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        elif spec.log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # 2x10^-5 labels between decades overlap
        if not spec.categorical:
            ax.set_xlim(spec.low, spec.high)  # the whole searched range: where the trials fell in it
        shown = ax.scatter(x, vals, c=order, cmap="viridis", s=25)
        ax.set_xlabel(spec.name)
    axes[0].set_ylabel("best validation accuracy")
    bar = fig.colorbar(shown, ax=list(axes), label="trial (in order)")
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    fig.suptitle(title)
    return png(fig, [title])


def recall(recalls: dict[str, dict[str, float]]) -> bytes:
    """Per-class test recall of each winner, side by side."""
    classes = list(next(iter(recalls.values())))
    fig = Figure(figsize=(max(5.0, 1.0 + 1.1 * len(classes)), 3.4))
    ax = fig.subplots()
    width = 0.8 / len(recalls)
    for i, (label, found) in enumerate(recalls.items()):
        ax.bar([c + i * width for c in range(len(classes))], [found.get(n, 0.0) for n in classes], width,
               label=label, color=f"C{i}")
    ax.set_xticks([c + width * (len(recalls) - 1) / 2 for c in range(len(classes))], classes)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test recall")
    ax.legend(fontsize=8)
    return png(fig, classes)


def confusion(matrix, class_names, title: str) -> bytes:
    return png(plots.confusion(matrix, class_names, title))


def thumbnail(path: Path, side: int = 96) -> bytes | None:
    """A small PNG of one photo; None when it cannot be read (moved, deleted, not an image)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((side, side))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            return buffer.getvalue()
    except (OSError, UnidentifiedImageError):
        return None
