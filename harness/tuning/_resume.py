"""Which earlier sweep a command continues, and locks so that two processes never share one.

A sweep is "the same" when its resolved configuration is: method, data fingerprint, backbone,
weights identity, every setting, the search space and the experiment. Its hash is the parent
run's `sweep_key` tag. A parent that did not end FINISHED is resumable while no live process
holds its lock; a process killed with SIGKILL loses its locks with it (flock).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from harness.backbones._registry import weights_identity
from harness.config import SweepConfig
from harness.errors import HarnessError
from harness.tracking import experiments, reading

MODES = ("auto", "resume", "fresh")


def sweep_key(cfg: SweepConfig, data_fingerprint: str) -> str:
    """Hash of everything that makes two sweep commands the same sweep."""
    values = cfg.to_dict()
    values.pop("data")  # the same files under another path or cwd are the same data
    values.update(data_fingerprint=data_fingerprint, weights=weights_identity(cfg.weights),
                  experiment=cfg.experiment_name)
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _try_lock(path: Path, blocking: bool = False) -> int | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


@dataclass
class Claim:
    """The parent run this process continues (None: start a new one), and the locks it holds."""

    folder: Path
    key: str
    parent_id: str | None = None
    finished_id: str | None = None  # the newest FINISHED sweep with this key, for messages
    _fds: list[int] = field(default_factory=list)
    _key_fd: int | None = None

    def hold(self, parent_id: str) -> None:
        """Lock a newly created parent for as long as this process runs it; others may now look."""
        fd = _try_lock(self.folder / f"{parent_id}.lock")
        if fd is not None:
            self._fds.append(fd)
        self._release_key()

    def _release_key(self) -> None:
        if self._key_fd is not None:
            os.close(self._key_fd)
            self._key_fd = None

    def release(self) -> None:
        self._release_key()
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()


def claim(tracker, experiment: str, key: str, folder: Path, mode: str = "auto") -> Claim:
    """Find the newest unfinished sweep with `key` that no live process runs, and lock it.

    `fresh` always starts anew; `resume` insists on continuing one. Without a parent to resume,
    the key lock is held until `hold` locks the new parent, so a concurrent same command cannot
    pick that parent up in between.
    """
    if mode not in MODES:
        raise HarnessError(f"unknown resume mode {mode!r}")
    result = Claim(folder, key)
    result._key_fd = _try_lock(folder / f"sweep-{key}.lock", blocking=True)
    experiment_id = experiments.find(tracker, experiment)
    parents = reading.find_runs(tracker, experiment_id, {"sweep_key": key}) if experiment_id else []
    parents = [p for p in parents if "mlflow.parentRunId" not in p.tags]
    result.finished_id = next((p.run_id for p in parents if p.status == "FINISHED"), None)
    if mode != "fresh":
        for parent in (p for p in parents if p.status != "FINISHED"):
            fd = _try_lock(folder / f"{parent.run_id}.lock")
            if fd is not None:
                result._fds.append(fd)
                result.parent_id = parent.run_id
                result._release_key()
                break
    if mode == "resume" and result.parent_id is None:
        result.release()
        done = f"; the last one finished (run {result.finished_id}), use --fresh to run it again" \
            if result.finished_id else ""
        raise HarnessError(f"nothing to resume: no interrupted sweep with this configuration in "
                           f"experiment {experiment!r}{done}")
    return result
