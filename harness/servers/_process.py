"""A server's process, its life tied to ours, so that no server outlives the harness process
that started it, however that process ends (Ctrl-C, SIGTERM, SIGKILL); its output to a log file
(or to our terminal); and waiting until it answers /health."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from harness.errors import HarnessError

START_TIMEOUT = 180.0  # seconds for a server to answer /health (MLflow imports a lot)
TAIL_LINES = 20  # of the server's log, shown when it fails (exits, or never answers)
# Ends the server's process group when harness ends: harness holds the write end of the pipe
# on this process's stdin, and the kernel closes it however harness dies (SIGKILL included).
WATCHDOG = r"""
import os, signal, sys, time
group = int(sys.argv[1])
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is harness's to handle: it stops the group
def end(*_):
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                os._exit(0)
            time.sleep(0.1)
    os._exit(0)
signal.signal(signal.SIGTERM, end)
while os.read(0, 1):
    pass
end()
"""


class Tethered:
    """A command in a process group of its own, ended with us: by `stop()`, or, if harness
    dies without running it, by a small watchdog process that sees harness's end of a pipe
    close and ends the group (TERM, then KILL)."""

    def __init__(self, cmd: list[str], env: dict[str, str] | None = None, log: Path | None = None):
        """`log`: a file the command's stdout and stderr are appended to; None: our own."""
        self.log, out = log, open(log, "ab") if log else None
        self.log_start = out.tell() if out else 0  # where this start's lines begin
        try:
            self.proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=out,
                                         stderr=subprocess.STDOUT if out else None)
        finally:
            if out:
                out.close()
        read, self._write = os.pipe()
        # A session of its own too: a signal to harness's whole group (a terminal hanging up,
        # `kill -9 -PGID`) must not take the watchdog down with harness.
        self.watchdog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(self.proc.pid)], stdin=read,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        os.close(read)

    def __enter__(self) -> "Tethered":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, grace: float = 15.0) -> int | None:
        """End the whole group (the server and every process it started); its exit code."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            break
        if self._write is not None:
            os.close(self._write)  # the watchdog ends what is left of the group, and itself
            self._write = None
            self.watchdog.wait(30)
        return self.proc.poll()

    def wait(self) -> int:
        return self.proc.wait()

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        """The last lines this start wrote to its log, as the end of an error message."""
        if self.log is None:
            return "; its output is above"
        try:
            with open(self.log, "rb") as f:
                f.seek(self.log_start)
                text = f.read().decode(errors="replace")
        except OSError:
            text = ""
        last = [line for line in text.splitlines() if line.strip()][-lines:]
        if not last:
            return f"; its log {self.log} is empty"
        return f"; the end of its log {self.log}:\n" + "\n".join(f"  {line}" for line in last)


def wait_healthy(proc: Tethered, url: str, what: str, timeout: float = START_TIMEOUT) -> None:
    """Until `url`/health answers; an error with the end of its log if it exits or stays silent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.proc.poll()
        if code is not None:
            raise HarnessError(f"{what} exited (code {code}) before it answered{proc.log_tail()}")
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    proc.stop()
    raise HarnessError(f"{what} did not answer at {url} within {timeout:.0f} s{proc.log_tail()}")
