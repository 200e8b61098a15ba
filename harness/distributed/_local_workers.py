"""`--workers N` on one machine: N worker processes (`harness sweep <method> --role worker`), each
pinned to its share of the cores and one GPU when there are any, logging to a file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from harness.config import SweepConfig
from harness.distributed._oracle_service import TOKEN_ENV


def worker_env(index: int, count: int, cpus: list[int], gpus: list[str]) -> dict[str, str]:
    """Worker `index` of `count`: its share of the cores, and one GPU when there are any."""
    share = cpus[index::count] or [cpus[index % len(cpus)]]
    env = {"KERASTUNER_TUNER_ID": f"tuner{index}", "HARNESS_CPUS": ",".join(map(str, share)),
           "TF_NUM_INTRAOP_THREADS": str(len(share)), "TF_NUM_INTEROP_THREADS": "1",
           "OMP_NUM_THREADS": str(len(share))}
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    return env


def _gpu_ids() -> list[str]:
    import tensorflow as tf

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    return [str(i) for i in range(len(tf.config.list_physical_devices("GPU")))]


class Workers:
    """N local worker processes, each `harness sweep <method> --role worker`, logging to a file.
    They need no sweep file: a worker runs the chief's `sweep_config.json`."""

    def __init__(self, count: int, cfg: SweepConfig, oracle: str, parent: str,
                 tracking_uri: str, log_dir: Path, token: str | None = None):
        log_dir.mkdir(parents=True, exist_ok=True)
        cpus, gpus = sorted(os.sched_getaffinity(0)), _gpu_ids()
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        for i in range(count):
            env = worker_env(i, count, cpus, gpus)
            if token:
                env[TOKEN_ENV] = token
            cmd = [sys.executable, "-m", "harness", "sweep", cfg.method, "--role", "worker",
                   "--oracle", oracle, "--parent-run", parent, "--tracking-uri", tracking_uri,
                   "--data", cfg.data]
            tuner_id = env["KERASTUNER_TUNER_ID"]
            self.logs[tuner_id] = log_dir / f"{tuner_id}.log"
            with open(self.logs[tuner_id], "wb") as log:
                self.procs[tuner_id] = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=log,
                                                        stderr=subprocess.STDOUT)

    def exited(self) -> dict[str, int]:
        return {t: p.returncode for t, p in self.procs.items() if p.poll() is not None}

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        self.wait(10)
