"""Retrying, in one place: the loop every retrying place runs (`Attempts.call`) and its policy:
which failures another attempt may cure, how many attempts, the capped exponential backoff with
jitter between them, the log line of each retry, what the connection is still good for, and
the one line that ends the run when attempts run out.

    attempts = Attempts.of(settings, label="user_settings upgrade")   # ORGMIG_MAX_BATCH_ATTEMPTS, ORGMIG_BACKOFF_*
    rows = attempts.call("claiming a batch", lambda attempt: claim(conn))

A place says what is its own through the hooks of `call`: `failed` after every failed attempt
(roll back, drop a broken connection, record the failure), `final` for the error that ends it
(by default the error itself, or the run's one line when the policy is `one_line`)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from sqlalchemy import Connection

from app import db
from app.batch.errors import ConcurrentChange, MigrationError

log = logging.getLogger("app.batch")
T = TypeVar("T")


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


def always(exc: BaseException) -> bool:
    return True


class BatchRetries(Protocol):
    """The settings a batch's retries come from (app.config.Settings and app.batch.Options)."""
    max_batch_attempts: int
    backoff_base_ms: int
    backoff_cap_ms: int


class Attempts:
    """A retry policy: at most `limit` attempts; after a failure `retryable` says another may
    cure, a wait of db.backoff(attempt, base_s, cap_s) (none when `pause` says so) and one log
    line at `level`. `retries` counts the retries made (for a run's summary)."""

    def __init__(self, limit: int, base_s: float, cap_s: float, *, label: str = "",
                 retryable: Callable[[BaseException], bool] = retryable,
                 pause: Callable[[BaseException], bool] = always,
                 one_line: bool = False, give_up: Callable[[str], None] | None = None,
                 level: int = logging.WARNING, logger: logging.Logger = log,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit, self.base_s, self.cap_s = limit, base_s, cap_s
        self.label = label
        self.retryable, self.pause = retryable, pause
        self.one_line = one_line  # the last failure ends in one line (MigrationError), not itself
        self.give_up = give_up  # records that line (the run marked failed)
        self.level, self.logger, self.sleep = level, logger, sleep
        self.retries = 0
        self._lock = threading.Lock()

    @classmethod
    def of(cls, s: BatchRetries, **policy) -> Attempts:
        """The batch's policy: ORGMIG_MAX_BATCH_ATTEMPTS attempts, ORGMIG_BACKOFF_BASE_MS doubling
        up to ORGMIG_BACKOFF_CAP_MS between them."""
        return cls(s.max_batch_attempts, s.backoff_base_ms / 1000, s.backoff_cap_ms / 1000, **policy)

    def call(self, what: str | Callable[[int], str], fn: Callable[[int], T], *,
             failed: Callable[[BaseException, int, bool], None] | None = None,
             final: Callable[[str, BaseException, int], None] | None = None,
             passes: tuple[type[BaseException], ...] = ()) -> T:
        """`fn(attempt)` (attempt 1, 2, ...) until it returns, retrying what the policy retries.
        After each failure `failed(exc, attempt, last)`; after the last, `final(what, exc, attempt)`
        may raise the error that ends it (by default `end`), else the failure itself is raised.
        Errors of the types in `passes` are raised at once, no attempt counted. `what` (or
        `what(attempt)`) names the work in the log line and the last error."""
        attempt = 1
        while True:
            try:
                return fn(attempt)
            except passes:
                raise
            except Exception as exc:
                last = self.is_final(exc, attempt)
                if failed is not None:
                    failed(exc, attempt, last)
                name = what(attempt) if callable(what) else what
                if last:
                    (final or self.end)(name, exc, attempt)
                    raise
                self.wait(name, describe(exc), attempt, self.pause(exc))
                attempt += 1

    def backoff(self, attempt: int) -> float:
        return db.backoff(attempt, self.base_s, self.cap_s)

    def is_final(self, exc: BaseException, attempt: int) -> bool:
        """No other attempt: the error is not one a retry cures, or the attempts ran out."""
        return not self.retryable(exc) or attempt >= self.limit

    def wait(self, what: str, error: str, attempt: int, pause: bool = True) -> None:
        """The retry's log line, then the backoff before attempt `attempt + 1`."""
        delay = self.backoff(attempt) if pause else 0.0
        self.logger.log(self.level, "%s; retrying in %.1fs (retry %d, attempt %d of %d)",
                        f"{self.label}: {what}: {error}" if self.label else f"{what}: {error}",
                        delay, attempt, attempt + 1, self.limit)
        with self._lock:
            self.retries += 1
        if delay:
            self.sleep(delay)

    def end(self, what: str, exc: BaseException, attempt: int) -> None:
        """The last failure of `what`: under a `one_line` policy, recorded (`give_up`) and raised
        as one line (MigrationError); otherwise left to raise itself."""
        if not self.one_line:
            return
        advice = db.hint(exc)
        message = (f"{self.label}: {what} failed after {attempt} attempt(s): {describe(exc)}"
                   + (f" ({advice})" if advice else "")
                   + ". Nothing was lost; run the same command again to resume")
        if self.give_up is not None:
            self.give_up(message)
        raise MigrationError(message) from None
