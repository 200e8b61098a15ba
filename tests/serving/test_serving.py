"""`mlflow models serve` on a sweep's winner answers /invocations with the logged predictions (-m slow)."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import tiny_sweep_args
from harness.cli import app

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def _gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return False
    except ProcessLookupError:
        return True


@pytest.fixture
def served(tmp_path, tiny_data, store_uri):
    """A feature-extraction sweep's winner behind `mlflow models serve` on a free loopback port;
    afterwards the server and every process it started are gone."""
    from mlflow import MlflowClient

    result = CliRunner().invoke(app, tiny_sweep_args("feature-extraction", tiny_data, store_uri,
                                                     "--max-trials", "1", "--epochs", "1"))
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=store_uri)
    (parent,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id], "tags.sweep = 'true'")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", parent.data.tags["best_model_uri"],
         "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
        # MLflow starts `uvicorn` by name: the environment's bin folder must be on PATH, as in an
        # activated virtualenv
        env={**os.environ, "MLFLOW_TRACKING_URI": store_uri,
             "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"},
        start_new_session=True,
        stdout=open(tmp_path / "serve.log", "wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "the model server did not answer within 240 s"
                time.sleep(1)
        yield client, parent, f"http://127.0.0.1:{port}/invocations"
    finally:
        if not _gone(server.pid):
            os.killpg(server.pid, signal.SIGTERM)  # the server and the workers it started
        deadline = time.monotonic() + 60
        while not _gone(server.pid) and time.monotonic() < deadline:
            server.poll()  # reaps the server itself once it exits
            time.sleep(0.5)
        stopped = _gone(server.pid)
        if not stopped:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
        assert stopped, "the model server (or a process it started) did not stop on SIGTERM"


def test_served_winner_answers_with_the_logged_predictions(served, tiny_data):
    import keras

    client, parent, url = served
    rows = list(csv.DictReader(open(client.download_artifacts(parent.data.tags["best_run_id"],
                                                              "predictions/test_predictions.csv"))))
    test = keras.utils.image_dataset_from_directory(tiny_data / "test", labels=None, image_size=(32, 32),
                                                    shuffle=False, batch_size=64)
    pixels = np.concatenate([b.numpy() for b in test])
    pick = [0, len(rows) - 1]  # a cat and a dog
    answer = _post(url, {"inputs": pixels[pick].tolist()})
    served_probs = np.array(answer["predictions"])
    logged = np.array([[float(rows[i]["p(cats)"]), float(rows[i]["p(dogs)"])] for i in pick])
    assert served_probs.shape == (2, 2)
    assert np.abs(served_probs - logged).max() <= 1e-5
    # integer pixels (what a client that decodes JPEGs sends) are accepted too
    whole = np.round(pixels[pick]).astype(int)
    as_ints = np.array(_post(url, {"inputs": whole.tolist()})["predictions"])
    as_floats = np.array(_post(url, {"inputs": whole.astype("float32").tolist()})["predictions"])
    np.testing.assert_array_equal(as_ints, as_floats)
