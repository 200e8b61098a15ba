"""What K cached augmented views buy: validation accuracy of fixed heads trained on K views, K = 0..max.

    python bench/augment_views.py --data DIR --weights PATH --out FILE.json [--image-size 150
        --max-views 10 --views 1 2 5 10 --epochs 20 --seeds 2 --pooling flatten avg
        --head 128,0.5,1e-4]

Extracts `max-views` views of every training image once (through the feature cache: set
HARNESS_CACHE_DIR to keep them between runs) and the plain features, then trains each head
(units, dropout, learning rate) for `epochs` epochs on the first K views of each image, for
every K in `views` (0: no augmentation, the plain features), with `seeds` seeds each, and
reports the best-epoch validation accuracy (and that epoch's test accuracy; nothing is chosen
on it). Also times the extraction per image: the cost of one more view.

Cost: two extractions (cached), growing with the photos: the plain features (every photo once)
and the views (max-views passes over the training photos, one over the rest); then
len(views) x len(head) x len(pooling) x seeds trainings of `epochs` epochs over K rows per
training photo.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np

from _common import EPOCHS, REQUIRED, add_common, make_parser, write_json


def train(prepared_hm, data, units: int, dropout: float, lr: float, pooling: str, epochs: int, seed: int):
    """(best val accuracy, its test accuracy, seconds) of one head trained as a trial trains it."""
    import keras_tuner as kt

    from harness.training._callbacks import KeepBestWeights
    from harness.training._seeding import seed_everything

    hp = kt.HyperParameters()
    prepared_hm.poolings = (pooling,)
    prepared_hm.declare_hyperparameters(hp)
    hp.values.update(units=units, dropout=dropout, learning_rate=lr)
    start = time.perf_counter()
    seed_everything(seed)
    model = prepared_hm.build(hp)
    best = KeepBestWeights(model)
    prepared_hm.fit(hp, model, data, callbacks=[best], epochs=epochs)
    best.restore()
    _, test = model.evaluate(data.dataset("top", "test"), verbose=0)
    return best.best_logs["val_accuracy"], float(test), time.perf_counter() - start


def first_views(arrays, k_max: int, k: int):
    """The train rows of the first k views of every image (rows are image * K + view)."""
    train = np.asarray(arrays["top"]["train"])
    n = len(train) // k_max
    return train.reshape(n, k_max, *train.shape[1:])[:, :k].reshape(n * k, *train.shape[1:])


def main(argv=None) -> dict:
    p = add_common(make_parser(__doc__), data=REQUIRED, out=REQUIRED, backbone=True, epochs=EPOCHS)
    p.add_argument("--max-views", type=int, default=10)
    p.add_argument("--views", type=int, nargs="+", default=[0, 1, 2, 5, 10])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--pooling", nargs="+", default=["flatten"])
    p.add_argument("--head", nargs="+", default=["128,0.5,1e-4"], help="units,dropout,learning_rate")
    args = p.parse_args(argv)

    from harness.config import SweepConfig, validate
    from harness.data._folders import scan
    from harness.training._prepare import build_network, cached_features

    cfg = validate(SweepConfig(method="feature-extraction", data=args.data, backbone=args.backbone,
                               weights=args.weights, image_size=args.image_size, augment=True,
                               augment_views=args.max_views))
    dataset = scan(cfg.data)
    net = build_network(cfg)
    plain = cached_features(dataclasses.replace(cfg, augment=False), net, dataset)
    views = cached_features(cfg, net, dataset)
    n_images = sum(len(s.files) for s in dataset.splits.values())
    n_train = len(dataset.splits["train"].files)
    report = {"args": vars(args), "extraction": {
        "plain_s": plain.seconds, "plain_images": n_images, "views_s": views.seconds,
        "views_images": n_images + (args.max_views - 1) * n_train,
        "cache_hit": {"plain": plain.hit, "views": views.hit}}, "runs": []}
    _train_all(args, cfg, dataset, plain, views, report)
    write_json(args.out, report)
    print(json.dumps(report["extraction"]))
    return report


def _train_all(args, cfg, dataset, plain, views, report: dict) -> None:
    """Every (K, head, pooling, seed) run into report["runs"], written out after each."""
    from harness.training._methods import FeatureExtraction
    from harness.training._trial_data import TrialData

    labels = {s: p.labels for s, p in dataset.splits.items()}
    hm = FeatureExtraction(cfg.space, {args.image_size: plain.shape["top"]}, args.epochs, len(dataset.class_names))
    for k in args.views:
        arrays = {"top": {**plain.arrays["top"], "train": first_views(views.arrays, args.max_views, k)}} if k \
            else plain.arrays
        for head in args.head:
            units, dropout, lr = head.split(",")
            for pooling in args.pooling:
                data = TrialData(labels, {}, cfg.batch_size, dataset.class_names, arrays=arrays, views=k)
                for seed in range(args.seeds):
                    val, test, secs = train(hm, data, int(units), float(dropout), float(lr), pooling,
                                            args.epochs, 100 + seed)
                    run = {"views": k, "head": head, "pooling": pooling, "seed": 100 + seed,
                           "val_accuracy": val, "test_accuracy": test, "seconds": secs}
                    report["runs"].append(run)
                    print(json.dumps(run), flush=True)
                    write_json(args.out, report)  # so far, in case it is stopped


if __name__ == "__main__":
    main()
