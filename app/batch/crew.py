"""The workers of one process on one run: each a thread with its own connection, looping claim →
process → release, with retries, splits, a throttle and an adaptive batch size.

Claims work across processes (`orgmig work` beside `alembic upgrade`): a worker holds a session
advisory lock on every range it works on, from the claim's transaction until the range's
`succeeded` mark is committed. A range left `claimed` or `failed` whose lock nobody holds was
left by a worker that died (or failed); any worker takes it over before claiming a new one. So
no range is processed twice at once, and none is lost: a worker that finds only ranges others
hold waits for them, ready to take one over should its holder die.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import Connection

from app import db
from app.batch.attempts import describe, unless_broken
from app.batch.context import RunContext
from app.batch.errors import MigrationError, Paused
from app.batch.ledger import Run
from app.batch.pacer import Pacer
from app.batch.step import Batch, BatchResult
from app.progress import RowProgress

log = logging.getLogger("app.batch")

# How often a worker with nothing to claim looks again for ranges other processes hold; a range of
# its own process given back wakes it at once.
WAIT_FOR_OTHERS_S = 0.5
# Alone on the database (app.batch.pacer): batches grow toward this duration (AloneSize), at most
# a quarter of the statement timeout; their rows at most ALONE_MAX_ROWS.
ALONE_BATCH_MS = 1_000
ALONE_BAND = (0.90, 0.95)
ALONE_MAX_ROWS = 100_000


class BatchSize:
    """The size of the next claim: fixed, or adapted towards a target batch duration the way
    GitLab's batch optimizer does (grow or shrink by the ratio of target to a smoothed duration,
    at most doubling or halving at a time, within bounds)."""

    def __init__(self, size: int, target_ms: int, lowest: int = 10, highest: int = 100_000) -> None:
        self.size = size
        self.target_ms = target_ms
        self.lowest, self.highest = lowest, highest
        self._ms_per_row: float | None = None
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            return self.size

    def observe(self, rows: int, ms: int) -> None:
        if not self.target_ms or rows <= 0:
            return
        with self._lock:
            per_row = max(ms, 1) / rows
            self._ms_per_row = per_row if self._ms_per_row is None else 0.7 * self._ms_per_row + 0.3 * per_row
            wanted = self.target_ms / self._ms_per_row
            self.size = int(min(self.highest, max(self.lowest, min(self.size * 2, max(self.size // 2, wanted)))))


class AloneSize:
    """The size of the next claim while the run is alone on the database (no application to
    hold locks against or to share the WAL with): GitLab's batch optimizer, with ALONE_BATCH_MS as
    its interval. The time efficiency is the duration a batch of the current size takes (a
    smoothed time a row, exponential average with weight 0.4, times the size) over the target;
    outside the band 0.90-0.95 the size is multiplied by 0.95 / efficiency, at most doubling
    (the adaptive size's step, so a run reaches it within a few rounds; GitLab's is 1.2 every
    two minutes). Never under the configured size, except near the end: a claim takes at most
    half of a worker's share of the rows left, so the workers finish together instead of one
    working through a large last batch while the others wait. A client arriving ends it at the
    next claim (the configured size again, Crew.claim_size)."""

    def __init__(self, size: int, target_ms: int, highest: int = ALONE_MAX_ROWS) -> None:
        self.lowest = size
        self.size = size
        self.target_ms = target_ms
        self.highest = max(size, highest)
        self._ms_per_row: float | None = None
        self._lock = threading.Lock()

    def next(self, rows_left: int, workers: int) -> int:
        """The claim size, given the rows not yet claimed and the workers sharing them."""
        with self._lock:
            size = self.size
        return even_end(size, self.lowest, rows_left, workers)

    def observe(self, rows: int, ms: int) -> None:
        if rows <= 0 or self.target_ms <= 0:
            return
        with self._lock:
            per_row = max(ms, 1) / rows
            self._ms_per_row = per_row if self._ms_per_row is None else 0.6 * self._ms_per_row + 0.4 * per_row
            efficiency = self.size * self._ms_per_row / self.target_ms
            low, high = ALONE_BAND
            if low <= efficiency <= high:
                return
            wanted = self.size * min(high / efficiency, 2.0)
            self.size = int(min(self.highest, max(self.lowest, wanted)))


def even_end(size: int, lowest: int, rows_left: int, workers: int) -> int:
    """A claim of `size` rows, but at most half of a worker's share of the rows not yet claimed,
    so that the workers finish together instead of one working through a large last batch while
    the others wait; never under `lowest` (the configured size), except at the very end."""
    share = math.ceil(max(rows_left, 0) / (2 * max(workers, 1)))
    return max(1, min(size, max(lowest, share) if rows_left > lowest else size))


class Throttle:
    """At most `rows_per_second` rows a second for this process (0: no limit)."""

    def __init__(self, rows_per_second: int) -> None:
        self.rate = rows_per_second
        self._t0 = time.monotonic()
        self._rows = 0
        self._lock = threading.Lock()

    def after(self, rows: int, stop: threading.Event) -> None:
        """Wait until the rows done so far are within the rate, or until `stop` is set."""
        if not self.rate:
            return
        with self._lock:
            self._rows += rows
            due = self._t0 + self._rows / self.rate
        delay = due - time.monotonic()
        if delay > 0:
            stop.wait(delay)


@dataclass
class Crew:
    """What the workers of one process share; `runner` gives the step, the options, the ledger
    and the connections and transactions."""

    runner: RunContext
    run: Run
    progress: RowProgress
    state: object = None
    batches: int = 0
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    given_back: threading.Condition = field(default_factory=threading.Condition)
    generation: int = 0  # ranges this process's workers have given back (done or failed)
    running: int = 0  # workers not yet stopped
    all_stopped: threading.Event = field(default_factory=threading.Event)
    workers: int = 1
    claimed: int = 0  # rows of the ranges this process's workers hold (claimed, not yet done)

    def __post_init__(self) -> None:
        opts = self.runner.opts
        self.size = BatchSize(opts.batch_size, opts.target_batch_ms)
        self.alone_size = AloneSize(opts.batch_size, min(ALONE_BATCH_MS, opts.statement_timeout_ms // 4))
        # The batch knobs an operator sets (a pause between batches, a rows-a-second cap, a target
        # batch duration) are kept alone too: the batches grow only without them.
        self.grows = not (opts.pause_ms or opts.max_rows_per_second or opts.target_batch_ms)
        self.throttle = Throttle(opts.max_rows_per_second)
        self.pacer = Pacer(self.runner, self.run)

    # -- the threads ---------------------------------------------------------------------------

    def work(self, workers: int) -> None:
        """Run `workers` workers until no range is left (or one fails, or a pause is asked).
        The workers are threads even when there is one: the main thread, which receives signals
        (app.interrupt), only waits for them, so on SIGINT or SIGTERM every worker commits the
        batch it holds, then stops, and the interrupt goes on up. (It waits on an event, not on
        Thread.join: an interrupted join can return for a thread still running, CPython gh-90882.)
        The pacer (app.batch.pacer) steers them."""
        self.workers = workers
        self.pacer.start(workers)
        try:
            self._work(workers)
        finally:
            self.pacer.close()

    def _work(self, workers: int) -> None:
        self.running = workers
        for i in range(workers):
            threading.Thread(target=self._worker, name=f"orgmig-worker-{i}").start()
        try:
            while not self.all_stopped.wait(0.2):
                pass
        except BaseException:
            self._halt()
            self.all_stopped.wait()
            raise
        if self.error is not None:
            raise self.error

    def _worker(self) -> None:
        r = self.runner
        conn: Connection | None = None
        try:
            while not self.stop.is_set():
                seen = self.generation
                size = self.claim_size()
                conn, claim = self._claim(conn, size)
                if claim is None:
                    return
                if claim == "wait":
                    self._wait_for_others(seen)
                    continue
                start, end = claim
                rows = None
                with self.lock:
                    self.claimed += size
                try:
                    conn, rows = self._process_with_retries(conn, start, end)
                finally:
                    if rows is not None:
                        conn = self._release(conn, start)
                    self._give_back()
                    with self.lock:
                        self.claimed -= size
                        if rows is not None:
                            self.batches += 1
                            self.progress.advance(rows)
                if rows is None:
                    continue
                self.throttle.after(rows, self.stop)
                self.pacer.after(rows, self.stop)
                if r.opts.pause_ms:
                    self.stop.wait(r.opts.pause_ms / 1000)
        except BaseException as exc:  # noqa: BLE001 - kept, and raised by work() in the main thread
            with self.lock:
                if self.error is None:
                    self.error = exc
            self._halt()
        finally:
            try:
                if conn is not None:
                    conn.close()
            finally:
                with self.lock:
                    self.running -= 1
                    if not self.running:
                        self.all_stopped.set()

    def _give_back(self) -> None:
        """A range of this process is done or failed: wake the workers waiting for it (a claim
        may now find the run finished, or the range to take over)."""
        with self.given_back:
            self.generation += 1
            self.given_back.notify_all()

    def _wait_for_others(self, seen: int) -> None:
        """Until a range of this process is given back after generation `seen`, the crew stops,
        or WAIT_FOR_OTHERS_S passes (for ranges other processes hold). Without the wake-up, a
        run's last batch cost the other workers' sleep: 0.5 s on every run, however small."""
        with self.given_back:
            self.given_back.wait_for(lambda: self.generation != seen or self.stop.is_set(), WAIT_FOR_OTHERS_S)

    def _halt(self) -> None:
        self.stop.set()
        self._give_back()

    def _connect(self) -> Connection:
        """A worker's connection, holding its share of the run's liveness lock."""
        conn = self.runner.connect()
        self.runner.ledger.join(conn, self.run.id, worker=True)
        return conn

    # -- claim, process, release --------------------------------------------------------------

    def _claim(self, conn: Connection | None, size: int):
        """(connection, range) of `size` rows (or a range left unfinished), (connection, "wait")
        while only ranges others hold are left, or (connection, None) when the run's ranges are
        all done. Retried like a batch."""
        r = self.runner

        def attempt(_: int):
            nonlocal conn
            if conn is None:
                conn = self._connect()
            with r.tx(conn):
                r.step.keys_ready(conn, r.direction, self.run.id, self.state)
                return r.ledger.claim(conn, self.run, size)

        def failed(exc: BaseException, _: int, __: bool) -> None:
            nonlocal conn
            conn = unless_broken(conn, exc)

        claim = r.attempts.call("claiming a batch", attempt, failed=failed)
        if isinstance(claim, dict):
            raise Paused(r.paused_message(claim["cursor_key"], claim["rows_done"], claim["total_rows"]))
        return conn, claim

    def claim_size(self) -> int:
        """The configured (or adaptive) size, or the larger one the step asks for in this run
        (Step.batch_rows), as the pacer bounds it while paced; while the run is alone on the
        database, the alone size (AloneSize). The step's size and the alone size only when no
        operator set a batch knob."""
        if self.grows and self.pacer.alone:
            return self.alone_size.next(self._rows_left(), self.workers)
        size = self.size.next()
        if self.grows:
            wanted = self.runner.step.batch_rows(self.state, size)
            if wanted > size:
                size = even_end(wanted, size, self._rows_left(), self.workers)
        return self.pacer.claim_size(size)

    def _rows_left(self) -> int:
        """The run's rows not yet done nor claimed by this process's workers."""
        with self.lock:
            return self.run.total_rows - self.progress.done - self.claimed

    def _release(self, conn: Connection | None, start: int) -> Connection | None:
        if conn is None:
            return None  # the connection broke: its locks went with it
        try:
            self.runner.ledger.release(conn, self.run.id, start)
            conn.commit()
        except Exception as exc:  # noqa: BLE001 - a lock on a broken connection is released with it
            return unless_broken(conn, exc)
        return conn

    def _record_failure(self, start: int, end: int, attempts: int, error: str, fatal: bool) -> None:
        """Best effort: with the server gone, the failure cannot be recorded, and the range is
        still `claimed` in the ledger, which is what the next run needs to redo it."""
        r = self.runner
        try:
            with r.engine.connect() as conn, r.tx(conn):
                r.ledger.record(conn, self.run.id, start, end, "failed", attempts=attempts, error=error)
                r.ledger.set_status(conn, self.run.id, "failed" if fatal else None, error)
        except Exception as exc:  # noqa: BLE001 - the error being recorded matters more
            log.debug("%s: could not record the failure of %s..%s: %s", r.label, start, end, db.error_summary(exc))

    def _process_with_retries(self, conn: Connection | None, start: int,
                              end: int) -> tuple[Connection | None, int | None]:
        """(connection, rows read), or rows None when another worker took the range over."""
        r = self.runner

        def attempt(n: int) -> tuple[Connection | None, int | None]:
            nonlocal conn
            if conn is None:
                conn = self._connect()
                # The broken connection's lock went with it: take it again, unless another
                # worker has taken the range over meanwhile (or finished it: and so may our
                # own commit have, its answer lost with the connection).
                if not r.ledger.hold(conn, self.run.id, start):
                    conn.commit()
                    return conn, None
                if r.ledger.batch_status(conn, self.run.id, start) == "succeeded":
                    r.ledger.release(conn, self.run.id, start)
                    conn.commit()
                    return conn, None
                conn.commit()
            return conn, self._process(conn, start, end, n)

        def failed(exc: BaseException, n: int, last: bool) -> None:
            """Every failure is recorded; a statement timeout splits the batch first."""
            nonlocal conn, end
            err = describe(exc)
            conn = unless_broken(conn, exc)
            if not last and db.sqlstate(exc) == "57014" and end > start:
                # Too slow for statement_timeout: keep the first half; the second is left
                # `failed` and unheld, for any worker to take.
                mid = start + (end - start) // 2
                self._record_failure(mid + 1, end, 0, err, fatal=False)
                end = mid
            self._record_failure(start, end, n, err, fatal=last)

        def final(what: str, exc: BaseException, n: int) -> None:
            raise MigrationError(
                f"{r.label}: {what} failed after {n} attempt(s): {describe(exc)}. Nothing of that"
                " batch was written; fix the cause and run the same command again to resume") from None

        return r.attempts.call(lambda _: f"batch {start}..{end}", attempt, failed=failed, final=final)

    def _process(self, conn: Connection, start: int, end: int, attempt: int) -> int:
        r = self.runner
        started = time.monotonic()
        batch = Batch(self.run.id, r.direction, start, end, self.run.max_key, r.opts.allow_data_loss, self.state,
                      self.pacer.alone)
        apply = r.step.upgrade if r.direction == "upgrade" else r.step.downgrade
        with r.tx(conn, **r.step.batch_settings), self.pacer.batch(conn):
            result: BatchResult = apply(conn, batch)
            ms = int((time.monotonic() - started) * 1000)
            r.ledger.record(conn, self.run.id, start, end, "succeeded", rows_read=result.rows_read,
                            rows_written=result.rows_written, attempts=attempt, duration_ms=ms)
            r.ledger.add_rows_done(conn, self.run.id, result.rows_read)
        self.size.observe(result.rows_read, ms)
        self.alone_size.observe(result.rows_read, ms)
        return result.rows_read
