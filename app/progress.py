"""What a long command shows a person while it works, written once for all of them (a data step's
run, an export, a write-back): on a terminal one live line, redrawn as things move; otherwise a
log line every `log_every` seconds; and the last line when it ends. Each says where it is in its
own `line()`: rows of a known total with a rate and the time left (RowProgress), or an export's
pages and requests, which have no total.

    with Progress(lambda: f"{done} pages", log) as progress:
        ...; progress.update()          # after something moved (or from a ticker: `tick`)
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable

ROWS_LOG = logging.getLogger("app.progress")


def eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    """`line()` shown live on a terminal (`terminal=None`: when stderr is one), else logged at most
    every `log_every` seconds; `close()` (or leaving the `with`) shows or logs the last line."""

    def __init__(self, line: Callable[[], str], logger: logging.Logger, *, terminal: bool | None = None,
                 log_every: float = 10.0) -> None:
        self.line = line
        self.logger = logger
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.log_every = log_every
        self._last_log = time.monotonic()
        self._live = None
        self._lock = threading.Lock()

    def start(self) -> Progress:
        if self.terminal and self._live is None:
            from rich.console import Console
            from rich.live import Live

            self._live = Live("", console=Console(stderr=True), refresh_per_second=4, transient=False)
            self._live.start()
        return self

    def update(self) -> None:
        if self._live is not None:
            self._live.update(self.render())
            return
        now = time.monotonic()
        with self._lock:
            due = now - self._last_log >= self.log_every
            if due:
                self._last_log = now
        if due:
            self.logger.info("%s", self.line())

    def render(self):
        """What a terminal shows: the line."""
        return self.line()

    async def tick(self, every: float = 1.0) -> None:
        """Keep it current while nothing moves (requests waiting on a rate limit), until cancelled."""
        while True:
            await asyncio.sleep(every)
            self.update()

    def close(self) -> None:
        if self._live is not None:
            self._live.update(self.render())
            self._live.stop()
            self._live = None
        else:
            self.logger.info("%s", self.line())

    def __enter__(self) -> Progress:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


class RowProgress(Progress):
    """Rows done of a known total, with the rate since it started and the time left at that rate."""

    def __init__(self, label: str, total: int, done: int = 0, *, terminal: bool | None = None,
                 log_every: float = 5.0, logger: logging.Logger = ROWS_LOG) -> None:
        super().__init__(self.rows_line, logger, terminal=terminal, log_every=log_every)
        self.label = label
        self.total = max(total, 0)
        self.done = done
        self._started_done = done
        self._t0 = time.monotonic()
        self.start()

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self._t0
        return (self.done - self._started_done) / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        r = self.rate
        return (self.total - self.done) / r if r > 0 else None

    def rows_line(self) -> str:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (f"{self.label}: {self.done:,}/{self.total:,} rows ({pct:.1f}%), "
                f"{self.rate:,.0f} rows/s, ETA {eta(self.eta)}")

    def render(self):
        """A bar of the rows done beside the line."""
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        grid = Table.grid(padding=(0, 1))
        grid.add_row(ProgressBar(total=self.total or 1, completed=self.done if self.total else 1, width=30),
                     self.line())
        return grid

    def advance(self, rows: int) -> None:
        self.done += rows
        self.update()
