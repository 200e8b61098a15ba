"""Training on cached features is the same network as the tutorial's model on images."""

import keras
import keras_tuner as kt
import numpy as np
import pytest

from harness.config import SweepConfig, SearchSpace
from harness.training._methods import FineTune
from harness.training._prepare import build_network


@pytest.mark.parametrize("backbone, size", [("vgg16", 48), ("mobilenet_v2", 64)])
def test_top_block_on_cached_inputs_equals_full_model_on_images(backbone, size):
    cfg = SweepConfig(method="fine-tune", backbone=backbone, weights="none", image_size=size,
                      precision="float32")
    net = build_network(cfg)
    if backbone == "mobilenet_v2":  # random BN statistics make activations vanish; keep them sizeable
        for model in (net.full, net.top_block):
            for layer in model._flatten_layers():
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.moving_variance.assign(np.full(layer.moving_variance.shape, 0.05, "float32"))
    hm = FineTune(SearchSpace(), net.top_block, epochs=1, n_classes=2)
    trial_model = hm.build(kt.HyperParameters())  # [top block + head] on cut features, as trials train it
    head = trial_model.get_layer("head")
    images = keras.Input((size, size, 3))
    tutorial = keras.Model(images, head(net.full(images)))  # preprocessing + whole base + head on images

    x = np.random.default_rng(0).uniform(0, 255, (6, size, size, 3)).astype("float32")
    cut, _ = net.extractor.predict(x, verbose=0)
    cached = trial_model.predict(cut, verbose=0)
    direct = tutorial.predict(x, verbose=0)
    assert np.abs(cached - direct).max() <= 1e-4
    assert cached.std() > 0  # the comparison is between non-trivial outputs


@pytest.mark.slow  # the full network on images every epoch
def test_fresh_augmentation_runs_the_full_network_and_says_so(tiny_data, store_uri, client, tmp_path):
    """augment_views = 0: the tutorial's way, new random transformations every epoch, no cache."""
    from typer.testing import CliRunner

    from conftest import runs_of, tiny_sweep_args
    from harness.cli import app

    sweep_file = tmp_path / "augment.toml"
    sweep_file.write_text('method = "fine-tune"\naugment = true\naugment_views = 0\n')
    args = tiny_sweep_args("fine-tune", tiny_data, store_uri, "--max-trials", "1", "--epochs", "1",
                           "--config", str(sweep_file))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (parent,), (child,) = runs_of(client, "tiny")
    assert parent.data.tags["feature_cache"].startswith("off (augment_views = 0")
    assert parent.data.tags["augment"] == "true"
    assert child.info.status == "FINISHED" and child.data.params["augment"] == "True"
    assert child.data.params["augment_views"] == "0"
    assert len(client.get_metric_history(child.info.run_id, "val_accuracy")) == 2


def test_cached_feature_pipeline_reshuffles_train_and_keeps_other_splits_in_order(tmp_path):
    from harness.training._trial_data import TrialData
    from harness.training._seeding import seed_everything

    n = 10
    rows = np.arange(n, dtype="float16")[:, None] * np.ones((1, 3), "float16")  # row i holds i
    np.save(tmp_path / "rows.npy", rows)  # as the cache holds them: a file, memory-mapped
    arrays = {"top": {s: np.load(tmp_path / "rows.npy", mmap_mode="r") for s in ("train", "validation")}}
    labels = {s: np.arange(n) % 2 for s in ("train", "validation")}

    def epochs(ds, count):
        xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in ds.take(count * 3)))  # 3 batches of 4 per epoch
        x, y = np.concatenate(xs), np.concatenate(ys)
        assert np.array_equal(y, x[:, 0] % 2)  # each label stays with its row
        return [[int(v) for v in x[i * n:(i + 1) * n, 0]] for i in range(count)]

    for streamed in (False, True):
        data = TrialData(labels, {}, batch_size=4, class_names=("a", "b"), arrays=arrays, streamed=streamed)
        seed_everything(5)
        first, second = epochs(data.train_args("top")["x"], 2)
        assert sorted(first) == sorted(second) == list(range(n)) and first != second
        assert epochs(data.dataset("top", "validation"), 1) == [list(range(n))]
        seed_everything(5)
        assert epochs(data.train_args("top")["x"], 2) == [first, second]  # a trial's order follows from its seed
        seed_everything(5)
        assert epochs(data.train_args("top", first_epoch=1)["x"], 1) == [second]  # and the epoch's number
