"""The batch engine: keyset cursor, checkpoint, retry, timeouts, throttle, progress, pause.

A run walks a step's key range in batches. A worker first *claims* the next range (a short
transaction that advances the run's cursor and records the batch as `claimed`), then processes
it in one transaction holding the step's set-based SQL *and* the batch's `succeeded` mark, so a
kill at any moment loses nothing: the next run redoes the ranges left `claimed` or `failed` and
goes on from the cursor. Several workers (each its own connection) claim ranges side by side.
Lock and statement timeouts bound every statement; a batch that times out or deadlocks is
retried with capped exponential backoff and jitter, and a statement timeout splits the batch.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg.errors
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from app.config import get_settings
from app.db import error_summary
from app.progress import Progress
from app.steps.base import DowngradeRefused, Step

log = logging.getLogger("app.engine")

RETRYABLE = (
    psycopg.errors.LockNotAvailable,  # 55P03: lock_timeout
    psycopg.errors.QueryCanceled,  # 57014: statement_timeout
    psycopg.errors.DeadlockDetected,  # 40P01
    psycopg.errors.SerializationFailure,  # 40001
    # A concurrent writer (the application migrating a user at login) inserted a row the batch
    # was about to insert; the retry finds it and links it instead.
    psycopg.errors.UniqueViolation,  # 23505
)


class MigrationError(RuntimeError):
    """A run stopped; the message says why and what to do. Safe to print (no row values)."""


class Paused(MigrationError):
    """An operator asked the run to pause; it stopped between batches."""


class ConcurrentChange(RuntimeError):
    """Another writer changed the rows a batch works on; the batch is retried."""


@dataclass
class Options:
    batch_size: int
    lock_timeout_ms: int
    statement_timeout_ms: int
    max_attempts: int
    pause_ms: int = 0
    workers: int = 1
    allow_data_loss: bool = False
    progress_bar: bool | None = None
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 30.0

    @classmethod
    def from_settings(cls, **overrides) -> "Options":
        s = get_settings()
        values = dict(
            batch_size=s.batch_size, lock_timeout_ms=s.lock_timeout_ms,
            statement_timeout_ms=s.statement_timeout_ms, max_attempts=s.max_batch_attempts,
            pause_ms=s.pause_ms, workers=s.workers,
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class RunResult:
    run_id: int
    step: str
    direction: str
    rows_total: int
    rows_done: int
    batches: int
    retries: int
    seconds: float
    resumed: bool
    summary: dict = field(default_factory=dict)
    rows_done_now: int = 0  # rows this process did (a resumed run started with some done)

    @property
    def rate(self) -> float:
        return self.rows_done_now / self.seconds if self.seconds > 0 else 0.0


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, ConcurrentChange):
        return True
    orig = getattr(exc, "orig", None)
    if isinstance(orig, RETRYABLE):
        return True
    # A dropped connection: the batch rolled back with it; a new connection retries it.
    return isinstance(exc, OperationalError) and getattr(exc, "connection_invalidated", False)


class BatchEngine:
    """Runs one step in one direction on `engine` (its own connection, a transaction per batch)."""

    def __init__(self, engine: Engine, step: Step, direction: str, options: Options,
                 on_batch: Callable[[int, int], None] | None = None):
        if direction not in ("upgrade", "downgrade"):
            raise ValueError(f"direction must be upgrade or downgrade, not {direction!r}")
        self.engine = engine
        self.step = step
        self.direction = direction
        self.opts = options
        self.keys = step.keys(direction)
        self.on_batch = on_batch  # test and bench hook: called after each committed batch

    # -- run bookkeeping -------------------------------------------------------------------

    def _begin(self, conn: Connection):
        tx = conn.begin()
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(self.opts.lock_timeout_ms)}ms'")
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = '{int(self.opts.statement_timeout_ms)}ms'")
        # A batch and its checkpoint commit together, so a commit lost in a server crash loses
        # both and the batch simply runs again: no need to wait for the WAL flush.
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        return tx

    def _start_or_resume(self, conn: Connection) -> tuple[dict, bool]:
        step, direction = self.step.name, self.direction
        with self._begin(conn):
            # One runner at a time per step: a second one waits here, then sees the cursor moved.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('orgmig:' || :s))"), {"s": step})
            run = conn.execute(
                text("SELECT * FROM orgmig_run WHERE step = :s AND direction = :d"
                     " AND status NOT IN ('finished', 'cancelled') FOR UPDATE"),
                {"s": step, "d": direction},
            ).mappings().first()
            if run is not None:
                if run["pause_requested"]:
                    raise Paused(self._paused_message(run))
                conn.execute(
                    text("UPDATE orgmig_run SET status = 'running', last_error = NULL, updated_at = now()"
                         " WHERE id = :id"), {"id": run["id"]})
                return dict(run), True
            # A new run in this direction supersedes an unfinished one in the other direction.
            conn.execute(
                text("UPDATE orgmig_run SET status = 'cancelled', updated_at = now(),"
                     " last_error = 'superseded by a ' || :d || ' run'"
                     " WHERE step = :s AND direction <> :d AND status NOT IN ('finished', 'cancelled')"),
                {"s": step, "d": direction},
            )
            lower = None
            if direction == "upgrade":
                # After a finished upgrade (and no downgrade since), only newer keys remain.
                latest = conn.execute(
                    text("SELECT direction, status, max_key FROM orgmig_run WHERE step = :s"
                         " AND status = 'finished' ORDER BY id DESC LIMIT 1"), {"s": step},
                ).mappings().first()
                if latest and latest["direction"] == "upgrade" and latest["max_key"] is not None:
                    lower = latest["max_key"] + 1
            k = self.keys
            bounds = conn.execute(
                text(f"SELECT min({k.key}), max({k.key}), count(*) FROM {k.table}"
                     + (f" WHERE {k.key} >= :lower" if lower is not None else "")),
                {"lower": lower} if lower is not None else {},
            ).one()
            min_key, max_key, total = bounds
            run = conn.execute(
                text("INSERT INTO orgmig_run (step, direction, status, batch_size, min_key, max_key,"
                     " cursor_key, total_rows) VALUES (:s, :d, 'running', :bs, :mn, :mx, :cur, :total)"
                     " RETURNING *"),
                {"s": step, "d": direction, "bs": self.opts.batch_size, "mn": min_key, "mx": max_key,
                 "cur": None if min_key is None else min_key - 1, "total": total},
            ).mappings().one()
            return dict(run), False

    def _paused_message(self, run) -> str:
        return (f"{self.step.name} {self.direction} is paused at key {run['cursor_key']} "
                f"({run['rows_done']:,}/{run['total_rows']:,} rows); run `orgmig resume` and then "
                f"the same alembic command to continue")

    def _next_end(self, conn: Connection, cursor: int, max_key: int, size: int) -> int:
        k = self.keys
        end = conn.execute(
            text(f"SELECT {k.key} FROM {k.table} WHERE {k.key} > :c AND {k.key} <= :mx"
                 f" ORDER BY {k.key} OFFSET :off LIMIT 1"),
            {"c": cursor, "mx": max_key, "off": size - 1},
        ).scalar()
        return max_key if end is None else end

    def _record_failure(self, run_id: int, start: int, end: int, attempts: int, error: str,
                        fatal: bool) -> None:
        with self.engine.connect() as conn, conn.begin():
            conn.execute(
                text("INSERT INTO orgmig_batch (run_id, start_key, end_key, status, attempts, error)"
                     " VALUES (:r, :s, :e, 'failed', :a, :err)"
                     " ON CONFLICT (run_id, start_key) DO UPDATE SET end_key = EXCLUDED.end_key,"
                     " status = 'failed', attempts = EXCLUDED.attempts, error = EXCLUDED.error,"
                     " finished_at = now()"),
                {"r": run_id, "s": start, "e": end, "a": attempts, "err": error},
            )
            conn.execute(
                text("UPDATE orgmig_run SET last_error = :err, updated_at = now()"
                     + (", status = 'failed'" if fatal else "") + " WHERE id = :r"),
                {"r": run_id, "err": error},
            )

    def _connect(self) -> Connection:
        conn = self.engine.connect()
        # The target tables grow from empty during a run: a server-side prepared statement
        # planned while they were small would go on scanning them whole. Each batch statement
        # is planned for the tables as they are now (the foreign-key checks keep their cached
        # plans, which `plan_cache_mode = force_custom_plan` would throw away).
        driver = conn.connection.driver_connection
        if hasattr(driver, "prepare_threshold"):
            driver.prepare_threshold = None
        return conn

    def run(self) -> RunResult:
        t0 = time.monotonic()
        conn = self._connect()
        try:
            run, resumed = self._start_or_resume(conn)
            run_id = run["id"]
            with self._begin(conn):
                # Statistics for the key column the claims walk (ORDER BY key OFFSET n).
                conn.exec_driver_sql(f"ANALYZE {self.keys.table} ({self.keys.key})")
            with self._begin(conn):
                self.step.prepare(conn, self.direction, run_id)
            if self.direction == "downgrade":
                with self._begin(conn):
                    self.step.check_downgrade(conn, self.opts.allow_data_loss)
            with self._begin(conn):
                # Ranges a killed run had claimed but not finished, and failed ones: first.
                unfinished = conn.execute(
                    text("SELECT start_key, end_key FROM orgmig_batch WHERE run_id = :r"
                         " AND status <> 'succeeded' ORDER BY start_key"), {"r": run_id},
                ).all()
            if resumed:
                log.info("%s %s: resuming run %s at key %s (%s/%s rows done, %d unfinished batches"
                         " to redo)", self.step.name, self.direction, run_id, run["cursor_key"],
                         f"{run['rows_done']:,}", f"{run['total_rows']:,}", len(unfinished))
            self._redo = deque((a, b) for a, b in unfinished)
            self._lock = threading.Lock()
            self._stop = threading.Event()
            self._error: BaseException | None = None
            self._batches = self._retries = 0
            self._progress = Progress(f"{self.step.name} {self.direction}", run["total_rows"],
                                      run["rows_done"], bar=self.opts.progress_bar)
            try:
                self._run_workers(run)
                with self._begin(conn):
                    left = conn.execute(
                        text("SELECT count(*) FROM orgmig_batch WHERE run_id = :r"
                             " AND status <> 'succeeded'"), {"r": run_id}).scalar()
                    if left:
                        raise MigrationError(
                            f"{self.step.name} {self.direction}: {left} batches are not finished;"
                            " run the same command again to redo them")
                    self.step.finish(conn, self.direction, run_id)
                    conn.execute(
                        text("UPDATE orgmig_run SET status = 'finished', finished_at = now(),"
                             " updated_at = now(), rows_done = total_rows, last_error = NULL"
                             " WHERE id = :r"), {"r": run_id})
                with self._begin(conn):
                    summary = self.step.summary(conn, self.direction, run_id)
            finally:
                self._progress.close()
        finally:
            conn.close()
        return RunResult(run_id, self.step.name, self.direction, run["total_rows"],
                         self._progress.done, self._batches, self._retries,
                         time.monotonic() - t0, resumed, summary,
                         self._progress.done - run["rows_done"])

    def _run_workers(self, run: dict) -> None:
        workers = max(1, int(self.opts.workers))
        if workers == 1:
            self._worker(run)
        else:
            threads = [threading.Thread(target=self._worker, args=(run,), name=f"orgmig-worker-{i}")
                       for i in range(workers)]
            for t in threads:
                t.start()
            try:
                for t in threads:
                    while t.is_alive():
                        t.join(0.2)
            except BaseException:
                # Ctrl-C: every worker finishes the batch it holds, then stops.
                self._stop.set()
                for t in threads:
                    t.join()
                raise
        if self._error is not None:
            raise self._error

    def _worker(self, run: dict) -> None:
        conn = None
        try:
            conn = self._connect()
            while not self._stop.is_set():
                claim = self._claim(conn, run)
                if claim is None:
                    return
                conn = self._process_with_retries(conn, run, *claim)
                if self.opts.pause_ms:
                    time.sleep(self.opts.pause_ms / 1000)
        except BaseException as exc:
            with self._lock:
                if self._error is None:
                    self._error = exc
            self._stop.set()
            if threading.current_thread() is threading.main_thread():
                raise
        finally:
            if conn is not None:
                conn.close()

    def _claim(self, conn: Connection, run: dict) -> tuple[int, int] | None:
        """The next range to process: a left-over one, else the next keyset batch."""
        with self._lock:
            if self._redo:
                return self._redo.popleft()
        run_id, max_key = run["id"], run["max_key"]
        paused = None
        with self._begin(conn):
            state = conn.execute(
                text("SELECT cursor_key, pause_requested, rows_done, total_rows FROM orgmig_run"
                     " WHERE id = :r FOR UPDATE"), {"r": run_id},
            ).mappings().one()
            cursor = state["cursor_key"]
            if state["pause_requested"]:
                conn.execute(text("UPDATE orgmig_run SET status = 'paused', updated_at = now()"
                                  " WHERE id = :r"), {"r": run_id})
                paused = dict(state)
            elif max_key is None or cursor >= max_key:
                return None
            else:
                end = self._next_end(conn, cursor, max_key, self.opts.batch_size)
                conn.execute(
                    text("INSERT INTO orgmig_batch (run_id, start_key, end_key, status)"
                         " VALUES (:r, :s, :e, 'claimed')"
                         " ON CONFLICT (run_id, start_key) DO UPDATE SET end_key = EXCLUDED.end_key,"
                         " status = 'claimed', finished_at = now()"),
                    {"r": run_id, "s": cursor + 1, "e": end},
                )
                conn.execute(text("UPDATE orgmig_run SET cursor_key = :e, updated_at = now()"
                                  " WHERE id = :r"), {"e": end, "r": run_id})
        if paused is not None:
            raise Paused(self._paused_message(paused))
        return cursor + 1, end

    def _process_with_retries(self, conn: Connection, run: dict, start: int, end: int) -> Connection:
        run_id, attempt = run["id"], 1
        while True:
            try:
                rows = self._process(conn, run, start, end, attempt)
                break
            except Exception as exc:
                err = str(exc) if isinstance(exc, ConcurrentChange) else error_summary(exc)
                if conn.invalidated or conn.closed:
                    conn.close()
                    conn = self._connect()
                if not _is_retryable(exc) or attempt >= self.opts.max_attempts:
                    self._record_failure(run_id, start, end, attempt, err, fatal=True)
                    raise MigrationError(
                        f"{self.step.name} {self.direction}: batch {start}..{end} failed after"
                        f" {attempt} attempt(s): {err}. Nothing of that batch was written; fix the"
                        " cause and run the same command again to resume"
                    ) from None
                if isinstance(getattr(exc, "orig", None), psycopg.errors.QueryCanceled) and end > start:
                    # Too slow for statement_timeout: keep the first half, queue the second.
                    mid = start + (end - start) // 2
                    self._record_failure(run_id, mid + 1, end, 0, err, fatal=False)
                    with self._lock:
                        self._redo.appendleft((mid + 1, end))
                    end = mid
                delay = min(self.opts.backoff_cap_s, self.opts.backoff_base_s * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)
                log.warning("%s %s: batch %s..%s: %s; retry %d in %.1fs", self.step.name,
                            self.direction, start, end, err, attempt, delay)
                self._record_failure(run_id, start, end, attempt, err, fatal=False)
                with self._lock:
                    self._retries += 1
                attempt += 1
                time.sleep(delay)
        with self._lock:
            self._batches += 1
            self._progress.advance(rows)
            if self.on_batch:
                self.on_batch(self._batches, end)
        return conn

    def _process(self, conn: Connection, run: dict, start: int, end: int, attempt: int) -> int:
        started = time.monotonic()
        run_id = run["id"]
        with self._begin(conn):
            result = self.step.process(conn, self.direction, start, end, run_id, run["max_key"],
                                       self.opts.allow_data_loss)
            conn.execute(
                text("INSERT INTO orgmig_batch (run_id, start_key, end_key, status, rows_read,"
                     " rows_written, attempts, duration_ms)"
                     " VALUES (:r, :s, :e, 'succeeded', :rr, :rw, :a, :ms)"
                     " ON CONFLICT (run_id, start_key) DO UPDATE SET end_key = EXCLUDED.end_key,"
                     " status = 'succeeded', rows_read = EXCLUDED.rows_read,"
                     " rows_written = EXCLUDED.rows_written, attempts = EXCLUDED.attempts,"
                     " duration_ms = EXCLUDED.duration_ms, error = NULL, finished_at = now()"),
                {"r": run_id, "s": start, "e": end, "rr": result.rows_read,
                 "rw": result.rows_written, "a": attempt,
                 "ms": int((time.monotonic() - started) * 1000)},
            )
            conn.execute(
                text("UPDATE orgmig_run SET rows_done = rows_done + :n, updated_at = now()"
                     " WHERE id = :r"), {"n": result.rows_read, "r": run_id},
            )
        return result.rows_read


def run_step(engine: Engine, step: Step, direction: str, options: Options) -> RunResult:
    """Run `step` to completion in `direction`; raises MigrationError/DowngradeRefused/Paused."""
    return BatchEngine(engine, step, direction, options).run()


__all__ = ["BatchEngine", "ConcurrentChange", "DowngradeRefused", "MigrationError", "Options",
           "Paused", "RunResult", "run_step"]
