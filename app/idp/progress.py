"""Export progress a person can watch: a live line on a terminal (rich), log lines otherwise.

Shows pages, users, groups, memberships, requests, retries and the rate-limit wait in progress.
Not app.batch.progress: that one is a bar of rows against a known total with a rate and an ETA;
an export has no total (nobody knows how many pages are left) and its news is the requests and the
rate-limit waits, redrawn from a ticker while no page arrives.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field

log = logging.getLogger("app.idp")


@dataclass
class Tally:
    pages: int = 0
    users: int = 0
    groups: int = 0
    memberships: int = 0
    streams_done: int = 0
    streams_known: int = 0
    started: float = field(default_factory=time.monotonic)


class Progress:
    """Call `update()` whenever something moved; it redraws at most a few times a second."""

    def __init__(self, provider: str, core, tally: Tally, *, terminal: bool | None = None,
                 log_every: float = 10.0) -> None:
        self.provider = provider
        self.core = core
        self.tally = tally
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.log_every = log_every
        self._last_log = 0.0
        self._live = None

    def line(self) -> str:
        t, stats = self.tally, self.core.stats
        elapsed = time.monotonic() - t.started
        text = (f"{self.provider}: {t.pages} pages, {t.users} users, {t.groups} groups, "
                f"{t.memberships} memberships, {stats.requests} requests")
        if stats.retries:
            text += f", {stats.retries} retries"
        wait = self.core.limiter.current_wait()
        if wait is not None:
            text += f", waiting {wait[1]:.1f}s for the {wait[0]} rate limit"
        return text + f", streams {t.streams_done}/{t.streams_known}, {elapsed:.0f}s"

    def __enter__(self) -> Progress:
        if self.terminal:
            from rich.console import Console
            from rich.live import Live

            self._live = Live("", console=Console(stderr=True), refresh_per_second=4, transient=False)
            self._live.start()
        return self

    def update(self) -> None:
        if self._live is not None:
            self._live.update(self.line())
            return
        now = time.monotonic()
        if now - self._last_log >= self.log_every:
            self._last_log = now
            log.info("%s", self.line())

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.update(self.line())
            self._live.stop()
        else:
            log.info("%s", self.line())
