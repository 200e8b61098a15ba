"""Extraction images/s of each backbone at one image size, every family measured in one run.

    python bench/backbones.py [--backbones resnet50 ...] [--image-size 150] [--batches 3]
        [--out bench/backbones.json]

For each backbone (default: the smallest member of every family): the extractor harness builds
(preprocessing, the part below the unfreeze = 1 cut and the top features, in the precision `auto`
picks, random weights: the same cost as ImageNet's) on in-memory batches of the sweep's batch
size, after one warm-up batch. Extraction is one pass over every photo, so its cost grows
linearly with the photos: `seconds_per_1000` is what 1,000 photos take (decoding aside; see
bench/extraction.py for end to end). Ratios are to the fastest backbone of the same run.
"""

from __future__ import annotations

from _common import OPTIONAL, add_common, emit, make_parser
from extraction import pass_rate

SMALLEST = ["vgg16", "resnet50", "resnet50_v2", "mobilenet", "mobilenet_v2", "mobilenet_v3_small",
            "efficientnet_b0", "efficientnet_v2_b0", "convnext_tiny", "densenet121", "xception",
            "inception_v3", "inception_resnet_v2", "nasnet_mobile"]


def measure(backbone: str, size: int, batches: int) -> dict:
    import keras

    from harness.config import SweepConfig, validate
    from harness.training._prepare import build_network

    cfg = validate(SweepConfig(method="fine-tune", backbone=backbone, weights="none", image_size=size))
    net = build_network(cfg)
    rate = pass_rate(net.extractor, size, cfg.batch_size, batches)
    row = {"backbone": backbone, "precision": net.precision, "parameters": net.extractor.count_params(),
           "cut_layer": net.cut_layer, "top_features": list(net.full.output.shape[1:]),
           "images_per_s": rate, "seconds_per_1000": 1000 / rate}
    keras.backend.clear_session()
    return row


def main(argv=None) -> dict:
    p = make_parser(__doc__)
    p.add_argument("--backbones", nargs="+", default=SMALLEST)
    p.add_argument("--image-size", type=int, default=150)
    p.add_argument("--batches", type=int, default=3, help="timed batches of the sweep's batch size (64) each")
    add_common(p, out=OPTIONAL)
    args = p.parse_args(argv)
    rows = [measure(b, args.image_size, args.batches) for b in args.backbones]
    fastest = max(r["images_per_s"] for r in rows)
    for r in rows:
        r["ratio_to_fastest"] = r["images_per_s"] / fastest
    return emit({"image_size": args.image_size, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
