"""A cached trial's fixed cost (its time outside the head's kernels), this tree against another, in one run.

    python bench/trial_overhead.py --out FILE.json [--data DIR --weights PATH] [--baseline SRC]
        [--trials 4 --epochs 20 --rounds 1]

Runs the same cached feature-extraction sweep (same seed, so the same trials) with this tree's
harness and, given --baseline, with the harness package in SRC (for example an older commit:
`git archive <commit> harness | tar -x -C SRC`), alternating, each side in a fresh process.
Without --data it uses tiny synthetic photos and a random-weight VGG16 at 32 px, where the
kernels are almost nothing and a trial is nearly all fixed cost.

For every trial: its wall and CPU time (keras-tuner's on_trial_begin to the end of on_trial_end)
and the kernels it needed, measured right after the sweep in the same process with a model of
the same size: E executions of the compiled train step on one iterator (one epoch each) and
E + 1 forward passes over the validation rows (one per epoch, one for the test split).
Fixed cost = trial time - kernels: Keras' per-model tracing and per-epoch set-up, MLflow,
plots, predictions, saving the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _timed_hooks(tuning, log: dict) -> None:
    """Wall and CPU time of every trial, from keras-tuner's own hooks (both trees have them)."""
    tuner = tuning.TrackedTuner
    begin, end = tuner.on_trial_begin, tuner.on_trial_end

    def on_trial_begin(self, trial):
        log[trial.trial_id] = {"start": (time.perf_counter(), time.process_time()),
                               "values": {k: v for k, v in trial.hyperparameters.values.items()}}
        return begin(self, trial)

    def on_trial_end(self, trial):
        try:
            return end(self, trial)
        finally:
            wall, cpu = log[trial.trial_id]["start"]
            log[trial.trial_id].update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu)

    tuner.on_trial_begin, tuner.on_trial_end = on_trial_begin, on_trial_end


def _clock(fn, reps: int) -> tuple[float, float]:
    """Median wall and CPU seconds of fn() over reps calls, after one untimed call."""
    fn()
    walls, cpus = [], []
    for _ in range(reps):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def kernel_seconds(data, top_shape, n_classes: int, units: int, epochs: int) -> tuple[float, float]:
    """(wall, CPU) of the kernels a trial of `units` needs: epochs x one epoch of train steps,
    epochs + 1 forward passes over the validation rows."""
    import math

    from harness.methods import make_head
    from harness.optimizers import FusedAdam

    steps = math.ceil(len(data.labels["train"]) / data.batch_size)
    model = make_head(top_shape, units, 0.0, n_classes)
    model.compile(optimizer=FusedAdam(learning_rate=1e-5), loss="binary_crossentropy" if n_classes == 2
                  else "sparse_categorical_crossentropy", steps_per_execution=min(32, steps))
    train = data.dataset("top", "train").repeat()
    model.fit(train, steps_per_epoch=steps, epochs=1, verbose=0)  # traces and builds the optimizer
    batches = iter(train)
    per_call = math.ceil(steps / min(32, steps))
    train_wall, train_cpu = _clock(lambda: [model.train_function(batches) for _ in range(per_call)], 3)
    x_val = data._tensors["top", "validation"][0] if ("top", "validation") in data._tensors else None
    if x_val is None:
        import tensorflow as tf

        x_val = tf.constant(data.arrays["top"]["validation"], dtype="float32")
    val_wall, val_cpu = _clock(lambda: model.predict_on_batch(x_val), 3)
    return epochs * train_wall + (epochs + 1) * val_wall, epochs * train_cpu + (epochs + 1) * val_cpu


def child(args) -> dict:
    """One side: run the sweep with the harness in args.src, then measure the kernels."""
    sys.path.insert(0, str(Path(args.src).resolve()))
    import harness
    from harness import tuning
    from harness.config import SweepConfig, validate
    from harness.data import scan
    from harness.progress import NullReporter
    from harness.sweep import prepare, run_sweep

    log: dict = {}
    _timed_hooks(tuning, log)
    cfg = validate(SweepConfig(method="feature-extraction", max_trials=args.trials, epochs=args.epochs,
                               seed=11, experiment="overhead", **_data_settings(args)))
    start = time.perf_counter()
    run_sweep(cfg, f"sqlite:///{tempfile.mkdtemp(prefix='overhead-')}/mlflow.db")
    sweep_wall = time.perf_counter() - start
    prepared = prepare(cfg, scan(cfg.data), NullReporter())
    top_shape = tuple(prepared.data.arrays["top"]["train"].shape[1:])
    kernels = {}
    for entry in log.values():
        units = entry["values"]["units"]
        if units not in kernels:
            kernels[units] = kernel_seconds(prepared.data, top_shape, prepared.data.n_classes, units, args.epochs)
        entry["kernel_wall"], entry["kernel_cpu"] = kernels[units]
        entry["fixed_wall"] = entry["wall"] - entry["kernel_wall"]
        entry["fixed_cpu"] = entry["cpu"] - entry["kernel_cpu"]
        del entry["start"]
    return {"harness": str(Path(harness.__file__).parent), "sweep_wall": sweep_wall, "trials": log}


def _data_settings(args) -> dict:
    if args.data:
        return {"data": args.data, "backbone": "mobilenet_v2", "weights": args.weights, "image_size": 150}
    return {"data": args.tiny, "backbone": "vgg16", "weights": "none", "image_size": 32}


def summary(side: dict) -> dict:
    trials = list(side["trials"].values())
    mean = {k: statistics.mean(t[k] for t in trials) for k in ("wall", "cpu", "kernel_wall", "fixed_wall",
                                                              "fixed_cpu")}
    return {**{f"mean_{k}": v for k, v in mean.items()}, "sweep_wall": side["sweep_wall"],
            "outside_trials_wall": side["sweep_wall"] - sum(t["wall"] for t in trials)}


def run_side(src: str, args, cache: str) -> dict:
    cmd = [sys.executable, __file__, "--child", "--src", src, "--trials", str(args.trials), "--epochs",
           str(args.epochs), "--tiny", args.tiny, "--out", "-"]
    if args.data:
        cmd += ["--data", args.data, "--weights", args.weights]
    env = {**os.environ, "HARNESS_CACHE_DIR": cache, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--data")
    p.add_argument("--weights")
    p.add_argument("--baseline", help="a source folder holding an older harness package")
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--rounds", type=int, default=1, help="alternations of baseline and this tree")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--src", default=str(HERE), help=argparse.SUPPRESS)
    p.add_argument("--tiny", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory(prefix="trial-overhead-") as tmp:
        if not args.data:
            from harness.data import write_synthetic

            args.tiny = str(write_synthetic(Path(tmp) / "tiny", per_class=6, size=40))
        cache = os.environ.get("HARNESS_CACHE_DIR") or str(Path(tmp) / "cache")
        sides = {"this tree": str(HERE), **({"baseline": args.baseline} if args.baseline else {})}
        runs = {name: [] for name in sides}
        run_side(str(HERE), dataclass_copy(args, trials=1, epochs=1), cache)  # fills the feature cache
        for _ in range(args.rounds):
            for name, src in reversed(list(sides.items())):  # baseline first in every round
                runs[name].append(run_side(src, args, cache))
                print(name, json.dumps(summary(runs[name][-1])), flush=True)
    report = {"trials": args.trials, "epochs": args.epochs, "data": args.data or "tiny synthetic",
              "runs": runs, "summary": {n: [summary(r) for r in rs] for n, rs in runs.items()}}
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


def dataclass_copy(args, **changes):
    return argparse.Namespace(**{**vars(args), **changes})


if __name__ == "__main__":
    main()
