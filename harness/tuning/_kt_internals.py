"""Every keras-tuner internal harness relies on, in one place, each with why the public API does not do.

pyproject pins keras-tuner to the minor versions tested (>=1.4.8,<1.5); tests/tuning/test_kt_internals.py
fails, naming the missing piece, if an upgrade removes one of these.
"""

from __future__ import annotations

# gRPC messages and the chief's servicer: keras-tuner's distributed engine exports neither, and
# the chief subclasses the servicer to add heartbeats and a prompt shutdown (harness.distributed._oracle_service).
from keras_tuner.src import protos  # noqa: F401
from keras_tuner.src.distribute.oracle_chief import OracleServicer  # noqa: F401
from keras_tuner.src.engine.trial import Trial, TrialStatus  # noqa: F401

# The oracle method a subclass overrides to make the first candidate the search space's defaults
# (the tutorial's configuration): keras-tuner has no public hook for the first candidate.
RANDOM_VALUES = "_random_values"
# Its message when max_consecutive_failed_trials stops a search: it raises a bare RuntimeError.
CONSECUTIVE_FAILURES = "consecutive failures"


def quiet_failed_trials() -> None:
    """keras-tuner prints a failed trial's traceback to the terminal while its DEBUG flag is on
    (the default), with no public switch; harness logs it to the trial's run instead."""
    from keras_tuner.src import config

    config.DEBUG = False


def is_duplicate(oracle, values: dict) -> bool:
    """Whether the oracle has tried these values already (Oracle._duplicate: not public)."""
    return oracle._duplicate(values)


def retry_queue(oracle) -> list:
    """Trial ids waiting to run again (Oracle._retry_queue): the chief puts a dead worker's trial
    there, as Oracle.reload does for a crashed chief; there is no public way to requeue a trial."""
    return oracle._retry_queue


def hyperband_shape(oracle) -> tuple[int, list[list[int]]]:
    """(brackets, trials per round per bracket) of one Hyperband iteration, from the oracle's own
    arithmetic (private helpers) so harness plans exactly what keras-tuner will run."""
    brackets = oracle._get_num_brackets()
    return brackets, [[oracle._get_size(b, r) for r in range(oracle._get_num_rounds(b))] for b in range(brackets)]


def is_consecutive_failures_stop(exc: BaseException) -> bool:
    return isinstance(exc, RuntimeError) and CONSECUTIVE_FAILURES in str(exc)
