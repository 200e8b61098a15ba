"""HARNESS_CACHE_DIR at a file, or at a folder that cannot be written: one line naming the
problem, exit 2, no traceback, and nothing left RUNNING (nothing logged at all: the features
come before the sweep's parent run)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import one_error_line, tiny_sweep_args
from harness.cli import app
from harness.data._folders import write_synthetic

runner = CliRunner()


@pytest.fixture
def data(tmp_path) -> Path:
    return write_synthetic(tmp_path / "d", per_class=2, size=16)


def _nothing_running(client) -> None:
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments) if experiments else []
    assert [r.info.status for r in runs if r.info.status == "RUNNING"] == []
    assert runs == []  # checked before the parent run was opened


def _a_file(tmp_path) -> Path:
    path = tmp_path / "cache-file"
    path.write_text("not a folder\n")
    return path


def test_a_sweep_with_the_cache_at_a_file(data, tmp_path, monkeypatch, store_uri, client):
    path = _a_file(tmp_path)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(path))
    one_error_line(tiny_sweep_args("feature-extraction", data, store_uri),
           f"HARNESS_CACHE_DIR={path} is a file, not a folder", "point it at a folder")
    _nothing_running(client)
    assert path.read_text() == "not a folder\n"


def test_a_sweep_with_the_cache_under_a_file(data, tmp_path, monkeypatch, store_uri, client):
    path = _a_file(tmp_path)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(path / "features"))
    one_error_line(tiny_sweep_args("fine-tune", data, store_uri), f"{path} is a file, not a folder")
    _nothing_running(client)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes any folder: no permission to lack")
def test_a_sweep_with_the_cache_in_a_folder_it_cannot_write(data, tmp_path, monkeypatch, store_uri, client):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(folder))
    try:
        one_error_line(tiny_sweep_args("feature-extraction", data, store_uri),
               f"HARNESS_CACHE_DIR={folder} cannot be written (Permission denied)")
    finally:
        folder.chmod(0o700)
    _nothing_running(client)


@pytest.mark.parametrize("command", [["cache", "ls"], ["cache", "clear"]])
def test_cache_commands_with_the_cache_at_a_file(tmp_path, monkeypatch, command):
    path = _a_file(tmp_path)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(path))
    one_error_line(command, f"HARNESS_CACHE_DIR={path} is a file, not a folder")
    assert path.read_text() == "not a folder\n"  # `clear` deleted nothing


def test_an_unwritable_cache_is_named_even_as_root(tmp_path, monkeypatch):
    """The message when writing is refused (root cannot be refused by permissions here: as a
    read-only mount or ACL would refuse it)."""
    import tempfile

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    folder = tmp_path / "cache"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(folder))
    monkeypatch.setattr(tempfile, "TemporaryFile", refused)
    one_error_line(["cache", "ls"], f"HARNESS_CACHE_DIR={folder} cannot be written (Permission denied)",
           "point it at a folder you can write")


def test_the_default_cache_folder_is_named_when_unset(tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".cache").write_text("")
    one_error_line(["cache", "ls"], f"the feature cache folder {tmp_path / 'home' / '.cache' / 'harness'} cannot be made",
           f"{tmp_path / 'home' / '.cache'} is a file", "point HARNESS_CACHE_DIR at a folder")


def test_a_usable_cache_folder_is_made_and_listed(tmp_path, monkeypatch):
    folder = tmp_path / "new" / "cache"
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(folder))
    result = runner.invoke(app, ["cache", "ls"])
    assert result.exit_code == 0, result.output
    assert f"0 entries in {folder}" in " ".join(result.output.split()) and folder.is_dir()
    assert list(folder.iterdir()) == []  # the write check left nothing behind
