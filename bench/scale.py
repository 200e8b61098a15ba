"""Memory, cache size and speed as the number of photos grows: one feature-extraction trial per size.

    python bench/scale.py [--sizes 4000 16000 64000] [--image-size 150] [--epochs 2] [--out bench/scale.json]

For each size, a synthetic two-class set of that many photos (`harness data synthetic`), then in
a fresh process one sweep of one feature-extraction trial (MobileNetV2, random weights: cost, not
accuracy, is measured) with the trials' features streamed from the cache files
(HARNESS_MEMORY_BUDGET=0; `--memory` holds them in RAM instead). Reports the process's peak
resident memory, the cache entry's size, extraction images/s (decode to sealed cache) and the
seconds of the trial's second epoch (the first also traces the model), and fits epoch seconds
against the number of training rows. Cost grows linearly with the photos: writing them, one
backbone pass over each, and 2 epochs over the training split.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import OPTIONAL, add_common, emit, make_parser

CHILD = """
import json, resource, sys
import harness
from mlflow import MlflowClient
data, store, size, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
result = harness.sweep("feature-extraction", data=data, tracking_uri=store, backbone="mobilenet_v2", weights="none",
                       image_size=size, epochs=epochs, max_trials=1, seed=1, experiment="scale")
run = result.trials[0].run_id
stamps = [m.timestamp for m in MlflowClient(store).get_metric_history(run, "val_accuracy")]
params = MlflowClient(store).get_run(run).data.params
print(json.dumps({"peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2,
                  "extraction_s": result.extraction_seconds, "epoch_s": (stamps[-1] - stamps[-2]) / 1000,
                  "feature_reads": params["feature_reads"], "sweep_s": result.seconds}))
"""


def _one(images: int, args, tmp: Path) -> dict:
    from harness.data._folders import write_synthetic

    data = write_synthetic(tmp / f"photos-{images}", per_class=-(-images // 6), size=args.image_size)
    cache = tmp / f"cache-{images}"
    env = {**os.environ, "HARNESS_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("HARNESS_MEMORY_BUDGET", None) if args.memory else env.__setitem__("HARNESS_MEMORY_BUDGET", "0")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(data), f"sqlite:///{tmp / f'store-{images}.db'}",
                          str(args.image_size), str(args.epochs)], env=env, cwd=tmp, capture_output=True,
                         text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    total = 6 * -(-images // 6)
    cache_bytes = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
    return {"images": total, "train_rows": 2 * -(-images // 6), "cache_gb": cache_bytes / 1e9,
            "extraction_images_per_s": total / report["extraction_s"], "wall_s": time.perf_counter() - start,
            **report}


def main(argv=None) -> dict:
    p = make_parser(__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[4000, 16000, 64000])
    p.add_argument("--image-size", type=int, default=150)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--memory", action="store_true", help="hold the features in RAM (default: stream them)")
    add_common(p, out=OPTIONAL)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scale-", dir=os.environ.get("TMPDIR")) as tmp:
        rows = [_one(n, args, Path(tmp)) for n in args.sizes]
    slope, intercept = np.polyfit([r["train_rows"] for r in rows], [r["epoch_s"] for r in rows], 1)
    report = {"image_size": args.image_size, "epochs": args.epochs, "rows": rows,
              "epoch_s_per_1000_train_rows": 1000 * slope, "epoch_s_intercept": intercept,
              "rss_growth": rows[-1]["peak_rss_gb"] / rows[0]["peak_rss_gb"] - 1,
              "extraction_rate_spread": max(r["extraction_images_per_s"] for r in rows)
              / min(r["extraction_images_per_s"] for r in rows) - 1}
    return emit(report, args.out)


if __name__ == "__main__":
    main()
