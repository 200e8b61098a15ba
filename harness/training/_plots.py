"""Figures: the tutorial's two-panel training curves, a confusion matrix, and the two methods side by side."""

from __future__ import annotations

import functools
import unicodedata
import warnings

import matplotlib

matplotlib.use("Agg")  # headless: figures go to files and MLflow, never to a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager, ft2font  # noqa: E402


class FontWarning(UserWarning):
    """No installed font has some characters of a figure's text (class names, a title)."""


_NOTED: set[str] = set()  # the font packages already suggested: the note comes once per process
# Draws a placeholder box for every character: matplotlib's own fallback, never a real glyph.
_PLACEHOLDER_FONTS = ("Last Resort",)


def curves(history: dict[str, list[float]], title: str, phase2_start: int | None = None, first_epoch: int = 0):
    """Loss and accuracy per epoch, train vs validation; a dashed line where phase 2 starts.
    `first_epoch`: the epochs before it were another trial's (a continued hyperband trial).

    A bare Figure (not pyplot's), so a trial's plot can be drawn off the training thread; fixed
    margins, as tight_layout alone took longer than drawing the figure.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    epochs = range(first_epoch + 1, first_epoch + len(history.get("loss", [])) + 1)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, history.get(metric, []), "o-", ms=3, label=f"training {metric}")
        ax.plot(epochs, history.get(f"val_{metric}", []), "s-", ms=3, label=f"validation {metric}")
        if phase2_start and first_epoch < phase2_start < epochs.stop - 1:
            ax.axvline(phase2_start + 0.5, color="grey", ls="--", lw=1, label="fine-tuning starts")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.suptitle(title)
    _use_fonts(fig, [title])
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.85, wspace=0.2)
    return fig


def comparison(methods: dict, title: str):
    """Left: test accuracy with its 95% CI per method (and retrained seeds, if any);
    right: validation accuracy per epoch of each method's best trial.

    `methods` maps a label to an object with test_accuracy, ci_low, ci_high, repeats, val_curve.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2, 3]})
    for i, (label, r) in enumerate(methods.items()):
        color = f"C{i}"
        err = [[max(0.0, r.test_accuracy - r.ci_low)], [max(0.0, r.ci_high - r.test_accuracy)]]
        left.errorbar([i], [r.test_accuracy], yerr=err, fmt="o", color=color, capsize=8, ms=8,
                      label="best trial, 95% Wilson CI" if i == 0 else None)
        if r.repeats:
            left.plot([i + 0.2] * len(r.repeats), r.repeats, "x", color="black", ms=7,
                      label="retrained with other seeds (mean ± sd)" if i == 0 else None)
            if len(r.repeats) > 1:
                left.errorbar([i + 0.2], [r.repeat_mean], yerr=[r.repeat_sd], fmt="_", color="black", capsize=5)
        right.plot(range(1, len(r.val_curve) + 1), r.val_curve, "o-", ms=3, color=color, label=label)
    left.set_xticks(range(len(methods)), list(methods))
    left.set_xlim(-0.6, len(methods) - 0.4)
    left.set_ylabel("test accuracy")
    left.set_title("test accuracy")
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1)  # below the axes: never over a point
    right.set_xlabel("epoch (fine-tune: both phases)")
    right.set_ylabel("validation accuracy")
    right.set_title("best trials: validation accuracy per epoch")
    right.legend(fontsize=8)
    fig.suptitle(title)
    _use_fonts(fig, [title, *methods])
    fig.tight_layout()
    return fig


def confusion(matrix, class_names, title: str):
    """Counts of true (rows) against predicted (columns) classes, class names on both axes."""
    from sklearn.metrics import ConfusionMatrixDisplay

    side = max(4.0, 1.0 + 0.7 * len(class_names))
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    ConfusionMatrixDisplay(matrix, display_labels=list(class_names)).plot(
        ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45 if len(class_names) > 3 else "horizontal")
    ax.set_title(title)
    _use_fonts(fig, [title, *class_names])
    fig.tight_layout()
    return fig


def close(fig) -> None:
    plt.close(fig)


def _use_fonts(fig, texts) -> None:
    """Class folder names in any script: every text of `fig` in the default font with, after it,
    installed fonts that have the characters it lacks (matplotlib falls back glyph by glyph).
    Set on the texts themselves, not rcParams: trials draw their curves on other threads."""
    families = fallback_families(texts)
    if families is None:
        return
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_fontfamily(families)
    for ax in fig.axes:  # ticks made later, at drawing time, copy these
        ax.tick_params(labelfontfamily=families)


def fallback_families(texts) -> list[str] | None:
    """font.family followed by the installed fonts that cover what it lacks in `texts`; None when
    it has every character. What no font has is named once (FontWarning), with a font to install,
    and matplotlib's warning per missing glyph for those characters is silenced."""
    texts = [str(t) for t in texts]
    if all(t.isascii() for t in texts):  # every font has these: no font lookup per trial's curves
        return None
    chars = frozenset(c for t in texts for c in t if c.isprintable() and not c.isspace())
    default = tuple(matplotlib.rcParams["font.family"])
    missing = chars - _covered(default, chars)
    if not missing:
        return None
    chosen, left = [], set(missing)
    covers = [(name, _has(path, missing)) for name, path in _candidates()]
    while left:  # greedy: the font with most of what is left, Noto first among equals
        name, has = max(covers, key=lambda item: len(item[1] & left))
        if not has & left:
            break
        chosen.append(name)
        left -= has
    if left:
        _note(frozenset(left))
    return [*default, *chosen]


def _covered(families: tuple[str, ...], chars: frozenset[str]) -> frozenset[str]:
    covered = frozenset()
    for family in families:
        covered |= _has(font_manager.findfont(font_manager.FontProperties(family=[family])), chars)
    return covered


@functools.lru_cache(maxsize=4096)
def _has(path: str, chars: frozenset[str]) -> frozenset[str]:
    """Those of `chars` the font file has a glyph for (cached: every trial plots the same names)."""
    try:
        charmap = ft2font.FT2Font(path).get_charmap()
    except (OSError, RuntimeError, ValueError):  # a font FreeType cannot read: as if absent
        return frozenset()
    return frozenset(c for c in chars if ord(c) in charmap)


@functools.lru_cache(maxsize=1)
def _candidates() -> list[tuple[str, str]]:
    """(family, file) of every installed font family, its upright regular face, Noto first."""
    faces: dict[str, tuple[int, str]] = {}
    for entry in font_manager.fontManager.ttflist:
        if entry.name.startswith(_PLACEHOLDER_FONTS):
            continue
        plain = (entry.style != "normal") * 2 + (entry.weight not in (400, "normal", "regular"))
        if entry.name not in faces or plain < faces[entry.name][0]:
            faces[entry.name] = (plain, entry.fname)
    return sorted(((name, path) for name, (_, path) in faces.items()),
                  key=lambda item: (not item[0].startswith("Noto Sans"), item[0]))


def _note(missing: frozenset[str]) -> None:
    cjk = any(unicodedata.name(c, "").startswith(("CJK", "HANGUL", "HIRAGANA", "KATAKANA", "BOPOMOFO"))
              for c in missing)
    package = "fonts-noto-cjk" if cjk else "fonts-noto-core"
    codes = "|".join(str(ord(c)) for c in sorted(missing))
    warnings.filterwarnings("ignore", rf"Glyph ({codes}) \(", UserWarning)  # named once here instead
    if package in _NOTED:
        return
    _NOTED.add(package)
    shown = " ".join(sorted(missing))
    warnings.warn(f"no installed font has {shown}: figures show boxes for them; install a font that does "
                  f"(e.g. `apt-get install {package}`), then delete matplotlib's font list in "
                  f"{matplotlib.get_cachedir()}", FontWarning, stacklevel=5)
