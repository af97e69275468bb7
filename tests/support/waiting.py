"""Waiting for a condition, never for a fixed time (the tests share a loaded machine):
`wait_until(probe)` polls until the probe holds, failing the test after a generous deadline or at
once when the process or thread it waits on ended first; `Watched` reads a child process's stderr
as it comes, so a test can wait for a line of it."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any


class Watched:
    """A child process started with `stderr=subprocess.PIPE, text=True` whose stderr a thread reads
    line by line as it comes."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self._lines.append(line)

    def stderr(self) -> str:
        """What it printed on stderr so far."""
        return "".join(self._lines)

    def says(self, text: str) -> bool:
        return text in self.stderr()

    def poll(self) -> int | None:
        return self.proc.poll()

    def finish(self, timeout: float = 120) -> subprocess.CompletedProcess:
        """Waits for it to exit: its exit code and all it printed on stderr (stdout, if piped)."""
        self.proc.wait(timeout)
        self._reader.join(timeout)
        stdout = self.proc.stdout.read() if self.proc.stdout else None
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, stdout, self.stderr())


Alive = subprocess.Popen | threading.Thread | Watched


def _ended(alive: Alive) -> str | None:
    """None while `alive` runs; else what to say about its end."""
    if isinstance(alive, threading.Thread):
        return None if alive.is_alive() else "its thread ended"
    if alive.poll() is None:
        return None
    if isinstance(alive, Watched):
        err = alive.stderr()
    else:
        err = alive.stderr.read() if alive.stderr else ""
    return f"the process ended (exit code {alive.poll()}): {err[-3000:]}"


def wait_until(probe: Callable[[], Any], seconds: float = 60, *, what: str = "the condition",
               alive: Alive | None = None, every: float = 0.05) -> None:
    """Polls `probe()` until it returns something true. Fails the test, naming `what`, when
    `seconds` pass first, or as soon as `alive` (the process or thread that is to bring the
    condition about) has ended without it."""
    deadline = time.monotonic() + seconds
    while not probe():
        ended = None if alive is None else _ended(alive)
        if ended is not None:
            if probe():
                return
            raise AssertionError(f"{what}: never, {ended}")
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f} s"
        time.sleep(every)
