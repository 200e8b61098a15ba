"""Filling the cache: a killed extraction resumes from its last sealed chunk, and an entry the
disk cannot hold is refused in one line before any extraction."""

import shutil
from collections import namedtuple

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import tiny_sweep_args
from harness.cli import app
from harness.config import SweepConfig
from harness.data._folders import image_dataset, scan
from harness.training import _extraction as extraction
from harness.training import _feature_cache as features
from harness.training._prepare import build_network


class Counting:
    """The extractor, counting the images it is given; raises after `fail_after` batches."""

    def __init__(self, extractor, fail_after=None):
        self.extractor, self.outputs, self.fail_after, self.images = extractor, extractor.outputs, fail_after, 0

    def predict_on_batch(self, x):
        if self.fail_after is not None and self.fail_after == 0:
            raise KeyboardInterrupt  # as if killed
        self.fail_after = None if self.fail_after is None else self.fail_after - 1
        self.images += len(x)
        return self.extractor.predict_on_batch(x)


def test_a_killed_extraction_resumes_from_its_last_sealed_chunk(tiny_data, monkeypatch):
    monkeypatch.setattr(extraction, "CHUNK_BATCHES", 2)
    data = scan(tiny_data)
    cfg = SweepConfig(method="fine-tune", data=str(tiny_data), weights="none", image_size=32, precision="float32")
    net = build_network(cfg)
    key = features.FeatureKey("vgg16", None, "none", 32, "caffe", "block4_pool", data.fingerprint)

    def images(split):  # batches of 2: the 12 training images make 6 batches, 3 chunks
        return image_dataset(tiny_data, data.splits[split], 32, 2, data.class_names)

    killed = Counting(net.extractor, fail_after=3)  # chunk 1 (batches 1-2) sealed, batch 3 lost
    with pytest.raises(KeyboardInterrupt):
        extraction.extract(key, data, killed, images)
    assert killed.images == 6 and features.list_entries() == []
    resumed = Counting(net.extractor)
    entry = extraction.extract(key, data, resumed, images)
    total = sum(len(p.files) for p in data.splits.values())
    assert not entry.hit and resumed.images == total - 4  # the 4 sealed rows are not recomputed
    shutil.rmtree(entry.path)
    fresh = extraction.extract(key, data, net.extractor, images)
    for layer in ("cut", "top"):
        for split in data.splits:
            np.testing.assert_array_equal(entry.arrays[layer][split], fresh.arrays[layer][split])
    assert entry.labels["train"].tolist() == data.splits["train"].labels.tolist()


def test_an_entry_the_disk_cannot_hold_is_one_line_before_any_extraction(tiny_data, store_uri, client, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(extraction.shutil, "disk_usage", lambda path: usage(10 ** 9, 10 ** 9 - 1000, 1000))
    result = CliRunner().invoke(app, tiny_sweep_args("fine-tune", tiny_data, store_uri))
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "the feature cache entry needs" in errors[0] and "only 0.00 GB are free" in errors[0]
    assert "extracting backbone features" not in result.output
    assert client.get_experiment_by_name("tiny") is None  # nothing logged


def test_a_sweep_says_how_large_its_cache_entry_is(tiny_data, store_uri):
    from harness.progress import NullReporter

    result = CliRunner().invoke(app, tiny_sweep_args("feature-extraction", tiny_data, store_uri, "--max-trials", "1",
                                                     "--epochs", "1"))
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line.startswith("feature cache entry: ")]

    planned = []

    class Planned(NullReporter):
        def cache_planned(self, nbytes, free, folder):
            planned.append(nbytes)

    data = scan(tiny_data)
    cfg = SweepConfig(method="fine-tune", data=str(tiny_data), weights="none", image_size=32, precision="float32")
    key = features.FeatureKey("vgg16", None, "none", 32, "caffe", "block4_pool", data.fingerprint, views="other")
    entry = extraction.extract(key, data, build_network(cfg).extractor,
                               lambda split: image_dataset(tiny_data, data.splits[split], 32, 5, data.class_names),
                               reporter=Planned())
    arrays = list(entry.path.glob("*.npy"))
    written = sum(f.stat().st_size for f in arrays)
    assert 0 <= written - planned[0] <= 128 * len(arrays)  # the estimate is the data; .npy headers aside
