"""Ctrl-C and SIGTERM become one exception, so a stopped sweep ends its runs KILLED."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class Interrupted(KeyboardInterrupt):
    """Raised by the signal handler; a KeyboardInterrupt, so keras-tuner lets it through."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(exc: BaseException) -> int:
    """The shell's convention: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


@contextmanager
def signals_interrupt():
    """While inside, SIGINT and SIGTERM raise Interrupted once; repeats are ignored so the
    cleanup that ends the runs is not itself cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    fired = []

    def handler(signum, frame):
        if not fired:
            fired.append(signum)
            raise Interrupted(signum)

    wanted = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.signal(s, handler) for s in wanted}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
