"""Stopping on a signal: SIGTERM (what Kubernetes, systemd and CI runners send) is handled as
SIGINT (Ctrl-C) is: a KeyboardInterrupt in the main thread, or, inside `asyncio.run`, the
cancellation of its main task (asyncio's own SIGINT handler, which then raises KeyboardInterrupt).

Whatever the command is doing unwinds the way Ctrl-C unwinds it: a statement in progress is
cancelled and its transaction rolled back (the driver does that for a KeyboardInterrupt), the batch
engine's workers finish the batch they hold and stop (app.batch.crew), connections close and with
them every advisory lock. The command then ends with one line and `exit_code()`: 130 for SIGINT,
143 for SIGTERM (128 + the signal's number, as shells report it)."""

from __future__ import annotations

import signal
import threading

_received: set[int] = set()


def _on_sigterm(signum, frame) -> None:
    _received.add(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)  # Python's (raises KeyboardInterrupt) or asyncio's
    else:
        raise KeyboardInterrupt


def install() -> None:
    """SIGTERM stops the command as SIGINT does from here on (only the main thread may set
    handlers; elsewhere, as in a caller's thread, the caller's handlers stay)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def signum() -> int:
    """The signal that interrupted the command: SIGTERM once one was received, else SIGINT."""
    return signal.SIGTERM if signal.SIGTERM in _received else signal.SIGINT


def name() -> str:
    return signal.Signals(signum()).name


def exit_code() -> int:
    """128 + the signal's number: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signum())
