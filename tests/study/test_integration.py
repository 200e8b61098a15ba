"""Real photos and real ImageNet weights from ../shared (run with -m integration; skip if absent)."""

import json

import pytest
from typer.testing import CliRunner

from conftest import SHARED, SHARED_DATA, SHARED_WEIGHTS, runs_of
from harness.cli import app

FLOWERS = SHARED / "data" / "flowers"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (SHARED_DATA.is_dir() and SHARED_WEIGHTS.is_file()),
                       reason="../shared data or weights not present"),
]
runner = CliRunner()


def _sweep(method, data, store_uri, *extra):
    args = ["sweep", method, "--data", str(data), "--backbone", "mobilenet_v2", "--weights", str(SHARED_WEIGHTS),
            "--image-size", "150", "--tracking-uri", store_uri, *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output


def test_cats_and_dogs_feature_extraction_keeps_its_accuracy(store_uri, client):
    """The two-class path unchanged: the tutorial's recipe (first trial) and one more, 20 epochs."""
    _sweep("feature-extraction", SHARED_DATA, store_uri, "--max-trials", "2")
    (parent,), children = runs_of(client, "cats_and_dogs_small")
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    assert all(c.data.params["output"] == "sigmoid" for c in children)
    # "The same accuracy as before": within the 95% Wilson interval of the README's first study
    # (0.935 [0.918, 0.949] on these 1,000 test photos). The trials of this recipe land at
    # 0.93 +- 0.005 test, so a bar at 0.93 itself would fail about every other seed.
    assert parent.data.metrics["best_test_accuracy"] >= 0.918


def test_fine_tune_on_cats_and_dogs_reaches_the_tutorial_level(store_uri, client):
    _sweep("fine-tune", SHARED_DATA, store_uri, "--max-trials", "2", "--epochs", "3")
    (parent,), children = runs_of(client, "cats_and_dogs_small")
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    assert parent.data.metrics["best_test_accuracy"] >= 0.90


@pytest.mark.skipif(not FLOWERS.is_dir(), reason="../shared/data/flowers not present")
def test_flowers_split_check_and_both_sweeps(tmp_path, store_uri, client):
    """Five unsplit class folders, as people's own photos come: split, check, sweep both methods."""
    data = tmp_path / "flowers"
    split = runner.invoke(app, ["data", "split", "--from", str(FLOWERS), "--to", str(data), "--seed", "0"])
    assert split.exit_code == 0, split.output
    check = runner.invoke(app, ["data", "check", str(data)])
    assert check.exit_code == 1  # the set holds the same photos under rose and tulip
    assert "rose" in check.output and "tulip" in check.output
    _sweep("feature-extraction", data, store_uri, "--max-trials", "3")
    _sweep("fine-tune", data, store_uri, "--max-trials", "2", "--epochs", "5")
    parents, children = runs_of(client, "flowers")
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)
    for parent in parents:
        assert json.loads(parent.data.tags["classes"]) == ["daisy", "dandelion", "rose", "sunflower", "tulip"]
        # Five classes, chance is about 0.24: both methods must learn; see README for the measured figures.
        assert parent.data.metrics["best_test_accuracy"] >= 0.60
    assert all(c.data.params["output"] == "softmax" for c in children)
    compared = runner.invoke(app, ["compare", "--tracking-uri", store_uri, "--experiment", "flowers"])
    assert compared.exit_code == 0, compared.output
    assert "test recall: tulip" in " ".join(compared.output.split())
