"""The winner as users take it away: plain MLflow and Keras load it (no harness), the registry,
`harness predict --model`, folders and CSV output, and TFLite/SavedModel export."""

import csv
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import tiny_sweep_args
from harness.cli import app

# Slow step: four sweeps and a second interpreter (about a minute); the default suite loads winners
# with plain mlflow.pyfunc in tests/serving/test_served_accuracy.py (both methods, both precisions).
pytestmark = pytest.mark.slow
runner = CliRunner()
NAME = "tiny-winner"
CASES = [("feature-extraction", "vgg16"), ("fine-tune", "vgg16"),
         ("feature-extraction", "mobilenet_v2"), ("fine-tune", "mobilenet_v2")]
SIZE = 32
# Runs in a fresh interpreter in which `import harness` fails: what a teammate or a serving host has.
WITHOUT_HARNESS = r"""
import json, sys
sys.modules["harness"] = None  # `import harness` now raises ImportError
try:
    import harness
    raise SystemExit("harness is importable")
except ImportError:
    pass
import mlflow, numpy as np
store, jobs, out = sys.argv[1:4]
mlflow.set_tracking_uri(store)
results = {}
for job in json.loads(jobs):
    x = np.load(job["pixels"])
    pyfunc = mlflow.pyfunc.load_model(job["uri"])
    keras_model = mlflow.keras.load_model(job["uri"])
    try:
        pyfunc.predict(x.astype("uint8"))
        uint8_error = ""
    except Exception as exc:
        uint8_error = str(exc)[-200:]
    whole = x.round().astype("uint8")  # decoded, not resized: integer pixels
    uint8_diff = np.abs(keras_model.predict(whole, verbose=0) - pyfunc.predict(whole.astype("float32"))).max()
    results[job["uri"]] = {"pyfunc": np.asarray(pyfunc.predict(x)).tolist(),
                           "keras": keras_model.predict(x, verbose=0).tolist(),
                           "keras_uint8_vs_pyfunc_float32": float(uint8_diff),
                           "pyfunc_uint8_error": uint8_error, "metadata": pyfunc.metadata.metadata}
json.dump(results, open(out, "w"))
"""


def _mobilenet_weights(path: Path) -> str:
    """MobileNetV2 random weights whose BatchNormalization statistics are those of random images
    (one training-mode pass with momentum 0): with Keras' initial statistics its activations
    vanish and every photo would get the same probabilities; with arbitrary ones they blow up
    and the network becomes too ill-conditioned to compare two runtimes' kernels."""
    import keras

    from harness.backbones._registry import build_base

    base = build_base("mobilenet_v2", SIZE, "none")
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    base(np.random.default_rng(0).uniform(-1, 1, (64, SIZE, SIZE, 3)).astype("float32"), training=True)
    base.save_weights(path)
    return str(path)


@pytest.fixture(scope="module")
def winners(tmp_path_factory):
    """One tiny sweep per method and backbone (VGG16 winners registered as NAME versions 1 and 2),
    and every winner run on the test photos in a process without harness."""
    import os

    import keras
    from mlflow import MlflowClient

    from harness.data._folders import write_synthetic

    root = tmp_path_factory.mktemp("model")
    old = os.environ.get("HARNESS_CACHE_DIR")
    os.environ["HARNESS_CACHE_DIR"] = str(root / "cache")
    data = write_synthetic(root / "pets", per_class=6, size=40)
    uri = f"sqlite:///{root / 'store' / 'mlflow.db'}"
    mobilenet = _mobilenet_weights(root / "mobilenet.weights.h5")
    for method, backbone in CASES:
        extra = ["--max-trials", "1", "--epochs", "1", "--backbone", backbone, "--experiment", backbone]
        extra += ["--register", NAME] if backbone == "vgg16" else ["--weights", mobilenet]
        result = runner.invoke(app, tiny_sweep_args(method, data, uri, *extra))
        assert result.exit_code == 0, result.output
    os.environ.pop("HARNESS_CACHE_DIR") if old is None else os.environ.__setitem__("HARNESS_CACHE_DIR", old)
    client = MlflowClient(tracking_uri=uri)
    # the test photos as Keras' own loader gives them (file order), not through harness
    test = keras.utils.image_dataset_from_directory(data / "test", labels=None, image_size=(SIZE, SIZE),
                                                    shuffle=False, batch_size=64)
    np.save(root / "pixels.npy", np.concatenate([b.numpy() for b in test]))
    paths = [str(Path(p).relative_to(data)) for p in test.file_paths]
    sweeps = {case: _sweep(client, *case) for case in CASES}
    jobs = [{"uri": s.data.tags["best_model_uri"], "pixels": str(root / "pixels.npy")} for s in sweeps.values()]
    done = subprocess.run([sys.executable, "-c", WITHOUT_HARNESS, uri, json.dumps(jobs), str(root / "out.json")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return client, uri, data, sweeps, paths, json.loads((root / "out.json").read_text()), root


def _sweep(client, method, backbone):
    exp = client.get_experiment_by_name(backbone)
    (parent,) = client.search_runs([exp.experiment_id], f"tags.sweep = 'true' and tags.method = '{method}'")
    return parent


def _logged_predictions(client, run_id):
    text = open(client.download_artifacts(run_id, "predictions/test_predictions.csv")).read()
    return list(csv.DictReader(io.StringIO(text)))


def _logged_probs(rows, classes=("cats", "dogs")):
    return np.array([[float(r[f"p({c})"]) for c in classes] for r in rows])


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_winner_loads_without_harness_and_gives_the_logged_test_probabilities(winners, case):
    client, _, _, sweeps, paths, results, _ = winners
    parent = sweeps[case]
    out = results[parent.data.tags["best_model_uri"]]
    rows = _logged_predictions(client, parent.data.tags["best_run_id"])
    assert [r["path"] for r in rows] == paths
    logged = _logged_probs(rows)
    assert logged[:, 1].std() > 1e-4, "every photo got the same probability: the comparison would be empty"
    for flavor in ("pyfunc", "keras"):
        ours = np.array(out[flavor])
        assert ours.shape == (len(paths), 2)
        assert np.abs(ours - logged).max() <= 1e-5, flavor
    # MLflow's schema check wants the signature's float32; uint8 pixels go through Keras or serving
    assert out["keras_uint8_vs_pyfunc_float32"] <= 1e-6
    assert "dtype of input uint8 does not match expected dtype float32" in out["pyfunc_uint8_error"]
    assert out["metadata"]["class_names"] == ["cats", "dogs"] and out["metadata"]["image_size"] == SIZE


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_logged_network_is_standard_keras_without_compile_state(winners, case):
    import mlflow

    client, uri, _, sweeps, _, _, _ = winners
    model_uri = sweeps[case].data.tags["best_model_uri"]
    mlflow.set_tracking_uri(uri)
    local = Path(mlflow.artifacts.download_artifacts(model_uri))
    (keras_file,) = local.rglob("*.keras")
    with zipfile.ZipFile(keras_file) as z:
        config = z.read("config.json").decode()
        names = z.namelist()
    assert "harness" not in config and "Fused" not in config
    assert not any(k == "compile_config" and v for k, v in _items(json.loads(config)))
    assert not any("optimizer" in n for n in names)
    modules = {v for k, v in _items(json.loads(config)) if k == "module"}
    assert modules and all(m.startswith("keras") for m in modules), modules
    info = mlflow.models.get_model_info(model_uri)
    spec = info.signature.to_dict()
    assert json.loads(spec["inputs"])[0]["tensor-spec"] == {"dtype": "float32", "shape": [-1, SIZE, SIZE, 3]}
    assert json.loads(spec["outputs"])[0]["tensor-spec"] == {"dtype": "float32", "shape": [-1, 2]}


def _items(node):
    """Every (key, value) pair anywhere in a JSON tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v
            yield from _items(v)
    elif isinstance(node, list):
        for v in node:
            yield from _items(v)


def test_register_makes_a_version_per_sweep_with_its_tags(winners):
    client, _, _, sweeps, _, _, _ = winners
    versions = {str(v.version): v for v in client.search_model_versions(f"name = '{NAME}'")}
    assert sorted(versions) == ["1", "2"]
    for version, method in (("1", "feature-extraction"), ("2", "fine-tune")):
        parent = sweeps[method, "vgg16"]
        best = client.get_run(parent.data.tags["best_run_id"])
        tags = client.get_model_version(NAME, version).tags
        assert tags["method"] == method and tags["backbone"] == "vgg16"
        assert tags["data_fingerprint"] == parent.data.tags["data_fingerprint"]
        assert tags["parent_run_id"] == parent.info.run_id
        assert float(tags["val_accuracy"]) == pytest.approx(best.data.metrics["best_val_accuracy"], abs=1e-6)
        assert float(tags["test_accuracy"]) == pytest.approx(best.data.metrics["test_accuracy"], abs=1e-6)
        assert versions[version].run_id == best.info.run_id
        assert parent.data.tags["registered_model"] == f"models:/{NAME}/{version}"


@pytest.mark.parametrize("model_ref, method", [
    (f"models:/{NAME}/1", "feature-extraction"), (f"models:/{NAME}@champion", "feature-extraction"),
    (f"models:/{NAME}/latest", "fine-tune")])
def test_predict_with_a_registry_uri(winners, model_ref, method):
    client, uri, data, sweeps, _, _, _ = winners
    client.set_registered_model_alias(NAME, "champion", "1")
    rows = _logged_predictions(client, sweeps[method, "vgg16"].data.tags["best_run_id"])
    photos = [str(data / r["path"]) for r in rows[:2] + rows[-2:]]
    result = runner.invoke(app, ["predict", *photos, "--model", model_ref, "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    printed = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert [p[0] for p in printed] == photos
    for (_, label, prob), row in zip(printed, rows[:2] + rows[-2:]):
        assert label == row["predicted_class"]
        assert float(prob) == pytest.approx(float(row[f"p({label})"]), abs=1e-3)  # printed with 3 decimals


def test_predict_a_folder_recursively_and_write_every_probability(winners, tmp_path):
    import shutil

    client, uri, data, sweeps, _, _, _ = winners
    parent = sweeps["feature-extraction", "mobilenet_v2"]
    logged = {r["path"]: r for r in _logged_predictions(client, parent.data.tags["best_run_id"])}
    shutil.copytree(data / "test", tmp_path / "photos" / "nested")
    (tmp_path / "photos" / "notes.txt").write_text("not a photo")
    (tmp_path / "photos" / ".hidden.jpg").write_bytes(b"macOS metadata, not a photo")
    out = tmp_path / "out" / "predictions.csv"
    result = runner.invoke(app, ["predict", str(tmp_path / "photos"), "--run", parent.info.run_id,
                                 "--out", str(out), "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    printed = [line.split("\t")[0] for line in result.stdout.strip().splitlines()]
    assert printed == sorted(printed) and len(printed) == len(logged)
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["path", "p(cats)", "p(dogs)"]
    assert [r["path"] for r in rows] == printed
    for r in rows:
        original = logged["test/" + str(Path(r["path"]).relative_to(tmp_path / "photos" / "nested"))]
        for c in ("cats", "dogs"):
            assert float(r[f"p({c})"]) == pytest.approx(float(original[f"p({c})"]), abs=1e-5)


def test_predict_says_what_is_wrong_in_one_line(winners, tmp_path):
    _, uri, data, sweeps, _, _, _ = winners
    photo = str(next((data / "test" / "cats").iterdir()))
    both = runner.invoke(app, ["predict", photo, "--run", "x", "--model", "models:/x/1", "--tracking-uri", uri])
    assert both.exit_code == 2 and "--run or --model, not both" in both.output
    (tmp_path / "empty").mkdir()
    empty = runner.invoke(app, ["predict", str(tmp_path / "empty"), "--tracking-uri", uri])
    assert empty.exit_code == 2 and "no images under" in empty.output
    unknown = runner.invoke(app, ["predict", photo, "--model", "models:/nope/1", "--tracking-uri", uri])
    assert unknown.exit_code == 2 and "cannot load model models:/nope/1" in unknown.output
    # a Keras model logged without harness's metadata: no class names to print
    import keras
    import mlflow

    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=mlflow.create_experiment("plain")):
        plain = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Flatten(),
                                  keras.layers.Dense(2, activation="softmax")])
        info = mlflow.keras.log_model(plain, name="plain", pip_requirements=[])
    nameless = runner.invoke(app, ["predict", photo, "--model", info.model_uri, "--tracking-uri", uri])
    assert nameless.exit_code == 2 and "no class_names in its MLflow metadata" in nameless.output
    assert "Traceback" not in both.output + empty.output + unknown.output + nameless.output


def test_tflite_export_runs_on_real_pixels_like_the_keras_model(winners, tmp_path):
    """What a MobileNetV2 user ships to a phone (VGG16's SavedModel export is checked below)."""
    import mlflow
    import tensorflow as tf

    client, uri, _, sweeps, _, _, root = winners
    parent = sweeps["fine-tune", "mobilenet_v2"]
    out = tmp_path / "winner.tflite"
    result = runner.invoke(app, ["export", parent.data.tags["best_model_uri"], "--format", "tflite",
                                 "--out", str(out), "--log", "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    pixels = np.load(root / "pixels.npy")
    interpreter = tf.lite.Interpreter(model_path=str(out))
    (inp,), (outp,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(inp["index"], pixels.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], pixels)
    interpreter.invoke()
    lite = interpreter.get_tensor(outp["index"])
    mlflow.set_tracking_uri(uri)
    keras_probs = mlflow.keras.load_model(parent.data.tags["best_model_uri"]).predict(pixels, verbose=0)
    assert lite.shape == keras_probs.shape == (len(pixels), 2)
    assert np.abs(lite - keras_probs).max() <= 1e-4
    best = parent.data.tags["best_run_id"]
    assert "export/winner.tflite" in {a.path for a in client.list_artifacts(best, "export")}


@pytest.mark.slow  # a SavedModel export and a TensorFlow load: CI's slow step (TFLite stays in the default suite)
def test_saved_model_export_serves_the_same_probabilities(winners, tmp_path):
    import mlflow
    import tensorflow as tf

    _, uri, _, sweeps, _, _, root = winners
    parent = sweeps["feature-extraction", "mobilenet_v2"]
    out = tmp_path / "saved"
    result = runner.invoke(app, ["export", parent.info.run_id, "--format", "saved_model", "--out", str(out),
                                 "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    pixels = np.load(root / "pixels.npy")
    served = tf.saved_model.load(str(out)).signatures["serving_default"](images=tf.constant(pixels))
    mlflow.set_tracking_uri(uri)
    keras_probs = mlflow.keras.load_model(parent.data.tags["best_model_uri"]).predict(pixels, verbose=0)
    assert np.abs(served["probabilities"].numpy() - keras_probs).max() <= 1e-5
    again = runner.invoke(app, ["export", parent.info.run_id, "--format", "saved_model", "--out", str(out),
                                "--tracking-uri", uri])
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(app, ["export", parent.info.run_id, "--format", "onnx", "--out", str(tmp_path / "x"),
                              "--tracking-uri", uri])
    assert bad.exit_code == 2 and "unknown export format 'onnx'" in bad.output


def test_register_needs_a_sweep_in_one_process(tiny_data, store_uri):
    result = runner.invoke(app, tiny_sweep_args("fine-tune", tiny_data, store_uri, "--workers", "2",
                                                "--register", "x"))
    assert result.exit_code == 2 and "--register works with a sweep run in one process" in result.output


def test_experiments_carry_their_kind_and_the_views_the_ui_links_open(winners):
    """What `harness ui` links to: saved views (experiment tags) with the sweep's columns; the
    browser test (-m browser) renders them."""
    client, _, _, sweeps, _, _, _ = winners
    exp = client.get_experiment_by_name("vgg16")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    runs_view = json.loads(exp.tags["mlflow.sharedViewState.harness-runs"])
    assert runs_view["name"] and isinstance(runs_view["createdAt"], int)
    columns = json.loads(runs_view["state"])["selectedColumns"]
    for metric in ("best_val_accuracy", "test_accuracy", "val_accuracy"):
        assert f"metrics.`{metric}`" in columns
    for hp in ("units", "dropout", "learning_rate", "fine_tune_learning_rate"):
        assert f"params.`{hp}`" in columns
    fine_tune = json.loads(json.loads(exp.tags["mlflow.sharedViewState.harness-fine-tune"])["state"])
    parent = sweeps["fine-tune", "vgg16"]
    trials = client.search_runs([exp.experiment_id], fine_tune["searchFilter"])  # MLflow's own search
    assert trials and {t.data.tags["mlflow.parentRunId"] for t in trials} == {parent.info.run_id}
    charts = {c["type"]: c for c in fine_tune["compareRunCharts"]}
    assert charts["PARALLEL"]["selectedParams"] == ["dropout", "fine_tune_learning_rate", "learning_rate", "units"]
    assert charts["PARALLEL"]["selectedMetrics"] == ["best_val_accuracy"]
