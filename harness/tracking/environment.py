"""The software and machine a run was made with, as the two tags a sweep's parent run carries
(`versions`, `machine`: JSON), so a report says what ran the sweep, not what reads it back."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata

# Declared once: what a sweep records and a report shows (python is added in front).
PACKAGES = ("harness", "tensorflow", "keras", "keras-tuner", "mlflow", "optuna", "scikit-learn", "numpy")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> dict[str, str]:
    return {"platform": platform.platform(), "processor": platform.machine(),
            "CPU cores": str(os.cpu_count() or 0), "host": platform.node()}


def environment_tags() -> dict[str, str]:
    return {"versions": json.dumps(versions()), "machine": json.dumps(machine())}


def recorded(tags: dict[str, str], key: str) -> dict[str, str] | None:
    """A run's `versions` or `machine` tag read back; None for a run made before harness recorded them."""
    try:
        value = json.loads(tags[key])
    except (KeyError, ValueError):
        return None
    return value if isinstance(value, dict) else None
