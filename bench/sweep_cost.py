"""What the feature cache buys: the same sweep the harness's way and the naive way, timed in one run.

    python bench/sweep_cost.py --data DIR --weights PATH --out FILE.json [--trials 10 --epochs 20
        --ft-trials 4 --ft-epochs 5 --backbone mobilenet_v2 --image-size 150
        --methods fe,ft,aug --views 5 --aug-trials 10 --aug-epochs 20 --aug-naive fresh,replay --skip-rates]

The naive way is the tutorial's: the float32 backbone runs inside every trial's model, every epoch.
The harness's way extracts features once (cold cache: its time is included) and trains on them.
Both sweeps use the same trials, seeds and hyperparameters; their per-trial validation accuracies
must agree within noise, else the fast path is wrong. It also measures the backbone pass against
this machine's own dense matmul rate, float32 and bfloat16 (`--skip-rates` leaves that out).

`aug` is feature extraction with augmentation: the harness's way trains on K cached augmented
views per image (`--views`, cold cache); `replay` runs the naive way on the same K views (same
views and seeds: per-trial validation accuracy must agree), `fresh` is the tutorial's way, new
random transformations every epoch (what K views cost in accuracy, if anything).

Cost: each naive sweep grows with trials x epochs x photos (the backbone runs every epoch); the
harness's with the photos once (x views for aug: the extraction) plus trials x epochs of head
steps. fe runs 3 sweeps (+ 2 of --precision-trials), ft 3, aug 1 + one per naive way.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import EPOCHS, REQUIRED, SEED, add_common, make_parser, write_json
from harness.backbones import _precision as hardware
from harness.config import SweepConfig, validate
from harness.study._sweep import run_sweep


def matmul_gflops(dtype: str, n: int = 4096, seconds: float = 3.0) -> float:
    """Dense n x n matmul rate through TensorFlow (oneDNN on CPU), the ceiling a conv net can approach."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)
    step = tf.function(lambda: tf.matmul(a, b))
    step().numpy()
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        out = step()
        reps += 1
    out.numpy()
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def model_gflops(model) -> float:
    """Forward FLOPs per image of the conv/dense layers (2 per multiply-add), read off the graph."""
    import keras

    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            total += 2 * h * w * c * int(np.prod(layer.kernel_size))
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c = layer.output.shape
            total += 2 * h * w * c * int(np.prod(layer.kernel_size)) * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return total / 1e9


def backbone_rate(backbone: str, size: int, precision: str, images: int = 192, batch: int = 32) -> dict:
    """Images/s of the frozen base's forward pass on in-memory batches (compute only, no decoding)."""
    from harness.backbones import _registry as backbones

    with hardware.dtype_policy(precision):
        base = backbones.build_base(backbone, size, "none")
    x = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")
    base.predict_on_batch(x)
    start = time.perf_counter()
    for _ in range(images // batch):
        base.predict_on_batch(x)
    rate = (images // batch) * batch / (time.perf_counter() - start)
    gflop = model_gflops(base)
    return {"images_per_s": rate, "gflop_per_image": gflop, "gflops": rate * gflop}


def timed_sweep(cfg: SweepConfig, use_cache: bool, store: Path, cache: Path) -> dict:
    os.environ["HARNESS_CACHE_DIR"] = str(cache)
    start = time.perf_counter()
    result = run_sweep(cfg, f"sqlite:///{store / 'mlflow.db'}", use_cache=use_cache)
    wall = time.perf_counter() - start
    trials = sorted(result.trials, key=lambda r: int(r.trial_id))
    return {"wall_s": wall, "extraction_s": result.extraction_seconds, "cache_hit": result.cache_hit,
            "val_accuracy": [r.val_accuracy for r in trials],
            "hyperparameters": [r.hyperparameters for r in trials]}


def compare_method(cfg: SweepConfig, work: Path) -> dict:
    """Naive (float32 backbone every epoch), harness cold cache, harness warm cache."""
    naive_cfg = dataclasses.replace(cfg, precision="float32")
    naive = timed_sweep(naive_cfg, False, work / "naive", work / "cache")
    fast = timed_sweep(cfg, True, work / "fast", work / "cache")
    again = timed_sweep(cfg, True, work / "again", work / "cache")
    assert naive["hyperparameters"] == fast["hyperparameters"], "the two sweeps ran different trials"
    diffs = np.abs(np.array(naive["val_accuracy"]) - np.array(fast["val_accuracy"]))
    return {"naive": naive, "harness": fast, "second_sweep": again,
            "speedup": naive["wall_s"] / fast["wall_s"],
            "val_accuracy_max_abs_diff": float(diffs.max()),
            "second_sweep_backbone_fraction": again["extraction_s"] / again["wall_s"]}


def precision_check(cfg: SweepConfig, work: Path, trials: int) -> dict:
    """Best FE validation accuracy from bfloat16 features vs float32 features, same trials."""
    out = {}
    for precision in ("float32", "bfloat16"):
        c = dataclasses.replace(cfg, precision=precision, max_trials=trials)
        out[precision] = max(timed_sweep(c, True, work / f"prec-{precision}", work / "cache")["val_accuracy"])
    out["abs_diff_points"] = 100 * abs(out["float32"] - out["bfloat16"])
    return out


def compare_augmented(cfg: SweepConfig, work: Path, naive_modes: list[str], save=lambda out: None) -> dict:
    """Cached K views (cold cache) vs the naive way replaying the same views and/or fresh augmentation.
    `save(out)` gets the results so far after every sweep (the naive ones take long)."""
    out = {"views": cfg.augment_views, "harness": timed_sweep(cfg, True, work / "cached", work / "cache")}
    save(out)
    naive_cfgs = {"replay": dataclasses.replace(cfg, precision="float32"),
                  "fresh": dataclasses.replace(cfg, precision="float32", augment_views=0)}
    cached = out["harness"]
    for mode in naive_modes:
        run = out[mode] = timed_sweep(naive_cfgs[mode], False, work / mode, work / "cache")
        assert run["hyperparameters"] == cached["hyperparameters"], "the sweeps ran different trials"
        out[f"speedup_vs_{mode}"] = run["wall_s"] / cached["wall_s"]
        out[f"best_val_accuracy_{mode}"] = max(run["val_accuracy"])
        out[f"best_within_0.01_of_{mode}"] = max(cached["val_accuracy"]) >= max(run["val_accuracy"]) - 0.01
        diffs = np.abs(np.array(run["val_accuracy"]) - np.array(cached["val_accuracy"]))
        out[f"val_accuracy_max_abs_diff_{mode}"] = float(diffs.max())
        save(out)
    out["best_val_accuracy_harness"] = max(cached["val_accuracy"])
    return out


def _print_augmented(r: dict) -> None:
    modes = [m for m in ("replay", "fresh") if m in r]
    print(f"\nfeature extraction with augmentation, {r['views']} cached views: harness {r['harness']['wall_s']:.0f}s "
          f"(extraction {r['harness']['extraction_s']:.0f}s), best val_acc {r['best_val_accuracy_harness']:.3f}")
    for mode in modes:
        print(f"  naive {mode}: {r[mode]['wall_s']:.0f}s -> speedup {r[f'speedup_vs_{mode}']:.1f}x; "
              f"best val_acc {r[f'best_val_accuracy_{mode}']:.3f}; per-trial max |diff| "
              f"{r[f'val_accuracy_max_abs_diff_{mode}']:.3f}")
    print("  trial  harness " + " ".join(f"{m:>8}" for m in modes))
    for i, v in enumerate(r["harness"]["val_accuracy"]):
        print(f"  #{i + 1:<5} {v:>7.3f} " + " ".join(f"{r[m]['val_accuracy'][i]:>8.3f}" for m in modes))


def _print_method(name: str, r: dict) -> None:
    print(f"\n{name}: naive {r['naive']['wall_s']:.0f}s, harness {r['harness']['wall_s']:.0f}s "
          f"(extraction {r['harness']['extraction_s']:.0f}s) -> speedup {r['speedup']:.1f}x; "
          f"second sweep {r['second_sweep']['wall_s']:.0f}s, backbone share "
          f"{100 * r['second_sweep_backbone_fraction']:.1f}%")
    print("  trial  naive val_acc  harness val_acc")
    for i, (a, b) in enumerate(zip(r["naive"]["val_accuracy"], r["harness"]["val_accuracy"])):
        print(f"  #{i + 1:<5} {a:>13.3f}  {b:>15.3f}")
    print(f"  max |diff| = {r['val_accuracy_max_abs_diff']:.3f}")


def main(argv=None) -> dict:
    p = add_common(make_parser(__doc__), data=REQUIRED, out=REQUIRED, backbone=True,
                   trials=10, trials_help="feature-extraction trials",
                   epochs=EPOCHS, epochs_help="feature-extraction epochs")
    p.add_argument("--ft-trials", type=int, default=4)
    p.add_argument("--ft-epochs", type=int, default=5, help="fine-tune epochs per phase")
    p.add_argument("--precision-trials", type=int, default=3)
    p.add_argument("--methods", default="fe,ft,aug", help="which of fe,ft,aug to time")
    p.add_argument("--views", type=int, default=5, help="aug: K cached views per training image")
    p.add_argument("--aug-trials", type=int, default=10)
    p.add_argument("--aug-epochs", type=int, default=EPOCHS)
    p.add_argument("--aug-naive", default="fresh,replay", help="aug: which naive ways to time (fresh,replay)")
    p.add_argument("--skip-rates", action="store_true", help="leave out the matmul and backbone rates")
    args = p.parse_args(argv)

    report = {"machine": {"cpus": os.cpu_count(), "bf16_native": hardware.cpu_has_bf16()}}
    if not args.skip_rates:
        report.update(_rates(args.image_size))
    with tempfile.TemporaryDirectory(prefix="sweep-cost-") as tmp:
        _sweeps(args, Path(tmp), report)
    write_json(args.out, report)
    print(f"\nwrote {args.out}")
    return report


def _sweeps(args, work: Path, report: dict) -> None:
    """The selected methods' sweeps, each the harness's way and the naive way(s), into `report`."""
    base = dict(data=args.data, backbone=args.backbone, weights=args.weights, image_size=args.image_size,
                experiment="bench", seed=SEED)
    methods = args.methods.split(",")
    if "fe" in methods:
        fe = validate(SweepConfig(method="feature-extraction", max_trials=args.trials, epochs=args.epochs, **base))
        report["fe"] = compare_method(fe, work / "fe")
        _print_method("feature-extraction", report["fe"])
        if args.precision_trials:
            report["precision_check"] = precision_check(fe, work / "fe", args.precision_trials)
            print(f"best FE val_accuracy: float32 {report['precision_check']['float32']:.3f}, "
                  f"bfloat16 {report['precision_check']['bfloat16']:.3f}")
    if "ft" in methods:
        ft = validate(SweepConfig(method="fine-tune", max_trials=args.ft_trials, epochs=args.ft_epochs, **base))
        report["ft"] = compare_method(ft, work / "ft")
        _print_method("fine-tune", report["ft"])
    if "aug" in methods:
        aug = validate(SweepConfig(method="feature-extraction", max_trials=args.aug_trials, epochs=args.aug_epochs,
                                   augment=True, augment_views=args.views, **base))
        def save(out):
            write_json(args.out, {**report, "aug": out})

        report["aug"] = compare_augmented(aug, work / "aug", args.aug_naive.split(","), save)
        _print_augmented(report["aug"])


def _rates(image_size: int) -> dict:
    """This machine's dense matmul rate and VGG16's backbone rate, float32 and bfloat16."""
    report = {}
    mm = {"float32": matmul_gflops("float32"), "bfloat16": matmul_gflops("bfloat16")}
    report["matmul_gflops"] = mm
    print(f"dense matmul: float32 {mm['float32']:.0f} GFLOP/s, bfloat16 {mm['bfloat16']:.0f} GFLOP/s")
    for precision in ("float32", "bfloat16"):
        r = backbone_rate("vgg16", image_size, precision)
        r["fraction_of_fp32_matmul"] = r["gflops"] / mm["float32"]
        r["fraction_of_bf16_matmul"] = r["gflops"] / mm["bfloat16"]
        report[f"vgg16_{precision}"] = r
        print(f"vgg16 {image_size}px {precision}: {r['images_per_s']:.1f} images/s, "
              f"{r['gflops']:.0f} GFLOP/s = {100 * r['fraction_of_fp32_matmul']:.0f}% of fp32 matmul, "
              f"{100 * r['fraction_of_bf16_matmul']:.0f}% of bf16 matmul")
    fastest = max(("float32", "bfloat16"), key=lambda k: report[f"vgg16_{k}"]["images_per_s"])
    report["vgg16"] = {**report[f"vgg16_{fastest}"], "precision": fastest}
    return report


if __name__ == "__main__":
    main()
