"""After a failed attempt: whether another may succeed, how long to wait before it, what the
connection is still good for, and the one line that ends the run when attempts run out."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Connection

from app import db
from app.batch.errors import ConcurrentChange, MigrationError
from app.batch.options import Options

log = logging.getLogger("app.batch")


def retryable(exc: BaseException) -> bool:
    return isinstance(exc, ConcurrentChange) or db.is_retryable(exc)


def describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ConcurrentChange) else db.error_summary(exc)


def unless_broken(conn: Connection | None, exc: BaseException | None = None) -> Connection | None:
    """`conn`, or None (closed) when it is unusable (after `exc`); the next attempt reconnects."""
    if conn is not None and (conn.invalidated or conn.closed or (exc is not None and db.connection_lost(exc))):
        with contextlib.suppress(Exception):
            conn.close()
        return None
    return conn


class Attempts:
    """The retry policy of one run: `max_batch_attempts`, capped exponential backoff with jitter,
    and a count of the retries made (for the summary)."""

    def __init__(self, options: Options, label: str, give_up: Callable[[str], None]) -> None:
        self.opts = options
        self.label = label
        self.give_up = give_up  # records the final message (the run marked failed)
        self.retries = 0
        self._lock = threading.Lock()

    def backoff(self, attempt: int) -> float:
        return db.backoff(attempt, self.opts.backoff_base_ms / 1000, self.opts.backoff_cap_ms / 1000)

    def count_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def is_final(self, exc: BaseException, attempt: int) -> bool:
        """No other attempt: the error is not one a retry cures, or the attempts ran out."""
        return not retryable(exc) or attempt >= self.opts.max_batch_attempts

    def wait(self, what: str, error: str, attempt: int) -> None:
        delay = self.backoff(attempt)
        log.warning("%s: %s: %s; retry %d in %.1fs", self.label, what, error, attempt, delay)
        self.count_retry()
        time.sleep(delay)

    def after_failure(self, what: str, exc: BaseException, attempt: int) -> None:
        """After a failed attempt at `what`: wait and return when another attempt may succeed;
        otherwise record the run failed and raise MigrationError (one line)."""
        err = describe(exc)
        if self.is_final(exc, attempt):
            advice = db.hint(exc)
            message = (f"{self.label}: {what} failed after {attempt} attempt(s): {err}"
                       + (f" ({advice})" if advice else "")
                       + ". Nothing was lost; run the same command again to resume")
            self.give_up(message)
            raise MigrationError(message) from None
        self.wait(what, err, attempt)
