"""The feature cache: one backbone pass per key, memory-mapped on disk, listed and cleared."""

import numpy as np
from typer.testing import CliRunner

from harness.training import _extraction as extraction
from harness.training import _feature_cache as features
from harness.cli import app
from harness.data._folders import image_dataset, scan
from harness.training._prepare import build_network
from harness.config import SweepConfig


def _key(data, **changes):
    fields = dict(backbone="vgg16", alpha=None, weights="none", image_size=32, preprocessing="caffe",
                  cut_layer="block4_pool", data_fingerprint=data.fingerprint)
    return features.FeatureKey(**{**fields, **changes})


def test_extract_once_then_hit(tiny_data):
    data = scan(tiny_data)
    cfg = SweepConfig(method="fine-tune", data=str(tiny_data), weights="none", image_size=32,
                      precision="float32")
    net = build_network(cfg)
    extractor, top = net.extractor, net.top_block
    calls = []

    def images(split):
        calls.append(split)
        return image_dataset(tiny_data, data.splits[split], 32, 5, data.class_names)

    first = extraction.extract(_key(data), data, extractor, images)
    assert not first.hit and calls == ["train", "validation", "test"]
    assert first.shape == {"cut": (2, 2, 512), "top": (1, 1, 512)}
    assert isinstance(first.arrays["top"]["train"], np.memmap)
    # the test split in float32, exactly what the network computes on the images
    assert first.arrays["top"]["train"].dtype == np.float16 and first.arrays["top"]["test"].dtype == np.float32
    test_images = np.concatenate([x for x, _ in images("test")])
    np.testing.assert_allclose(extractor.predict(test_images, verbose=0)[1], first.arrays["top"]["test"],
                               rtol=1e-5, atol=1e-6)
    assert first.labels["test"].tolist() == data.splits["test"].labels.tolist()

    second = extraction.extract(_key(data), data, extractor, images)
    assert second.hit and calls == ["train", "validation", "test", "test"]
    np.testing.assert_array_equal(first.arrays["top"]["test"], second.arrays["top"]["test"])

    # the cached top features are the top block applied to the cached cut features
    recomputed = top.predict(np.asarray(first.arrays["cut"]["test"], "float32"), verbose=0)
    np.testing.assert_allclose(recomputed, first.arrays["top"]["test"], rtol=1e-5, atol=1e-5)


def test_key_changes_with_what_changes_the_features(tiny_data):
    data = scan(tiny_data)
    base = _key(data).digest()
    assert _key(data, weights="sha256:abc").digest() != base
    assert _key(data, image_size=48).digest() != base
    assert _key(data, preprocessing="rescale").digest() != base
    assert _key(data, data_fingerprint="other").digest() != base
    assert _key(data).digest() == base


def test_cache_ls_and_clear(tiny_data):
    runner = CliRunner()
    data = scan(tiny_data)
    cfg = SweepConfig(method="feature-extraction", data=str(tiny_data), weights="none", image_size=32)
    extractor = build_network(cfg).extractor
    extraction.extract(_key(data), data, extractor, lambda s: image_dataset(tiny_data, data.splits[s], 32, 5, data.class_names))
    listed = runner.invoke(app, ["cache", "ls"])
    assert listed.exit_code == 0 and "1 entries" in listed.output and "36 images" in listed.output
    cleared = runner.invoke(app, ["cache", "clear"])
    assert cleared.exit_code == 0 and "freed" in cleared.output
    assert features.list_entries() == []
