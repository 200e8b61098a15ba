"""Which network, cut where: sweeps that search backbones and fine-tuning cuts, through the CLI
from a temporary folder, checked in MLflow through its own client; and (slow) both methods end
to end for one member of each of the other families, random weights."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from conftest import runs_of, tiny_sweep_args
from harness.cli import app

runner = CliRunner()
TWO_BY_TWO = """
backbone = ["vgg16", "mobilenet_v2"]
unfreeze = [1, 2]
max_trials = 6
"""
# Keras' own loader and plain MLflow, in an interpreter where `import harness` fails
LOAD_WITHOUT_HARNESS = r"""
import json, sys
sys.modules["harness"] = None
import mlflow, numpy as np
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
size = model.metadata.metadata["image_size"]
x = np.random.default_rng(0).uniform(0, 255, (3, size, size, 3)).astype("float32")
p = np.asarray(model.predict(x))
print(json.dumps({"shape": list(p.shape), "sum": p.sum(axis=1).tolist(), "meta": model.metadata.metadata}))
"""


def _cut_of(backbone: str, unfreeze: int) -> str:
    from harness.backbones import build_base, get_spec, resolve_cut

    return resolve_cut(build_base(backbone, 32, "none"), get_spec(backbone), unfreeze)


@pytest.mark.slow
def test_a_sweep_over_two_backbones_and_two_cuts_logs_each_trials_network(tiny_data, store_uri, client, tmp_path):
    sweep_file = tmp_path / "two-by-two.toml"
    sweep_file.write_text(TWO_BY_TWO)
    args = tiny_sweep_args("fine-tune", tiny_data, store_uri, "--config", str(sweep_file), "--epochs", "1")
    args.remove("--max-trials"), args.remove("3")  # the file's 6
    args[args.index("--backbone"):args.index("--backbone") + 2] = []  # the file's two
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (parent,), children = runs_of(client, "tiny")
    assert parent.data.params["backbone_choices"] == "vgg16,mobilenet_v2"
    assert parent.data.params["unfreeze_choices"] == "1,2" and len(children) == 6
    cuts = {(b, u): _cut_of(b, u) for b in ("vgg16", "mobilenet_v2") for u in (1, 2)}
    assert cuts[("vgg16", 1)] == "block4_pool" and cuts[("mobilenet_v2", 1)] == "block_15_add"
    for child in children:
        p = child.data.params
        assert p["cut_layer"] == cuts[(p["backbone"], int(p["unfreeze"]))], p
        assert child.data.tags["backbone"] == p["backbone"]
    assert len({(c.data.params["backbone"], c.data.params["unfreeze"]) for c in children}) >= 2
    entries = [json.loads(m.read_text())["key"] for m in (tmp_path / "cache").glob("*/meta.json")]
    assert sorted((e["backbone"], e["cut_layer"]) for e in entries) == sorted((b, c) for (b, _), c in cuts.items())
    best = client.get_run(parent.data.tags["best_run_id"])
    done = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_HARNESS, store_uri, parent.data.tags["best_model_uri"]],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    assert served["shape"] == [3, 2] and all(abs(t - 1) < 1e-5 for t in served["sum"])  # a probability per class
    assert served["meta"]["backbone"] == best.data.params["backbone"]


FAMILIES = ["resnet50", "efficientnet_b0", "mobilenet_v3_small", "convnext_tiny", "mobilenet"]


@pytest.mark.slow
@pytest.mark.parametrize("backbone", FAMILIES)
def test_both_methods_run_end_to_end_on_each_family(backbone, tiny_data, store_uri, client):
    """A sweep of each method, then `harness compare`, which names the winners' backbone."""
    for method in ("feature-extraction", "fine-tune"):
        args = tiny_sweep_args(method, tiny_data, store_uri, "--backbone", backbone, "--max-trials", "2",
                               "--epochs", "1")
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    parents, children = runs_of(client, "tiny")
    assert {p.data.params["backbone"] for p in parents} == {backbone} and len(children) == 4
    assert all(c.info.status == "FINISHED" and c.data.metrics["test_accuracy"] >= 0 for c in children)
    ft = next(p for p in parents if p.data.tags["method"] == "fine-tune")
    assert ft.data.params["unfreeze"] == "1"
    compared = runner.invoke(app, ["compare", "--tracking-uri", store_uri])
    assert compared.exit_code == 0, compared.output
    assert "backbone" in compared.output and backbone in compared.output
    (comparison,) = client.search_runs([ft.info.experiment_id], "tags.kind = 'comparison'")
    table = json.load(open(client.download_artifacts(comparison.info.run_id, "comparison/comparison.json")))
    best_ft = client.get_run(ft.data.tags["best_run_id"])
    assert table["methods"]["fine-tune"]["backbone"] == table["methods"]["feature-extraction"]["backbone"] == backbone
    assert table["methods"]["fine-tune"]["cut_layer"] == best_ft.data.params["cut_layer"] != ""
