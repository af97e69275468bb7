"""Stopping on a signal: SIGINT (Ctrl-C) and SIGTERM (what Kubernetes, systemd and CI runners
send) both raise `Interrupt` in the main thread, a KeyboardInterrupt that remembers its signal.

Whatever the command is doing unwinds the way Ctrl-C unwinds it: a statement in progress is
cancelled and its transaction rolled back (the driver does that for a KeyboardInterrupt), the batch
engine's workers finish the batch they hold and stop (app.batch.crew), connections close and with
them every advisory lock. The command then ends with one line and `exit_code(exc)`: 130 for
SIGINT, 143 for SIGTERM (128 + the signal's number, as shells report it)."""

from __future__ import annotations

import signal
import threading


class Interrupt(KeyboardInterrupt):
    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum, frame) -> None:
    raise Interrupt(signum)


def install() -> None:
    """SIGINT and SIGTERM raise Interrupt from here on (only the main thread may set handlers;
    elsewhere, as in a caller's thread, the caller's handlers stay)."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _raise)


def name(exc: BaseException) -> str:
    """SIGINT or SIGTERM: the signal that raised `exc`."""
    return signal.Signals(exit_code(exc) - 128).name


def exit_code(exc: BaseException) -> int:
    """128 + the signal's number; a plain KeyboardInterrupt counts as SIGINT."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))
