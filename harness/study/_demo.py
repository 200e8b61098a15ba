"""`harness demo`: synthetic photos, a random-weight backbone, both methods, a few trials each."""

from __future__ import annotations

from pathlib import Path

from harness import config as config
from harness.data._folders import write_synthetic
from harness.study._sweep import SweepResult, run_sweep

# Small enough for 2 CPU cores in well under 3 minutes, big enough to show learning curves.
DEMO_SETTINGS = {
    "backbone": "vgg16",  # random VGG16 features keep colour and texture; MobileNetV2's vanish
    "weights": "none",
    "image_size": 64,
    "epochs": 4,
    "batch_size": 16,
    "max_trials": 3,
    "experiment": "demo",
    "seed": 7,
}


def run_demo(data_dir: str | Path = "data/synthetic", tracking_uri: str | None = None,
             reporter=None) -> list[SweepResult]:
    data_dir = Path(data_dir)
    if not (data_dir / "train").is_dir():
        write_synthetic(data_dir, per_class=24, size=64, seed=0)
    results = []
    for method in config.METHODS:
        cfg = config.validate(config.parse({**DEMO_SETTINGS, "data": str(data_dir)}, method))
        results.append(run_sweep(cfg, tracking_uri, reporter))
    return results
