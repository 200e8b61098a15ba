"""How much RAM trials may hold cached features in, and whether a data set's features fit in it."""

from __future__ import annotations

import os

import numpy as np

from harness.errors import HarnessError

ENV = "HARNESS_MEMORY_BUDGET"
AUTO_FRACTION = 0.5  # of the memory available when the sweep starts: the rest is the trials' own


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (what can be used without swapping), else physical RAM."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def budget_bytes(setting_gb: float) -> int:
    """HARNESS_MEMORY_BUDGET (GB) if set, else the sweep's memory_budget (GB), else (0) half of
    the memory available now."""
    named = os.environ.get(ENV)
    if named:
        try:
            gb = float(named)
        except ValueError:
            raise HarnessError(f"{ENV}={named!r} is not a number of GB (e.g. 8 or 0.5)") from None
        if gb < 0:
            raise HarnessError(f"{ENV}={named!r} must be >= 0 GB")
        return int(gb * 1e9)
    return int(setting_gb * 1e9) if setting_gb else int(AUTO_FRACTION * available_bytes())


def needed_bytes(arrays: dict[str, dict[str, np.ndarray]], layers: tuple[str, ...]) -> int:
    """What holding these layers' cached rows (every split, as cached) in memory takes."""
    return sum(a.nbytes for layer in layers for a in arrays[layer].values())
