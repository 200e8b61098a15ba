"""A command's first lines are harness's: TensorFlow's C++ start-up chatter (oneDNN, CUDA
probing, absl's banner) shows only with --verbose or a TF_CPP_MIN_LOG_LEVEL the user set."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _stderr(tmp_path, *flags: str, env: dict | None = None) -> list[str]:
    """`harness predict` on a real photo imports TensorFlow, then fails on an empty store with one line."""
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(tmp_path / "photo.jpg")
    clean = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "HARNESS_QUIET_TF")}
    done = subprocess.run([sys.executable, "-m", "harness", *flags, "predict", "photo.jpg", "--tracking-uri",
                           f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"], capture_output=True, text=True,
                          cwd=tmp_path, env={**clean, **(env or {})}, timeout=300)
    assert done.returncode == 2, done.stderr
    return [line for line in done.stderr.splitlines() if line.strip()]


@pytest.mark.slow  # a TensorFlow start-up in a subprocess: CI's slow step
def test_tensorflow_start_up_lines_are_hidden(tmp_path):
    quiet = _stderr(tmp_path)
    assert len(quiet) == 1 and quiet[0].startswith("error: no finished sweep"), quiet


@pytest.mark.slow  # two more TensorFlow start-ups
def test_tensorflow_start_up_lines_show_when_asked_for(tmp_path):
    verbose = _stderr(tmp_path, "--verbose")
    assert verbose[-1].startswith("error: no finished sweep") and len(verbose) > 1, verbose  # TensorFlow's own
    users_choice = _stderr(tmp_path, env={"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert len(users_choice) > 1, users_choice
