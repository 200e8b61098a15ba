"""K cached augmented views: the epoch schedule, deterministic views, cache keys, and the cached
views being exactly what the naive path computes on images."""

import dataclasses

import keras
import numpy as np
import pytest

from harness.data import _augment as augment
from harness.data import _views as views
from harness.config import Augmentation, SweepConfig


def test_every_view_is_used_once_before_any_repeats_in_a_seeded_order():
    n, k, epochs = 7, 3, 9
    rows = np.stack([views.schedule(5, e, n, k) for e in range(epochs)])  # (epoch, position)
    for epoch_rows in rows:
        assert sorted(epoch_rows // k) == list(range(n))  # one view of every image per epoch
    seen = np.zeros((epochs, n), int)
    for e, epoch_rows in enumerate(rows):
        seen[e, epoch_rows // k] = epoch_rows % k  # the view image i got in epoch e
    for cycle in range(epochs // k):
        block = seen[cycle * k:(cycle + 1) * k]
        assert all(sorted(block[:, i]) == list(range(k)) for i in range(n))  # a permutation per image
    orders = [tuple(r // k) for r in rows]
    assert len(set(orders)) == epochs  # images are shuffled anew every epoch
    assert np.array_equal(rows, np.stack([views.schedule(5, e, n, k) for e in range(epochs)]))
    other = np.stack([views.schedule(6, e, n, k) for e in range(epochs)])
    assert not np.array_equal(rows, other)  # another trial seed, another schedule


def test_fit_trains_each_epoch_on_that_epochs_rows():
    """The schedule reaches Keras' fit (steps per execution as harness compiles them, a last partial
    batch): row r holds r."""
    import tensorflow as tf

    from harness.training._methods import steps_per_execution
    from harness.training._trial_data import TrialData
    from harness.training._seeding import seed_everything

    n, k, batch = 10, 3, 4

    class Sums(keras.layers.Layer):
        def build(self, shape):
            self.sums = self.add_weight(shape=(3,), initializer="zeros", trainable=False)

        def call(self, x, training=False):
            if training:
                self.sums.assign_add(tf.stack([tf.reduce_sum(x), tf.reduce_sum(x ** 2),
                                               tf.cast(tf.shape(x)[0], "float32")]))
            return x

    sums = Sums()
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(sums(inputs)))
    model.compile(optimizer="adam", loss="binary_crossentropy", steps_per_execution=steps_per_execution(-(-n // batch)))
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: (seen.append(sums.sums.numpy().copy()), sums.sums.assign(np.zeros(3))))
    arrays = {"top": {"train": np.arange(n * k, dtype="float32")[:, None], "validation": np.zeros((4, 1), "float32")}}
    data = TrialData({"train": np.arange(n) % 2, "validation": np.arange(4) % 2}, {}, batch, ("a", "b"),
                     arrays=arrays, views=k)
    seed_everything(7)
    model.fit(**data.train_args("top", [record]), epochs=5, verbose=0)
    for epoch, got in enumerate(seen):
        rows = views.schedule(7, epoch, n, k).astype("float64")
        assert got.tolist() == [rows.sum(), (rows ** 2).sum(), n]


def test_a_view_is_the_same_image_whatever_batch_computes_it():
    settings = Augmentation(translation=0.1, contrast=0.3)
    made = augment.Views(settings, views=3, images=20, size=24)
    images = np.random.default_rng(0).uniform(0, 255, (20, 24, 24, 3)).astype("float32")
    rows = np.arange(20) * 3 + 1
    batch = made.apply(images, rows).numpy()
    perm = np.random.default_rng(1).permutation(20)
    assert np.array_equal(made.apply(images[perm], rows[perm]).numpy(), batch[perm])
    assert np.array_equal(made.apply(images[4:5], rows[4:5]).numpy()[0], batch[4])
    assert np.abs(batch - images).mean() > 1  # the views do differ from the images
    again = augment.Views(settings, views=3, images=20, size=24)
    assert np.array_equal(again.apply(images, rows).numpy(), batch)
    for other in (augment.Views(dataclasses.replace(settings, seed=1), 3, 20, 24),
                  augment.Views(settings, 4, 20, 24)):
        assert not np.array_equal(other.apply(images, rows).numpy(), batch)


def test_cache_key_changes_with_the_augmentation_settings_views_and_seed(tiny_data):
    from harness.data._folders import scan
    from harness.training._prepare import _feature_key, build_network

    dataset = scan(tiny_data)
    cfg = SweepConfig(method="feature-extraction", data=str(tiny_data), weights="none", image_size=32,
                      augment=True, augment_views=3)
    net = build_network(cfg)  # the same base for every configuration below

    def key(c):
        return _feature_key(c, net, dataset).digest()

    aug = cfg.augmentation
    changed = [dataclasses.replace(cfg, augment_views=4), dataclasses.replace(cfg, augment=False),
               *(dataclasses.replace(cfg, augmentation=dataclasses.replace(aug, **c)) for c in (
                   {"seed": 1}, {"rotation": 0.2}, {"zoom": 0.1}, {"flip": "none"}, {"translation": 0.1},
                   {"contrast": 0.2}))]
    digests = [key(c) for c in changed]
    assert key(cfg) not in digests and len(set(digests)) == len(digests)
    assert key(dataclasses.replace(cfg, seed=9, epochs=3, pooling="avg")) == key(cfg)  # trial settings share views
    assert key(dataclasses.replace(cfg, augment=False)) == key(dataclasses.replace(cfg, augment=False, augment_views=7))


def test_cached_views_are_the_backbone_on_the_views_the_naive_path_replays(tiny_data):
    """Row image * K + view of the cache is the frozen base on that view, as the naive path makes it."""
    import tensorflow as tf

    from harness.data._folders import scan
    from harness.training._prepare import _replay, build_network, cached_features

    dataset = scan(tiny_data)
    cfg = SweepConfig(method="fine-tune", data=str(tiny_data), weights="none", image_size=32, precision="float32",
                      augment=True, augment_views=3, batch_size=5)
    net = build_network(cfg)
    feats = cached_features(cfg, net, dataset)
    n = len(dataset.splits["train"].files)
    assert feats.arrays["top"]["train"].shape[0] == 3 * n and feats.arrays["cut"]["train"].shape[0] == 3 * n
    images, made = _replay(cfg, dataset, 32, 3)
    rows = np.array([0, 1, 2, 3 * n - 1, 3 * 5 + 2, 3 * 7])  # views of images 0, n - 1, 5 and 7, in another batch
    cut, top = net.extractor.predict_on_batch(made.apply(tf.gather(images, rows // 3), rows))
    np.testing.assert_allclose(np.asarray(feats.arrays["top"]["train"][rows], "float32"), top, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(np.asarray(feats.arrays["cut"]["train"][rows], "float32"), cut, rtol=2e-3, atol=2e-3)
    assert not np.allclose(top[0], top[1], rtol=2e-3, atol=2e-3)  # two views of one image differ


def _curves(cfg, use_cache: bool) -> dict[str, np.ndarray]:
    """Per-epoch curves of the search space's default trial, trained as a trial trains (no tuner)."""
    import keras_tuner as kt

    from harness.data._folders import scan
    from harness.training._prepare import prepare
    from harness.progress import NullReporter
    from harness.training._seeding import seed_everything

    seed_everything(cfg.seed)  # as run_sweep: the random-weight base is the same in every call
    prepared = prepare(cfg, scan(cfg.data), NullReporter(), use_cache=use_cache)
    hp = kt.HyperParameters()
    prepared.hypermodel.declare_hyperparameters(hp)
    seed_everything(cfg.seed)
    model = prepared.hypermodel.build(hp)
    histories = prepared.hypermodel.fit(hp, model, prepared.data)
    return {key: np.concatenate([h.history[key] for h in histories]) for key in ("loss", "val_loss", "val_accuracy")}


@pytest.mark.slow  # trains each method twice
@pytest.mark.parametrize("method", ["feature-extraction", "fine-tune"])
def test_cached_and_replayed_naive_augmented_training_agree(tiny_data, method):
    """Same views, same seeds: training on the cached views and the naive way (the float32 base
    inside the model, on the replayed views every epoch) give the same per-epoch curves, to float16
    rounding of the cache; training on another set of views does not (checked once, for FE)."""
    cfg = SweepConfig(method=method, data=str(tiny_data), backbone="vgg16", weights="none", image_size=32,
                      epochs=2, seed=3, precision="float32", augment=True, augment_views=2,
                      augmentation=Augmentation(translation=0.1, contrast=0.3))
    cached, naive = _curves(cfg, True), _curves(cfg, False)
    for key, tolerance in (("loss", 5e-4), ("val_loss", 5e-4), ("val_accuracy", 0.09)):
        assert len(cached[key]) == (2 if method == "feature-extraction" else 4)
        assert np.abs(cached[key] - naive[key]).max() <= tolerance, (key, cached[key], naive[key])
    if method == "feature-extraction":
        other = _curves(dataclasses.replace(cfg, augmentation=dataclasses.replace(cfg.augmentation, seed=1)), True)
        assert np.abs(cached["loss"] - other["loss"]).max() > 2e-3
