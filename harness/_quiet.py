"""TensorFlow's C++ start-up lines (oneDNN notes, CUDA probing, absl's banner) kept off the
terminal, unless the user set TF_CPP_MIN_LOG_LEVEL or passes --verbose.

TF_CPP_MIN_LOG_LEVEL hides C++ log lines written after start-up, but the ones TensorFlow writes
while it is imported, before its logging is set up, ignore it; those are hidden by pointing file
descriptor 2 at /dev/null for the duration of `import tensorflow` (nothing else is muted)."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys

LEVEL = "TF_CPP_MIN_LOG_LEVEL"
OURS = "HARNESS_QUIET_TF"  # set beside LEVEL when harness chose it, so child processes know


@contextlib.contextmanager
def stderr_muted():
    """File descriptor 2 (where C++ code writes) to /dev/null, then back."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _MutedLoader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        with stderr_muted():
            self.inner.exec_module(module)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as Python would, and loads it with stderr muted (once)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        uninstall()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _MutedLoader(spec.loader)
        return spec


def install() -> None:
    """Quiet start-up, unless the user set the level or TensorFlow is already imported."""
    if os.environ.get("HARNESS_VERBOSE"):
        return
    # MLflow draws a progress bar for every artifact it downloads (compare, report): noise here
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if "tensorflow" in sys.modules:
        return
    if LEVEL in os.environ and not os.environ.get(OURS):
        return  # the user's own choice
    os.environ[LEVEL], os.environ[OURS] = "3", "1"  # after start-up too: cuInit's error on GPU-less hosts
    if not any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlow())


def uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietTensorFlow)]


def verbose() -> None:
    """--verbose: TensorFlow logs as it would without harness (worker processes too)."""
    uninstall()
    if os.environ.pop(OURS, None):
        os.environ.pop(LEVEL, None)
    os.environ["HARNESS_VERBOSE"] = "1"
