"""After revision 0004's run: the application's writes to user_settings go on reaching the new
tables (the capture, capture.sql) until `orgmig finalize` ends it, once the application no
longer writes user_settings (expand, then contract).

    applied = apply_captured(engine, options)   # `orgmig work` between the run and finalize
    applied = follow_captured(engine, options, 5)   # `orgmig work --follow 5`: until finalize
    result = finalize(engine, options)          # `orgmig finalize`

Both apply the captured changes in transactions of DRAIN_CHUNK changes, retried like a batch
(lock and statement timeouts, deadlocks, a lost connection). `finalize` then takes the tables the
capture touches in one short lock (capture.lock), applies what arrived meanwhile and removes the
capture in the same transaction: from its commit on, writes to user_settings reach user_settings
only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from app import db
from app.batch import Attempts, MigrationError, Options, runs, unless_broken
from app.steps.user_settings import DRAIN_CHUNK, SQL, STEP, apply_changes

log = logging.getLogger("app.steps.user_settings")
LABEL = f"{STEP.name} capture"  # (the prefix of its one-line errors)


@dataclass(frozen=True)
class Finalized:
    ended: bool  # False: there was no capture to end
    applied: int  # captured changes applied by this command


def _retried(engine: Engine, opts: Options, what: str, work, statement_timeout_ms: int | None = None):
    """`work(conn)` in one transaction, retried like a batch; a failure that outlasts the attempts
    is one line (MigrationError)."""
    conn: Connection | None = None

    def attempt(_: int):
        nonlocal conn
        if conn is None:
            conn = engine.connect()
        timeout = opts.statement_timeout_ms if statement_timeout_ms is None else statement_timeout_ms
        with db.transaction(conn, opts.lock_timeout_ms, timeout):
            return work(conn)

    def failed(exc: BaseException, _: int, __: bool) -> None:
        nonlocal conn
        conn = unless_broken(conn, exc)

    try:
        return Attempts.of(opts, label=LABEL, one_line=True).call(what, attempt, failed=failed,
                                                                  passes=(MigrationError,))
    finally:
        if conn is not None:
            conn.close()


def _refuse_during_run(conn: Connection) -> None:
    for run in runs.unfinished(conn):
        if run["step"] == STEP.name:
            raise MigrationError(
                f"run {run['id']} of {STEP.name} ({run['direction']}) is {run['status']} at"
                f" {run['rows_done']:,}/{run['total_rows']:,} rows: the capture is what keeps the"
                " application's writes during the run; finish the run first (`orgmig status`)")


def _installed(conn: Connection) -> bool:
    return conn.execute(SQL("capture.installed")).scalar_one()


def can_apply_now(conn: Connection) -> bool:
    """Whether captured changes may be applied now: the capture is in force and no run of the
    step is unfinished (a run applies them itself after its last batch: a group migrated again
    before the batches reach it would be migrated with another winner than theirs)."""
    return _installed(conn) and not any(run["step"] == STEP.name for run in runs.unfinished(conn))


def apply_captured(engine: Engine, opts: Options) -> int:
    """The changes captured up to now applied, DRAIN_CHUNK a transaction; the capture stays.
    Returns how many were applied (0 when there is no capture); refuses while a run of the step
    is unfinished."""
    def one(conn: Connection) -> int:
        _refuse_during_run(conn)
        return apply_changes(STEP, conn, None, limit=DRAIN_CHUNK) if _installed(conn) else 0

    applied = 0
    while True:
        taken = _retried(engine, opts, "applying captured changes", one)
        applied += taken
        if taken < DRAIN_CHUNK:
            return applied


def follow_captured(engine: Engine, opts: Options, every_s: float) -> int:
    """apply_captured every `every_s` seconds (skipped while a run of the step is unfinished)
    until `orgmig finalize` ends the capture; returns how many changes it applied."""
    applied = 0
    while _retried(engine, opts, "reading the capture", _installed):
        if _retried(engine, opts, "reading the runs", can_apply_now):
            taken = apply_captured(engine, opts)
            if taken:
                log.info("%s: %d captured writes to user_settings applied", STEP.name, taken)
            applied += taken
        time.sleep(every_s)
    return applied


def finalize(engine: Engine, opts: Options) -> Finalized:
    """End the capture: refuses while a run of the step is unfinished; otherwise applies every
    captured change and removes the capture (nothing left behind)."""
    def check(conn: Connection) -> bool:
        if not _installed(conn):
            return False
        _refuse_during_run(conn)
        return True

    if not _retried(engine, opts, "reading the capture", check):
        return Finalized(False, 0)
    applied = apply_captured(engine, opts)

    def end(conn: Connection) -> int:
        _refuse_during_run(conn)
        return STEP.end_capture(conn, None) if _installed(conn) else 0

    applied += _retried(engine, opts, "taking user_settings to apply the last changes and end the capture",
                        end, statement_timeout_ms=0)
    log.info("%s: the capture of user_settings is removed; %d captured changes applied", LABEL, applied)
    return Finalized(True, applied)
