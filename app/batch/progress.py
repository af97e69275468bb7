"""Progress a person can watch: a bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("app.progress")


def eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Progress:
    """Counts rows against a total and reports rate and ETA; `bar=None` picks by terminal."""

    def __init__(self, label: str, total: int, done: int = 0, bar: bool | None = None,
                 log_every: float = 5.0):
        self.label = label
        self.total = max(total, 0)
        self.done = done
        self._started_done = done
        self._t0 = time.monotonic()
        self._last_log = self._t0
        self._log_every = log_every
        self._bar = None
        use_bar = sys.stderr.isatty() if bar is None else bar
        if use_bar:
            from rich.progress import BarColumn, MofNCompleteColumn, TaskProgressColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(label, total=self.total, completed=done, rate="")

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self._t0
        return (self.done - self._started_done) / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        r = self.rate
        return (self.total - self.done) / r if r > 0 else None

    def line(self) -> str:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (f"{self.label}: {self.done:,}/{self.total:,} rows ({pct:.1f}%), "
                f"{self.rate:,.0f} rows/s, ETA {eta(self.eta)}")

    def advance(self, rows: int) -> None:
        self.done += rows
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, rate=f"{self.rate:,.0f} rows/s")
            return
        now = time.monotonic()
        if now - self._last_log >= self._log_every:
            self._last_log = now
            log.info(self.line())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        else:
            log.info(self.line())
