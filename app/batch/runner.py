"""The runner: walks one step's keys in one direction, batch by batch, until every batch is done.

    0. Unless an unfinished run waits to be resumed, the step plans (and may refuse).
    1. Open the run, or resume the unfinished one (ledger), under the step's advisory lock, and
       hold the run's liveness lock for as long as this process works on it (`orgmig status`
       tells a live run from one whose process died by that lock).
    2. ANALYZE the key column (best effort): claims walk it with `ORDER BY key OFFSET n`.
    3. The step prepares (what it returns reaches every batch) and, for a downgrade, checks
       that it may delete (DowngradeRefused otherwise, before anything is deleted).
    4. Ranges a killed run left `claimed` or `failed` are queued first.
    5. `workers` threads, each on its own connection, loop: claim the next range (a short
       transaction that records it `claimed` and advances the cursor), then process it in one
       transaction holding the step's SQL and the range's `succeeded` mark. A retryable error
       (timeouts, deadlock, a concurrent writer, a lost connection) rolls the batch back and
       retries it after a capped, jittered backoff; a statement timeout first splits it in two.
       A pause request stops the workers at their next claim.
    6. When no range is left unfinished, the step drains what it captured during the run (in
       transactions of its own), then its finish() and the run's `finished` mark commit
       together; then the tables the step names are analyzed (best effort).
    7. The step's summary and its reported rows, for the person who ran it.

Every statement runs with lock and statement timeouts and with JIT off (a batch is small; JIT
compiling a statement whose estimated cost is inflated by missing statistics took seconds per
batch). Statements outside batches are retried like batches; a failure that outlasts the
attempts ends as one line (MigrationError), the run marked failed with that line when the
database still answers.

A kill at any moment loses nothing and repeats nothing: the next run redoes the ranges left
`claimed` or `failed`, then goes on from the cursor. SIGINT or SIGTERM (app.interrupt) stops the
workers once the batches they hold are committed; the run keeps its state (`running`, shown as
interrupted once no process holds it, the interruption as its last error) and the command ends
with one line (Interrupted) saying how far it got and what resumes it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from sqlalchemy import Connection, Engine

from app import db
from app.batch.attempts import Attempts, describe, unless_broken
from app.batch.crew import Crew
from app.batch.errors import Interrupted, MigrationError, Paused
from app.batch.ledger import SQL, Ledger, Run
from app.batch.options import Options
from app.batch.step import DIRECTIONS, Step
from app.batch.summary import RunFigures, RunResult, run_figures
from app.errors import OrgmigError
from app.interrupt import exit_code
from app.progress import RowProgress

log = logging.getLogger("app.batch")




class Runner:
    """Runs one step in one direction on `engine` (a connection per worker, a transaction per
    batch)."""

    def __init__(self, engine: Engine, step: Step, direction: str, options: Options,
                 resume: str = "the same command") -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be upgrade or downgrade, not {direction!r}")
        self.engine = engine
        self.step = step
        self.direction = direction
        self.opts = options
        self.keys = step.keys(direction)
        self.ledger = Ledger(step.name, direction, self.keys, step.new_keys_only)
        self.label = f"{step.name} {direction}"
        self.resume = resume  # what continues an interrupted run, for the line that says so
        self.attempts = Attempts.of(options, label=self.label, one_line=True, give_up=self._mark_failed)
        self._state = None
        self._main: Connection | None = None  # phases outside batches; holds the liveness lock
        self._run: Run | None = None
        self._progress: RowProgress | None = None  # once the workers start

    # -- connections and transactions ----------------------------------------------------------

    def connect(self) -> Connection:
        conn = self.engine.connect()
        # The target tables grow from empty during a run: a server-side prepared statement
        # planned while they were small would go on scanning them whole. Each batch statement
        # is planned for the tables as they are now (the foreign-key checks keep their cached
        # plans, which `plan_cache_mode = force_custom_plan` would throw away).
        driver = conn.connection.driver_connection
        if hasattr(driver, "prepare_threshold"):
            driver.prepare_threshold = None
        return conn

    def tx(self, conn: Connection, statement_timeout_ms: int | None = None, **local: str):
        # A batch and its checkpoint commit together, so a commit lost in a server crash loses
        # both and the batch simply runs again: no need to wait for the WAL flush.
        timeout = self.opts.statement_timeout_ms if statement_timeout_ms is None else statement_timeout_ms
        return db.transaction(conn, self.opts.lock_timeout_ms, timeout, synchronous_commit="off",
                              jit="off", **local)

    def _main_connection(self) -> Connection:
        """The connection of the phases outside batches, (re)connected when needed; once the run
        is known it holds the run's liveness lock."""
        self._main = unless_broken(self._main)
        if self._main is None:
            conn = self.connect()
            if self._run is not None:
                self.ledger.join(conn, self._run.id)
            self._main = conn
        return self._main

    def _phase(self, what: str, work, statement_timeout_ms: int | None = None):
        """`work(conn)` in one transaction on the main connection, retried like a batch."""
        def attempt(_: int):
            conn = self._main_connection()
            with self.tx(conn, statement_timeout_ms):
                return work(conn)

        def failed(exc: BaseException, _: int, __: bool) -> None:
            self._main = unless_broken(self._main, exc)

        return self.attempts.call(what, attempt, failed=failed, passes=(OrgmigError,))

    def _analyze(self, tables: tuple[str, ...], sessions: int = 1) -> None:
        """Fresh planner statistics, best effort: ANALYZE samples a bounded number of rows, so it
        runs without a statement timeout; one that cannot get its lock is skipped with a warning
        (the batch statements do not depend on statistics). With `sessions` > 1 (a run that ended
        alone on the database), the tables are analyzed in that many sessions at once, each
        taking the next table left (the largest first); otherwise in one statement."""
        if not tables:
            return
        if sessions > 1 and len(tables) > 1:
            self._analyze_apart(tables, sessions)
            return
        try:
            conn = self._main_connection()
            with self.tx(conn, statement_timeout_ms=0):
                conn.exec_driver_sql(f"ANALYZE {', '.join(tables)}")
        except Exception as exc:  # noqa: BLE001 - statistics are an optimisation, never fatal
            log.warning("%s: ANALYZE %s skipped: %s", self.label, ", ".join(tables), describe(exc))

    def _analyze_apart(self, tables: tuple[str, ...], sessions: int) -> None:
        try:
            conn = self._main_connection()
            with self.tx(conn, statement_timeout_ms=0):
                sizes = dict(conn.execute(SQL("server.table_sizes"), {"tables": list(tables)}).all())
        except Exception:  # noqa: BLE001 - the order is an optimisation
            sizes = {}
        queue = sorted(tables, key=lambda t: -sizes.get(t, 0))
        lock = threading.Lock()

        def analyze() -> None:
            try:
                conn = self.connect()
            except Exception as exc:  # noqa: BLE001 - statistics are an optimisation, never fatal
                log.warning("%s: ANALYZE skipped in one session: %s", self.label, describe(exc))
                return
            with conn:
                while True:
                    with lock:
                        if not queue:
                            return
                        table = queue.pop(0)
                    try:
                        with self.tx(conn, statement_timeout_ms=0):
                            conn.exec_driver_sql(f"ANALYZE {table}")
                    except Exception as exc:  # noqa: BLE001 - statistics are an optimisation, never fatal
                        log.warning("%s: ANALYZE %s skipped: %s", self.label, table, describe(exc))

        threads = [threading.Thread(target=analyze, name=f"orgmig-analyze-{i}")
                   for i in range(min(sessions, len(tables)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _summary(self) -> tuple[dict[str, int], dict[str, int], RunFigures | None]:
        """What the step reports, its reported rows and the run's figures; the run is finished by
        now, so a failure here is a warning, not a failed command."""
        try:
            conn = self._main_connection()
            with self.tx(conn, statement_timeout_ms=0):
                return (self.step.summary(conn, self.direction, self._run.id), self.ledger.reported(conn),
                        run_figures(conn, self._run.id))
        except Exception as exc:  # noqa: BLE001 - the work is done; only its summary is missing
            log.warning("%s: finished, but the summary could not be read: %s", self.label, describe(exc))
            return {}, {}, None

    def _mark_failed(self, message: str) -> None:
        self._mark("failed", message)

    def _mark(self, status: str | None, message: str) -> None:
        if self._run is None:
            return
        try:
            with self.engine.connect() as conn, self.tx(conn):
                self.ledger.set_status(conn, self._run.id, status, message)
        except Exception as exc:  # noqa: BLE001 - the database may be gone; the message matters more
            log.debug("%s: could not mark run %s: %s", self.label, self._run.id, describe(exc))

    def _interrupted(self) -> Interrupted:
        """SIGINT or SIGTERM reached the run: its workers have committed the batches they held and
        stopped (what the main connection was doing is rolled back). The run stays `running`
        (resumable), the interruption its last error."""
        done = self._run.rows_done if self._progress is None else self._progress.done
        message = f"{self.label}: interrupted at {done:,}/{self._run.total_rows:,} rows; {self.resume} resumes"
        self._mark(None, message)
        return Interrupted(message, exit_code())

    def _workers(self) -> int:
        """The workers asked for, capped by the connections the server has free."""
        asked = max(1, int(self.opts.workers))
        free = self._phase("counting free connections",
                           lambda c: c.execute(SQL("server.free_connections")).scalar_one())
        if free < 1:
            raise MigrationError(
                f"{self.label}: the server has no free connection for a worker: lower the load or"
                " raise max_connections, then run the same command again")
        if asked > free:
            log.warning("%s: %d workers asked for, but the server has %d free connections: using %d",
                        self.label, asked, free, free)
        return min(asked, free)

    # -- the run ---------------------------------------------------------------------------------

    def run(self) -> RunResult:
        with self._session():
            # Statements that read whole tables once per run (the plan, the opening count,
            # ANALYZE, the summary) run without a statement timeout; their lock waits stay bounded.
            self._phase("planning", self._plan, statement_timeout_ms=0)
            run = self._phase("opening the run", lambda c: self.ledger.open(c, self.opts.batch_size),
                              statement_timeout_ms=0)
            if run.pause_requested:
                raise Paused(self.paused_message(run.cursor_key, run.rows_done, run.total_rows))
            self._run = run
            self.ledger.join(self._main_connection(), run.id)
            self._analyze((f"{self.keys.table} ({self.keys.key})",))
            self._state = self._phase("preparing", lambda c: self.step.prepare(c, self.direction, run.id))
            if self.direction == "downgrade":
                self._phase("checking the downgrade",
                            lambda c: self.step.check_downgrade(c, self.opts.allow_data_loss))
            if run.resumed:
                left = self._phase("reading unfinished batches", lambda c: self.ledger.unfinished(c, run.id))
                log.info("%s: resuming run %s at key %s (%s/%s rows done, %d unfinished batches"
                         " to redo)", self.label, run.id, run.cursor_key, f"{run.rows_done:,}",
                         f"{run.total_rows:,}", len(left))
            workers = self._workers()
            self._phase("recording the settings",
                        lambda c: self.ledger.record_settings(c, run.id, self.opts, workers))
            crew = Crew(self, run, self._start_progress(self.label, run), self._state)
            with crew.progress as progress:
                crew.work(workers)
                while self._phase("applying changes captured during the run",
                                  lambda c: self.step.drain(c, self.direction, run.id)):
                    pass
                self._phase("finishing", self._finish)
                # Fresh statistics only where the batches changed something (a re-run that
                # compared and wrote nothing leaves the tables as they were planned for).
                if self._phase("counting rows written", lambda c: self.ledger.rows_written(c, run.id)):
                    self._analyze(self.step.analyze_after, workers if crew.pacer.alone else 1)
                summary, reported, figures = self._summary()
        return RunResult(run.id, self.step.name, self.direction, run.total_rows, progress.done,
                         crew.batches, self.attempts.retries, run.resumed, figures,
                         summary, reported, progress.done - run.rows_done)

    def join(self) -> int:
        """Work beside the process that runs this step (`orgmig work`, on this machine or
        another): take ranges of its unfinished run until none is left, and leave finishing the
        run to that process (or to the next one that resumes it). Returns the batches done."""
        with self._session():
            run = self._phase("finding the run", self.ledger.find_open)
            if run is None:
                raise MigrationError(f"{self.label}: no unfinished run to join; start it with `alembic"
                                     " upgrade head` (or downgrade), then join it")
            if run.pause_requested:
                raise Paused(self.paused_message(run.cursor_key, run.rows_done, run.total_rows))
            self._run = run
            self.ledger.join(self._main_connection(), run.id)
            self._state = self._phase("preparing", lambda c: self.step.prepare(c, self.direction, run.id))
            crew = Crew(self, run, self._start_progress(f"{self.label} (joined run {run.id})", run), self._state)
            with crew.progress:
                crew.work(self._workers())
            return crew.batches

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        """Around a run or a join: SIGINT or SIGTERM, once the run is known, ends it resumable
        (Interrupted); the main connection is closed at the end, releasing the liveness lock."""
        try:
            yield
        except KeyboardInterrupt:
            if self._run is None:
                raise
            raise self._interrupted() from None
        finally:
            if self._main is not None:
                self._main.close()

    def _start_progress(self, label: str, run: Run) -> RowProgress:
        self._progress = RowProgress(label, run.total_rows, run.rows_done, terminal=self.opts.progress_bar)
        return self._progress

    def _plan(self, conn: Connection) -> None:
        if not self.ledger.has_open(conn):
            self.step.plan(conn, self.direction)

    def _finish(self, conn: Connection) -> None:
        left = self.ledger.count_unfinished(conn, self._run.id)
        if left:
            raise MigrationError(f"{self.label}: {left} batches are not finished;"
                                 " run the same command again to redo them")
        self.step.finish(conn, self.direction, self._run.id)
        self.ledger.finish(conn, self._run.id)

    def paused_message(self, cursor, done: int, total: int) -> str:
        return (f"{self.label} is paused at key {cursor} ({done:,}/{total:,} rows); run"
                " `orgmig resume` and then the same alembic command to continue")

def run_step(engine: Engine, step: Step, direction: str, options: Options,
             resume: str = "the same command") -> RunResult:
    """Run `step` to completion in `direction`; raises MigrationError (Paused, DowngradeRefused,
    Interrupted: `resume` names what resumes it)."""
    return Runner(engine, step, direction, options, resume).run()


def join_step(engine: Engine, step: Step, direction: str, options: Options,
              resume: str = "the same command") -> int:
    """Take batches of `step`'s unfinished run in `direction` beside the process that runs it,
    until none is left; returns the batches this process did (Runner.join)."""
    return Runner(engine, step, direction, options, resume).join()
