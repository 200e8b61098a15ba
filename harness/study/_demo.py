"""`harness demo`: synthetic photos, a random-weight backbone, both methods, a few trials each, compared."""

from __future__ import annotations

from pathlib import Path

from harness import config as config
from harness.data._folders import write_synthetic
from harness.study._compare import Comparison, run_compare
from harness.study._sweep import SweepResult, run_sweep

# About a minute on 2 CPU cores. Three classes whose stripes and tints overlap (spread), so that
# neither method is perfect: on clearly separable photos every trial scores 1.000 and the demo
# would show nothing. Measured (seed 7): feature extraction val 0.819 / test 0.764, fine-tuning
# val 0.889 / test 0.861; tests/study/test_demo.py holds val and test within 0.15 of each other.
DEMO_DATA = {"per_class": 24, "size": 64, "seed": 0, "classes": 3, "spread": 60.0}
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
             reporter=None) -> tuple[list[SweepResult], Comparison]:
    """Both sweeps on the demo's photos (written on first use), then their comparison."""
    data_dir = Path(data_dir)
    if not (data_dir / "train").is_dir():
        write_synthetic(data_dir, **DEMO_DATA)
    results = []
    for method in config.METHODS:
        cfg = config.validate(config.parse({**DEMO_SETTINGS, "data": str(data_dir)}, method))
        results.append(run_sweep(cfg, tracking_uri, reporter))
    return results, run_compare(tracking_uri, DEMO_SETTINGS["experiment"], 0)
