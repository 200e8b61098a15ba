"""A cached trial's fixed cost (its time outside the head's kernels), this tree against another, in one run.

    python bench/trial_overhead.py --out FILE.json [--data DIR --weights PATH] [--baseline SRC]
        [--trials 4 --epochs 20 --rounds 1]

Runs the same cached feature-extraction sweep (same seed, so the same trials) with this tree's
harness and, given --baseline, with the harness package in SRC (for example an older commit:
`git archive <commit> harness | tar -x -C SRC`), alternating, each side in a fresh process.
Without --data it uses tiny synthetic photos and a random-weight VGG16 at 32 px, where the
kernels are almost nothing and a trial is nearly all fixed cost.

For every trial: its wall and CPU time (keras-tuner's on_trial_begin to the end of on_trial_end)
and the kernels it needed. Training: the trial's own calls into its compiled train function
(one epoch each, timed as they run, so they share the trial's machine load), the first call
counted as long as the median one (the rest of it is tracing, which is fixed cost). Scoring:
E + 1 forward passes over the validation rows (one per epoch, one for the test split), timed
right after the sweep with a model of the same size. Fixed cost = trial time - kernels:
Keras' per-model tracing and per-epoch set-up, MLflow, plots, predictions, saving the weights.
On a shared machine wall times swing with the load; CPU seconds (all threads) much less.

Each side's child process imports the harness in its SRC through PYTHONPATH (ahead of the
installed package); a baseline may have either this tree's sub-package layout or the flat one
of the trees before it.

Cost: 1 + rounds x (1 or 2 sides) fresh processes; each runs a trials x epochs sweep on cached
features (after one extraction, growing with the photos), so it grows with rounds x trials x epochs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (BACKBONE, EPOCHS, IMAGE_SIZE, OPTIONAL, REQUIRED, ROOT, SEED, add_common, make_parser,
                     write_json)

# Where the child finds what it uses, by the layout of the harness it imported: this tree's
# sub-packages, or the flat modules of the trees before them (a --baseline may be one).
LAYOUTS = {
    "packages": {"tuning": "harness.tuning._tuner", "settings": "harness.config._settings",
                 "folders": "harness.data._folders", "prepare": "harness.training._prepare",
                 "sweep": "harness.study._sweep", "methods": "harness.training._methods"},
    "flat": {"tuning": "harness.tuning", "settings": "harness.config", "folders": "harness.data",
             "prepare": "harness.sweep", "sweep": "harness.sweep", "methods": "harness.methods"},
}


def _timed_hooks(tuning, log: dict) -> None:
    """Wall and CPU time of every trial, from keras-tuner's own hooks (both trees have them), and
    of each call into its train function."""
    import keras

    tuner = tuning.TrackedTuner
    begin, end, make = tuner.on_trial_begin, tuner.on_trial_end, keras.Model.make_train_function
    calls: list = []

    def make_train_function(self, force=False):
        made = make(self, force)
        fn = self.train_function
        if not getattr(fn, "timed", False):
            def timed(*args, **kwargs):
                start = (time.perf_counter(), time.process_time())
                try:
                    return fn(*args, **kwargs)
                finally:
                    calls.append((time.perf_counter() - start[0], time.process_time() - start[1]))
            timed.timed = True
            self.train_function = made = timed
        return made

    def on_trial_begin(self, trial):
        calls.clear()
        log[trial.trial_id] = {"start": (time.perf_counter(), time.process_time()),
                               "values": {k: v for k, v in trial.hyperparameters.values.items()},
                               "train_calls": calls}
        return begin(self, trial)

    def on_trial_end(self, trial):
        try:
            return end(self, trial)
        finally:
            wall, cpu = log[trial.trial_id]["start"]
            log[trial.trial_id].update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu,
                                       train_calls=list(calls))

    tuner.on_trial_begin, tuner.on_trial_end = on_trial_begin, on_trial_end
    keras.Model.make_train_function = make_train_function


def _train_kernels(calls: list) -> tuple[float, float]:
    """(wall, CPU) of a trial's train calls, its first (tracing) call counted as the median one."""
    walls, cpus = [w for w, _ in calls], [c for _, c in calls]
    return (sum(walls[1:]) + statistics.median(walls), sum(cpus[1:]) + statistics.median(cpus))


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


def scoring_seconds(make_head, data, top_shape, n_classes: int, units: int, epochs: int) -> tuple[float, float]:
    """(wall, CPU) of epochs + 1 forward passes of a head of `units` (from `make_head`) over the validation rows."""
    import tensorflow as tf

    model = make_head(top_shape, units, 0.0, n_classes)
    x_val = tf.constant(data.arrays["top"]["validation"], dtype="float32")
    wall, cpu = _clock(lambda: model.predict_on_batch(x_val), 5)
    return (epochs + 1) * wall, (epochs + 1) * cpu


def _modules(src: str) -> dict:
    """The child's modules (LAYOUTS' keys) from the harness imported, which must be the one in src."""
    import harness

    package = Path(harness.__file__).resolve().parent
    if package != Path(src).resolve() / "harness":
        raise SystemExit(f"imported the harness in {package}, not the one in {src}: "
                         "is PYTHONPATH set and does that folder hold a harness package?")
    layout = LAYOUTS["packages" if (package / "study").is_dir() else "flat"]
    return {name: importlib.import_module(module) for name, module in layout.items()}


def child(args) -> dict:
    """One side: run the sweep with the harness in args.src (on PYTHONPATH, set by run_side), then
    measure the kernels."""
    import harness
    from harness.progress import NullReporter

    m = _modules(args.src)
    SweepConfig, validate = m["settings"].SweepConfig, m["settings"].validate

    log: dict = {}
    _timed_hooks(m["tuning"], log)
    cfg = validate(SweepConfig(method="feature-extraction", max_trials=args.trials, epochs=args.epochs,
                               seed=SEED, experiment="overhead", **_data_settings(args)))
    start = time.perf_counter()
    m["sweep"].run_sweep(cfg, f"sqlite:///{tempfile.mkdtemp(prefix='overhead-')}/mlflow.db")
    sweep_wall = time.perf_counter() - start
    prepared = m["prepare"].prepare(cfg, m["folders"].scan(cfg.data), NullReporter())
    top_shape = tuple(prepared.data.arrays["top"]["train"].shape[1:])
    scoring = {}
    for entry in log.values():
        units = entry["values"]["units"]
        if units not in scoring:
            scoring[units] = scoring_seconds(m["methods"].make_head, prepared.data, top_shape,
                                             prepared.data.n_classes, units, args.epochs)
        train_wall, train_cpu = _train_kernels(entry["train_calls"])
        entry["kernel_wall"], entry["kernel_cpu"] = train_wall + scoring[units][0], train_cpu + scoring[units][1]
        entry["fixed_wall"] = entry["wall"] - entry["kernel_wall"]
        entry["fixed_cpu"] = entry["cpu"] - entry["kernel_cpu"]
        del entry["start"]
    return {"harness": str(Path(harness.__file__).parent), "sweep_wall": sweep_wall, "trials": log}


def _data_settings(args) -> dict:
    if args.data:
        return {"data": args.data, "backbone": BACKBONE, "weights": args.weights, "image_size": IMAGE_SIZE}
    return {"data": args.tiny, "backbone": "vgg16", "weights": "none", "image_size": 32}


def summary(side: dict) -> dict:
    trials = list(side["trials"].values())
    keys = ("wall", "cpu", "kernel_wall", "fixed_wall", "fixed_cpu")
    mean = {f"mean_{k}": statistics.mean(t[k] for t in trials) for k in keys}
    median = {f"median_{k}": statistics.median(t[k] for t in trials) for k in ("fixed_wall", "fixed_cpu")}
    return {**mean, **median, "sweep_wall": side["sweep_wall"],
            "outside_trials_wall": side["sweep_wall"] - sum(t["wall"] for t in trials)}


def run_side(src: str, args, cache: str) -> dict:
    cmd = [sys.executable, __file__, "--child", "--src", src, "--trials", str(args.trials), "--epochs",
           str(args.epochs), "--tiny", args.tiny, "--out", "-"]
    if args.data:
        cmd += ["--data", args.data, "--weights", args.weights]
    path = os.pathsep.join(p for p in (str(Path(src).resolve()), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "HARNESS_CACHE_DIR": cache, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> None:
    p = add_common(make_parser(__doc__), out=REQUIRED, data=OPTIONAL)
    p.add_argument("--baseline", help="a source folder holding an older harness package")
    add_common(p, trials=4, epochs=EPOCHS)
    p.add_argument("--rounds", type=int, default=1, help="alternations of baseline and this tree")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--src", default=str(ROOT), help=argparse.SUPPRESS)
    p.add_argument("--tiny", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory(prefix="trial-overhead-") as tmp:
        if not args.data:
            from harness.data._folders import write_synthetic

            args.tiny = str(write_synthetic(Path(tmp) / "tiny", per_class=6, size=40))
        cache = os.environ.get("HARNESS_CACHE_DIR") or str(Path(tmp) / "cache")
        sides = {"this tree": str(ROOT), **({"baseline": args.baseline} if args.baseline else {})}
        runs = {name: [] for name in sides}
        run_side(str(ROOT), dataclass_copy(args, trials=1, epochs=1), cache)  # fills the feature cache
        for _ in range(args.rounds):
            for name, src in reversed(list(sides.items())):  # baseline first in every round
                runs[name].append(run_side(src, args, cache))
                print(name, json.dumps(summary(runs[name][-1])), flush=True)
    report = {"trials": args.trials, "epochs": args.epochs, "data": args.data or "tiny synthetic",
              "runs": runs, "summary": {n: [summary(r) for r in rs] for n, rs in runs.items()}}
    write_json(args.out, report)
    print(f"wrote {args.out}")


def dataclass_copy(args, **changes):
    return argparse.Namespace(**{**vars(args), **changes})


if __name__ == "__main__":
    main()
