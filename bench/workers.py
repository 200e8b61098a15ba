"""Benchmark: wall time of the same sweep with 1 and with 2 local workers (`--workers N`).

Synthetic photos, random-weight VGG16, features cached once before timing, so both runs do
the same trials on the same cached features. Writes bench/workers.json and prints it.

    .venv/bin/python bench/workers.py [--trials 6] [--epochs 5] [--per-class 40]

Cost: three sweeps (a 1-trial warm-up that extracts the features, then --trials twice), each
trial 2 x --epochs epochs (fine-tune's two phases) over 6 x --per-class photos.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, add_common, make_parser, write_json


def sweep(data: Path, store: Path, args, *extra: str) -> float:
    cmd = [sys.executable, "-m", "harness", "sweep", "fine-tune",
           "--data", str(data), "--tracking-uri", f"sqlite:///{store / 'mlflow.db'}", "--backbone", "vgg16",
           "--weights", "none", "--image-size", "48", "--epochs", str(args.epochs), "--seed", "1", *extra]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = add_common(make_parser(__doc__), trials=6, epochs=5)
    parser.add_argument("--per-class", type=int, default=40)
    args = parser.parse_args()
    from harness.data._folders import write_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["HARNESS_CACHE_DIR"] = str(tmp / "cache")
        data = write_synthetic(tmp / "photos", per_class=args.per_class, size=48)
        sweep(data, tmp / "warm", args, "--max-trials", "1")  # fills the feature cache
        seconds = {n: sweep(data, tmp / f"w{n}", args, "--max-trials", str(args.trials), "--workers", str(n))
                   for n in (1, 2)}
    report = {"trials": args.trials, "epochs_per_phase": args.epochs, "images": 6 * args.per_class,
              "cpus": len(os.sched_getaffinity(0)), "seconds_1_worker": round(seconds[1], 1),
              "seconds_2_workers": round(seconds[2], 1), "speedup": round(seconds[1] / seconds[2], 2)}
    write_json(ROOT / "bench" / "workers.json", report)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
