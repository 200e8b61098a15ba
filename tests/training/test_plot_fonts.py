"""Class names in any script: drawn with an installed font that has them, else one note saying
which font to install, never matplotlib's warning per missing glyph."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

from harness.training import _plots as plots

NAMES = ["猫", "고양이", "قطة", "Café"]


@pytest.fixture(autouse=True)
def fresh_note(monkeypatch):
    monkeypatch.setattr(plots, "_NOTED", set())  # as in a new process


def _draw(names, title="test split") -> tuple[bytes, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plots.confusion(np.eye(len(names), dtype=int) * 3, names, title)
        png = io.BytesIO()
        fig.savefig(png, format="png")  # as MLflow's log_figure does, after confusion() returned
        plots.close(fig)
    return png.getvalue(), caught


def _cjk_font_installed() -> bool:
    return any(set("猫고양이") <= plots._has(path, frozenset("猫고양이")) for _, path in plots._candidates())


def test_names_in_other_scripts_warn_once_naming_a_font_and_never_per_glyph(capfd):
    png, caught = _draw(NAMES)
    assert png.startswith(b"\x89PNG")
    assert not [w for w in caught if "missing from font" in str(w.message)], [str(w.message) for w in caught]
    notes = [str(w.message) for w in caught if issubclass(w.category, plots.FontWarning)]
    if _cjk_font_installed():
        assert notes == []
    else:
        assert len(notes) == 1 and "fonts-noto-cjk" in notes[0] and "猫" in notes[0], notes
        assert "é" not in notes[0]  # the default font has accents (and these Arabic letters)
    assert len(caught) == len(notes), [str(w.message) for w in caught]
    _, again = _draw(NAMES, "another trial")  # every trial plots the same names: no second note
    assert again == []
    assert "missing from font" not in capfd.readouterr().err


def test_a_bundled_font_that_has_the_glyph_is_used(capfd):
    # U+2980 is in matplotlib's own STIX fonts, not in DejaVu Sans: the fallback path on any machine
    families = plots.fallback_families(["⦀", "Café"])
    assert families and families[0] == "sans-serif" and any(f.startswith("STIX") for f in families[1:])
    png, caught = _draw(["⦀", "Café"])
    assert png.startswith(b"\x89PNG")
    assert caught == [], [str(w.message) for w in caught]
    assert capfd.readouterr().err == ""


def test_latin_names_keep_the_default_font():
    assert plots.fallback_families(["cats", "dogs", "Café", "test split · trial 3"]) is None
    _, caught = _draw(["cats", "dogs"])
    assert caught == []
