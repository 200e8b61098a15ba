"""The data fingerprint is file content, and a feature-cache entry is either whole or not used:
a photo changed in place is a cache miss and a new sweep; a full disk mid-write leaves nothing
a later run would use."""

from __future__ import annotations

import errno
import os
import signal

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import runs_of, tiny_sweep_args
from harness.training import _feature_cache as features
from harness.progress import NullReporter
from harness.cli import app
from harness.data._folders import fingerprint, scan, write_synthetic

runner = CliRunner()


def _with_a_bmp(root):
    """Replace one JPEG by a BMP of the same size: any change to its pixels keeps its byte size."""
    jpg = root / "train" / "cats" / "cat.0.jpg"
    bmp = jpg.with_suffix(".bmp")
    Image.open(jpg).save(bmp)
    jpg.unlink()
    return bmp


def _repaint(bmp) -> None:
    size = bmp.stat().st_size
    pixels = np.asarray(Image.open(bmp)).copy()
    pixels[:4] = 255 - pixels[:4]
    Image.fromarray(pixels).save(bmp)
    assert bmp.stat().st_size == size  # same name, same size: only the content tells them apart


def _interrupt_first_trial(patch):
    from harness.tuning._tuner import TrackedTuner

    real = TrackedTuner.run_trial

    def run_trial(self, trial, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(self, trial, *args, **kwargs)

    patch.setattr(TrackedTuner, "run_trial", run_trial)


def test_the_fingerprint_reads_content_not_names_and_sizes(tmp_path):
    root = write_synthetic(tmp_path / "photos", per_class=2, size=16)
    bmp = _with_a_bmp(root)
    files = sorted(root.rglob("*.*"))
    before = fingerprint(root, files)
    _repaint(bmp)
    assert fingerprint(root, files) != before


@pytest.mark.slow  # two sweeps: CI's slow step
def test_a_photo_changed_in_place_is_a_cache_miss_and_a_new_sweep(tmp_path, store_uri, client, monkeypatch):
    root = write_synthetic(tmp_path / "photos", per_class=3, size=24)
    bmp = _with_a_bmp(root)
    args = tiny_sweep_args("feature-extraction", root, store_uri, "--max-trials", "1", "--epochs", "1")
    with monkeypatch.context() as patch:  # (undoing `monkeypatch` itself would drop the test's cache dir)
        _interrupt_first_trial(patch)
        assert runner.invoke(app, args).exit_code == 143  # interrupted: resumable by the same command
    _repaint(bmp)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    parents, _ = runs_of(client, "photos")
    new, old = sorted(parents, key=lambda p: -p.info.start_time)
    assert (old.info.status, new.info.status) == ("KILLED", "FINISHED")  # not resumed: other data
    assert new.data.tags["feature_cache"] == "miss"  # the old pixels' features were not reused
    assert new.data.tags["data_fingerprint"] != old.data.tags["data_fingerprint"]
    assert new.data.tags["sweep_key"] != old.data.tags["sweep_key"]


@pytest.mark.slow  # two sweeps: CI's slow step
def test_a_full_disk_mid_write_leaves_no_entry_and_the_next_run_extracts_again(tiny_data, store_uri, client,
                                                                               monkeypatch):
    real, calls = os.posix_fallocate, []

    def disk_fills_up(fd, offset, length):  # the third file (validation split) gets half its blocks
        calls.append(length)
        if len(calls) == 3:
            real(fd, offset, length // 2)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, offset, length)

    args = tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--max-trials", "1", "--epochs", "1")
    with monkeypatch.context() as patch:
        patch.setattr(os, "posix_fallocate", disk_fills_up)
        result = runner.invoke(app, args)
    assert calls and result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no space left for the feature cache" in errors[0], result.output
    assert "HARNESS_CACHE_DIR" in errors[0] and "Traceback" not in result.output
    assert client.get_experiment_by_name("tiny") is None  # nothing logged, nothing RUNNING
    left = [p.name for p in features.cache_root().iterdir() if p.suffix != ".lock"]  # the writers' lock files stay
    assert features.list_entries() == [] and left == []  # no half entry

    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (parent,), _ = runs_of(client, "tiny")
    assert parent.info.status == "FINISHED" and parent.data.tags["feature_cache"] == "miss"
    assert len(features.list_entries()) == 1


def test_an_entry_cut_short_is_extracted_again(tiny_data):
    from harness.config import SweepConfig
    from harness.training._prepare import build_network, cached_features

    cfg = SweepConfig(method="feature-extraction", data=str(tiny_data), weights="none", image_size=32,
                      batch_size=5, precision="float32")
    net, data, extracted = build_network(cfg), scan(tiny_data), []

    class Seen(NullReporter):
        def extracting(self, split, count):
            extracted.append(split)

    def entry():
        return cached_features(cfg, net, data, reporter=Seen())

    first = entry()
    victim = first.path / "test.top.npy"  # as if the machine had died before this reached the disk
    with open(victim, "r+b") as f:
        f.truncate(victim.stat().st_size // 2)
    again = entry()
    assert not again.hit and extracted == ["train", "validation", "test"] * 2
    np.testing.assert_array_equal(np.asarray(again.arrays["top"]["train"]), np.asarray(first.arrays["top"]["train"]))
    assert entry().hit and len(extracted) == 6
