"""The write loop: a few workers take the links left to set one at a time and write each through
the provider's target; a recorder commits what they did, a few results per short transaction, as
soon as they come; the progress is logged (app.progress).

A failed account is recorded and reported and the loop goes on. Four things stop it (the workers
finish what they have in flight, the recorder commits it, then the error is raised): the
provider dropping what was written (Keycloak's user profile), credentials refused before any write
succeeded (401, or a 403 that means a missing scope or role), a provider host that cannot be
reached at all, and the database refusing to record.
And the loop halts, taking no new account, after FAILURES_IN_A_ROW accounts in a row failed
without an answer about the account itself (5xx, timeouts, 429s past their retries: the provider
is down or throttled hard); what is left waits for the next run. A 4xx about one account (a
validation error) is that account's failure only; a 404 saying the account does not exist is no
failure: the account is `gone` (deleted at the provider), reported once and not tried again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy.exc import DBAPIError

from app import db
from app.errors import ConfigError, OrgmigError
from app.idp.errors import IdpAuthError, IdpConnectError, IdpError, IdpHttpError
from app.progress import Progress
from app.writeback.store import Link, Outcome, Store
from app.writeback.targets import Target, is_gone

log = logging.getLogger("app.writeback")

SHOWN_FAILURES = 10  # failures kept, one line each, for the command to print
FAILURES_IN_A_ROW = 25  # outage-like failures in a row after which no new account is taken


@dataclass
class Tally:
    written: int = 0
    present: int = 0
    failed: int = 0
    gone: int = 0  # deleted at the provider (a 404 about the account)
    failures: list[str] = field(default_factory=list)
    halted: str | None = None  # why the loop stopped taking accounts before the end
    in_a_row: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> int:
        return self.written + self.present + self.failed + self.gone


async def dry_check(target: Target) -> str:
    """The dry run's read-only check of where the value lands (see Target.check); credentials or
    scopes refused end it as they end a run (ConfigError)."""
    async with target.core:
        try:
            return await target.check()
        except IdpAuthError as exc:
            raise ConfigError(f"{target.name} write-back check: {exc}") from None


class WriteLoop:
    def __init__(self, target: Target, store: Store, todo: list[Link], workers: int,
                 log_every: float = 10.0) -> None:
        self.target = target
        self.store = store
        self.todo = todo
        self.workers = max(1, min(workers, len(todo) or 1))
        self.tally = Tally()
        # logged, never drawn: the command prints its own summary on the terminal
        self.progress = Progress(self.line, log, terminal=False, log_every=log_every)
        self.fatal: OrgmigError | None = None
        self._items: Iterator[Link] = iter(todo)
        self._queue: asyncio.Queue[Outcome | None] = asyncio.Queue()
        self._unrecorded = False

    async def run(self) -> Tally:
        async with self.target.core:
            try:
                await self.target.prepare()
            except IdpAuthError as exc:  # credentials or scopes: configuration, as for a write
                raise ConfigError(f"{self.target.name} write-back stopped: {exc}") from None
            recorder = asyncio.create_task(self._record())
            ticker = asyncio.create_task(self.progress.tick())
            try:
                await asyncio.gather(*(self._work() for _ in range(self.workers)))
            finally:
                ticker.cancel()
                self._queue.put_nowait(None)
                await recorder
                self.progress.close()
        if self.fatal is not None:
            raise self.fatal
        return self.tally

    # ---- workers
    async def _work(self) -> None:
        for link in self._items:  # shared: each link goes to one worker
            if self.fatal is not None or self.tally.halted is not None:
                return
            try:
                status = await self.target.write(link.external_id, link.value)
            except ConfigError as exc:  # the provider kept nothing: every other write would do the same
                self._stop(exc)
                self._done(Outcome(link, "failed", None, str(exc)))
                return
            except IdpConnectError as exc:  # the host cannot be reached: a setting, the same for every account
                self._stop(exc)
                return
            except IdpAuthError as exc:
                if exc.status == 401 or (self.tally.written + self.tally.present) == 0:
                    self._stop(ConfigError(f"{self.target.name} write-back stopped: {exc}"))
                self._done(Outcome(link, "failed", exc.status, str(exc)))
                continue
            except IdpHttpError as exc:
                self._done(Outcome(link, "gone" if is_gone(self.target, exc) else "failed", exc.status, str(exc)))
                continue
            except IdpError as exc:
                self._done(Outcome(link, "failed", None, str(exc)))
                continue
            self._done(Outcome(link, status))

    def _stop(self, exc: OrgmigError) -> None:
        if self.fatal is None:
            self.fatal = exc

    def _done(self, outcome: Outcome) -> None:
        t = self.tally
        if outcome.status == "written":
            t.written += 1
        elif outcome.status == "present":
            t.present += 1
        elif outcome.status == "gone":
            t.gone += 1
        else:
            t.failed += 1
            if len(t.failures) < SHOWN_FAILURES:
                t.failures.append(f"user {outcome.link.user_id} ({outcome.link.external_id}): {outcome.error}")
        status = outcome.http_status or 0
        about_the_account = outcome.status != "failed" or (400 <= status < 500 and status != 429)
        t.in_a_row = 0 if about_the_account else t.in_a_row + 1
        if t.in_a_row >= FAILURES_IN_A_ROW and t.halted is None:
            t.halted = (f"halted after {t.in_a_row} accounts in a row failed without an answer about the account"
                        f" (the last: {outcome.error})")
        self._queue.put_nowait(outcome)

    # ---- recorder and progress
    async def _record(self) -> None:
        """Commit results as they come: whatever is queued when the last commit ends goes in the
        next one. A database that refuses stops the workers (a rerun writes those accounts again,
        which sets the same value)."""
        closing = False
        while not closing:
            first = await self._queue.get()
            batch = [] if first is None else [first]
            closing = first is None
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    closing = True
                else:
                    batch.append(item)
            if not batch or self._unrecorded:
                continue
            try:
                await asyncio.to_thread(self.store.record, batch)
            except DBAPIError as exc:
                self._unrecorded = True
                self._stop(db.explain(exc, self.store.engine.url))

    def line(self) -> str:
        t, stats = self.tally, self.target.core.stats
        text = (f"{self.target.name} write-back: {t.done:,}/{len(self.todo):,} accounts ({t.written:,} written,"
                f" {t.present:,} already set, {t.failed:,} failed, {t.gone:,} gone), {stats.requests:,} requests")
        if stats.rate_limited:
            text += f", {stats.rate_limited:,} rate-limited answers waited out"
        wait = self.target.core.limiter.current_wait()
        if wait is not None:
            text += f", waiting {wait[1]:.1f}s for the rate limit"
        return text + f", {time.monotonic() - t.started:.0f}s"
