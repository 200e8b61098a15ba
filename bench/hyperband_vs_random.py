"""Hyperband against random search at equal wall time: the best validation accuracy each reached.

    python bench/hyperband_vs_random.py --data DIR --weights PATH --out FILE.json
        [--budget 300 --seeds 11 --method feature-extraction --epochs 20 --backbone mobilenet_v2 --image-size 150]

Both sweeps run on the same cached features (extracted once before timing), one after the other
(random first for the first seed, hyperband first for the second, and so on), with the same seed
and search space, each stopped by Ctrl-C (SIGINT, as a user would) once
`--budget` seconds have passed since its parent run started; random search is given more trials
than fit in the budget. From the store: every trial that FINISHED within the budget, when it
finished, and the best validation accuracy reached by then (selection is by validation; the
chosen trial's test accuracy is reported beside it, never used).

Cost: about 2 x --budget seconds of sweeping per seed, whatever the epochs and trials, plus a
1-trial 1-epoch warm-up sweep per seed (the first one extracts the features: grows with the photos).
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
import time

from _common import EPOCHS, REQUIRED, SEED, add_common, make_parser, write_json
from harness.config import SweepConfig, validate
from harness.study._sweep import run_sweep


def stop_after(seconds: float) -> threading.Timer:
    """Ctrl-C to this process in `seconds`: the sweep ends its runs KILLED, as for a user."""
    timer = threading.Timer(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.daemon = True
    timer.start()
    return timer


def timed(cfg: SweepConfig, store: str, budget: float) -> dict:
    """Run one sweep for at most `budget` s; its trials as the store has them."""
    from mlflow import MlflowClient

    timer = stop_after(budget)
    start = time.time()
    try:
        run_sweep(cfg, store)
    except KeyboardInterrupt:
        pass
    finally:
        timer.cancel()
    client = MlflowClient(store)
    exp = client.get_experiment_by_name(cfg.experiment_name)
    (parent,) = client.search_runs([exp.experiment_id], filter_string=f"tags.tuner = '{cfg.tuner}'")
    runs = client.search_runs([exp.experiment_id], max_results=5000,
                              filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    t0 = parent.info.start_time / 1000
    trials = sorted(({"trial_id": r.data.tags["trial_id"], "name": r.info.run_name, "status": r.info.status,
                      "finished_s": (r.info.end_time or 0) / 1000 - t0,
                      "epochs": len(client.get_metric_history(r.info.run_id, "val_accuracy")),
                      "val_accuracy": r.data.metrics.get("best_val_accuracy"),
                      "test_accuracy": r.data.metrics.get("test_accuracy")}
                     for r in runs),
                    key=lambda t: t["finished_s"])
    return {"tuner": cfg.tuner, "wall_s": time.time() - start, "trials": trials}


def best_by(trials: list[dict], seconds: float) -> dict | None:
    """The best trial by validation accuracy among those FINISHED within `seconds` (first on ties)."""
    done = [t for t in trials if t["status"] == "FINISHED" and t["finished_s"] <= seconds]
    return max(done, key=lambda t: t["val_accuracy"], default=None)


def main(argv=None) -> dict:
    p = add_common(make_parser(__doc__), data=REQUIRED, out=REQUIRED)
    p.add_argument("--budget", type=float, default=300.0, help="wall seconds per sweep")
    p.add_argument("--seeds", default=str(SEED), help="comma-separated; one pair of sweeps per seed")
    p.add_argument("--method", default="feature-extraction")
    add_common(p, epochs=EPOCHS, backbone=True)
    args = p.parse_args(argv)
    report = {"budget_s": args.budget, "method": args.method, "epochs": args.epochs, "pairs": []}
    with tempfile.TemporaryDirectory(prefix="hb-vs-random-") as tmp:
        store = f"sqlite:///{tmp}/mlflow.db"
        for seed in (int(s) for s in args.seeds.split(",")):
            base = dict(method=args.method, data=args.data, backbone=args.backbone, weights=args.weights,
                        image_size=args.image_size, epochs=args.epochs, seed=seed, experiment=f"seed-{seed}")
            warm = {**base, "epochs": 1, "experiment": "warm-up"}
            run_sweep(validate(SweepConfig(**warm, max_trials=1)), store)  # the feature cache, outside the timing
            pair = {"seed": seed}
            order = ("random", "hyperband") if len(report["pairs"]) % 2 == 0 else ("hyperband", "random")
            for tuner in order:  # alternated from seed to seed: the machine's load drifts
                cfg = validate(SweepConfig(**base, tuner=tuner, max_trials=100 if tuner == "random" else 10))
                pair[tuner] = timed(cfg, store, args.budget)
            pair["checkpoints"] = {}
            for t in sorted({args.budget / 4, args.budget / 2, 3 * args.budget / 4, args.budget}):
                pair["checkpoints"][f"{t:.0f}s"] = {
                    tuner: _brief(best_by(pair[tuner]["trials"], t), pair[tuner]["trials"], t)
                    for tuner in ("random", "hyperband")}
            report["pairs"].append(pair)
            print(json.dumps({"seed": seed, **pair["checkpoints"]}, indent=1), flush=True)
    write_json(args.out, report)
    print(f"wrote {args.out}")
    return report


def _brief(best: dict | None, trials: list[dict], seconds: float) -> dict:
    done = [t for t in trials if t["status"] == "FINISHED" and t["finished_s"] <= seconds]
    return {"trials_finished": len(done), "epochs_trained": sum(t["epochs"] for t in done),
            "best_val_accuracy": best and best["val_accuracy"], "its_test_accuracy": best and best["test_accuracy"],
            "best_trial": best and best["name"]}


if __name__ == "__main__":
    main()
