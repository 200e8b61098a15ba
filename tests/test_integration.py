"""Real photos and real ImageNet weights from ../shared (run with -m integration; skip if absent)."""

import pytest
from typer.testing import CliRunner

from conftest import SHARED_DATA, SHARED_WEIGHTS, runs_of
from harness.cli import app

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (SHARED_DATA.is_dir() and SHARED_WEIGHTS.is_file()),
                       reason="../shared data or weights not present"),
]


@pytest.mark.parametrize("method, epochs", [("feature-extraction", 10), ("fine-tune", 3)])
def test_real_photos_sweep_reaches_the_tutorial_level(method, epochs, store_uri, client):
    args = ["sweep", method, "--data", str(SHARED_DATA), "--backbone", "mobilenet_v2",
            "--weights", str(SHARED_WEIGHTS), "--max-trials", "2", "--epochs", str(epochs),
            "--tracking-uri", store_uri]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (parent,), children = runs_of(client, "cats_and_dogs_small")
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    assert parent.data.metrics["best_test_accuracy"] >= 0.90
