"""Extraction end to end (decode to sealed cache, every split) against the backbone pass alone, in one run.

    python bench/extraction.py --data DIR [--weights PATH] [--backbones vgg16 mobilenet_v2]
        [--image-size 150] [--out bench/extraction.json]

For each backbone: the network's own images/s on in-memory batches of the extraction's size (the
extractor harness builds: preprocessing, the cut and the top features, in the pass precision
`auto` picks), then a cold-cache extraction of every split of DIR through
harness.training._prepare.cached_features, and their ratio. `--weights` is used for
mobilenet_v2 (the shared file); other backbones run with random weights (same cost). Cost: one
backbone pass over every photo per backbone, plus a few hundred images for the probe.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from _common import OPTIONAL, add_common, make_parser, write_json

PROBE_BATCHES = 8


def pass_rate(extractor, size: int, batch: int, batches: int = PROBE_BATCHES) -> float:
    """Images/s of the extractor itself on decoded images already in memory, after one warm-up batch."""
    x = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")
    extractor.predict_on_batch(x)
    start = time.perf_counter()
    for _ in range(batches):
        extractor.predict_on_batch(x)
    return batches * batch / (time.perf_counter() - start)


def measure(backbone: str, data: str, weights: str, size: int) -> dict:
    from harness.config import SweepConfig, validate
    from harness.data._folders import scan
    from harness.training._prepare import build_network, cached_features

    cfg = validate(SweepConfig(method="fine-tune", data=data, backbone=backbone, weights=weights, image_size=size))
    dataset, net = scan(cfg.data), build_network(cfg)
    alone = pass_rate(net.extractor, size, cfg.batch_size)
    with tempfile.TemporaryDirectory(prefix="extraction-") as cache:
        os.environ["HARNESS_CACHE_DIR"] = cache
        feats = cached_features(cfg, net, dataset)
    images = sum(len(p.files) for p in dataset.splits.values())
    end_to_end = images / feats.seconds
    return {"backbone": backbone, "precision": net.precision, "images": images, "pass_images_per_s": alone,
            "end_to_end_images_per_s": end_to_end, "ratio": end_to_end / alone, "extraction_s": feats.seconds}


def main(argv=None) -> dict:
    p = make_parser(__doc__)
    p.add_argument("--data", required=True)
    p.add_argument("--weights", default="none", help="mobilenet_v2's weights file (others: random)")
    p.add_argument("--backbones", nargs="+", default=["vgg16", "mobilenet_v2"])
    p.add_argument("--image-size", type=int, default=150)
    add_common(p, out=OPTIONAL)
    args = p.parse_args(argv)
    rows = [measure(b, args.data, args.weights if b == "mobilenet_v2" else "none", args.image_size)
            for b in args.backbones]
    for r in rows:
        print(f"{r['backbone']:<14} {r['precision']:<9} pass {r['pass_images_per_s']:7.1f} images/s  "
              f"end to end {r['end_to_end_images_per_s']:7.1f} images/s  ratio {r['ratio']:.2f}")
    report = {"image_size": args.image_size, "rows": rows}
    if args.out:
        write_json(args.out, report)
    return report


if __name__ == "__main__":
    main()
