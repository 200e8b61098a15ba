"""An installed tool works anywhere: packaged sweep files, `harness init`, sweeps without --config
from a working folder that is not the repository, and the data warnings a sweep shows."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib.resources import files
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import runs_of, tiny_sweep_args
from harness import config as config
from harness.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def test_default_sweep_files_ship_inside_the_package_only():
    for method in config.METHODS:
        assert files("harness").joinpath("sweeps", f"{method}.toml").is_file()
    assert not list((REPO / "sweeps").glob("*.toml"))  # moved, not copied


def test_the_wheel_carries_the_sweep_files(tmp_path):
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    project = tmp_path / "project"
    shutil.copytree(REPO / "harness", project / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, project / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(project)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("harness-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"harness/sweeps/feature-extraction.toml", "harness/sweeps/fine-tune.toml"} <= set(names)


def test_init_writes_the_defaults_and_refuses_to_overwrite(tmp_path):
    result = runner.invoke(app, ["init"])  # the working folder (a temporary one, see conftest)
    assert result.exit_code == 0, result.output
    for method in config.METHODS:
        written = Path.cwd() / f"{method}.toml"
        assert written.read_text() == config.default_sweep_file(method).read_text()
        assert config.load(written, method).method == method
    result = runner.invoke(app, ["init", str(tmp_path / "new" / "sweeps")])
    assert result.exit_code == 0 and (tmp_path / "new" / "sweeps" / "fine-tune.toml").is_file()

    edited = tmp_path / "fine-tune.toml"
    edited.write_text('method = "fine-tune"\nepochs = 3\n')
    result = runner.invoke(app, ["init", str(tmp_path)])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and "exists; pass --force" in lines[0], result.output
    assert config.load(edited, "fine-tune").epochs == 3  # untouched
    result = runner.invoke(app, ["init", str(tmp_path), "--force"])
    assert result.exit_code == 0 and config.load(edited, "fine-tune").epochs == 20


def test_sweep_without_config_from_another_folder_warns_about_duplicates(tiny_data, store_uri, client,
                                                                          tmp_path):
    assert Path.cwd() == tmp_path and not (Path.cwd() / "sweeps").exists()
    data = shutil.copytree(tiny_data, tmp_path / "leaky")
    shutil.copy(data / "train" / "cats" / "cat.0.jpg", data / "test" / "cats" / "cat.99.jpg")
    shutil.copy(data / "train" / "dogs" / "dog.0.jpg", data / "train" / "cats" / "cat.98.jpg")
    args = tiny_sweep_args("feature-extraction", data, store_uri, "--max-trials", "1", "--epochs", "1")
    assert "--config" not in args
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "warning: 1 images appear in two splits (test leakage: 2 files)" in result.output
    assert "warning: 1 images appear under two classes (conflicting labels: 2 files)" in result.output
    assert result.output.index("warning:") < result.output.index("extracting backbone features")
    (parent,), (child,) = runs_of(client, "leaky")
    assert parent.info.status == "FINISHED" and child.info.status == "FINISHED"
