"""The docs match the code: generated references are current, every relative link and image in
README.md and docs/ resolves, and every page is in the site's navigation."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _generator():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", ["sweep-file.md", "cli.md"])
def test_the_generated_reference_matches_the_code(page):
    pages = {path.name: text for path, text in _generator().pages().items()}
    assert (DOCS / "reference" / page).read_text() == pages[page], \
        "stale: run `.venv/bin/python docs/gen_reference.py`"


def test_the_sweep_file_reference_names_every_declared_key():
    from harness import config

    text = (DOCS / "reference" / "sweep-file.md").read_text()
    for name in config.declared(config.SweepConfig):
        assert f"`{name}" in text, name


def _without_code(text: str) -> str:
    return re.sub(r"```.*?```|`[^`\n]*`", "", text, flags=re.S)


def _pages() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_image_resolves(page):
    broken = []
    for target in LINK.findall(_without_code(page.read_text())):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor on the same page
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert not broken, broken


def test_every_page_is_in_the_navigation():
    nav = set(re.findall(r":\s*(\S+\.md)\s*$", (REPO / "mkdocs.yml").read_text(), re.M))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert nav == pages
    assert {"getting-started.md", "own-data.md", "sweeps.md", "tuners.md", "mlflow.md", "compare.md", "winner.md",
            "performance.md", "distributed.md", "reliability.md", "results.md", "development.md"} <= pages
