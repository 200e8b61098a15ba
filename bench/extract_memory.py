"""Peak memory of a feature extraction over many images (the cache streams to disk).

    python bench/extract_memory.py --images 25000 [--backbone mobilenet_v2 --image-size 150]

Writes a synthetic set of that many images (`harness data synthetic`), then extracts its
features into the cache in a fresh process (what a sweep does before its first trial) and
reports that process's peak resident memory. Training afterwards holds the split's features
in memory as float32, which is a separate cost (about 3.2 GB for 25,000 MobileNetV2 images).

Cost: time grows linearly with --images (writing each photo, then one backbone pass over it).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import OPTIONAL, ROOT, add_common, emit, make_parser

CHILD = """
import sys, time
from harness.config import SweepConfig, validate
from harness.data._folders import scan
from harness.training._prepare import build_network, cached_features
cfg = validate(SweepConfig(method="feature-extraction", data=sys.argv[1], backbone=sys.argv[2],
                           weights="none", image_size=int(sys.argv[3])))
data = scan(cfg.data)
net = build_network(cfg)
start = time.perf_counter()
cached_features(cfg, net, data)
print(time.perf_counter() - start)
"""

def main(argv=None) -> dict:
    p = make_parser(__doc__)
    p.add_argument("--images", type=int, default=25000)
    add_common(p, backbone=True, out=OPTIONAL)
    args = p.parse_args(argv)
    from harness.data._folders import write_synthetic

    with tempfile.TemporaryDirectory(prefix="extract-memory-") as tmp:
        per_class = -(-args.images // 6)
        data = write_synthetic(Path(tmp) / "photos", per_class=per_class, size=args.image_size)
        env = {"HARNESS_CACHE_DIR": str(Path(tmp) / "cache"), "PATH": "/usr/bin:/bin"}
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", CHILD, str(data), args.backbone, str(args.image_size)],
                             env=env, cwd=ROOT, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # Linux: KiB
    report = {"images": 6 * per_class, "backbone": args.backbone, "image_size": args.image_size,
              "peak_rss_gb": peak_gb, "extract_s": float(out.stdout.strip().splitlines()[-1]), "wall_s": wall}
    return emit(report, args.out)


if __name__ == "__main__":
    main()
