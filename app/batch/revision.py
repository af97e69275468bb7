"""What revisions and env.py call: run a data step inside `alembic upgrade`/`downgrade`, read
the `-x` arguments through the one validation path (app.config), refuse a schema downgrade that
would drop the application's rows, hold the one-migration-at-a-time lock, and run a revision
again when it could not get a lock in time.

Failures are raised as app.errors.OrgmigError; env.py turns them into one line for the
`alembic` command and lets them through to a Python caller."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence

from sqlalchemy import Connection, text

from app import db
from app.batch.attempts import Attempts
from app.batch.errors import DowngradeRefused, MigrationError
from app.batch.options import Options
from app.batch.runner import run_step
from app.batch.runs import last_upgrade
from app.batch.step import Step
from app.batch.summary import print_summary
from app.config import X_ARGUMENTS, Settings, get_settings, with_overrides
from app.errors import ConfigError, DatabaseError

log = logging.getLogger("app")

# The config attribute env.py sets when the caller's connection was already in a transaction.
EXTERNAL_TRANSACTION = "orgmig_external_transaction"
# The config attribute env.py sets once alembic's own connection is open: a connection error
# after that is a connection lost, not one that could not be made.
CONNECTED = "orgmig_connected"
# Advisory lock keys (two int4 keys): one migration at a time per database.
LOCK_CLASS = 0x6F726D67  # "ormg"
MIGRATION_LOCK = 0
# The first attempt of a revision waits this long for each lock; each later one twice as long,
# up to ORGMIG_LOCK_TIMEOUT_MS.
FIRST_LOCK_TIMEOUT_MS = 100
# What resumes a data step a signal interrupted, in the line that says so.
RESUME = {"upgrade": "`alembic upgrade head`", "downgrade": "the same `alembic downgrade`"}


# alembic.context and alembic.op are imported where they are used: only a revision, inside
# `alembic upgrade`/`downgrade`, needs them, and importing Alembic costs `orgmig sync` (which takes
# migration_lock from here) a fifth of a second of start-up.

def lost_connection(exc: BaseException, url) -> DatabaseError:
    """The one line for alembic's own connection lost mid-migration (a server restart, an ended
    session): its batches reconnect by themselves, but it records the applied revisions and
    holds the migration lock, so the command stops; what is committed stays, and the same
    command resumes from there."""
    return DatabaseError(db.scrub(
        f"lost the connection to {db.redact(url)} during the migration ({db.error_summary(exc)}): the"
        " server restarted or ended the session. Nothing is lost: run the same command again: it resumes"
        " where it stopped", url))


def x_arguments() -> dict[str, str]:
    """`alembic -x name=value` arguments; an unknown name is a one-line error."""
    from alembic import context
    given = context.get_x_argument(as_dictionary=True)
    unknown = sorted(set(given) - set(X_ARGUMENTS))
    if unknown:
        raise ConfigError(f"unknown -x argument {unknown[0]!r}; known: {', '.join(X_ARGUMENTS)}")
    return given


def settings() -> Settings:
    """The settings from the environment with `-x` on top, validated."""
    return with_overrides(x_arguments())


def options() -> Options:
    """The run's options (the engine's part of the settings)."""
    return Options.from_settings(settings())


def allow_data_loss() -> bool:
    """True when the operator passed `-x allow_data_loss=true` (or ORGMIG_ALLOW_DATA_LOSS=true)."""
    return options().allow_data_loss


def run_data_step(step: Step, direction: str) -> None:
    """Run a data step from inside a revision: batches commit one by one on their own connections.

    Online, Alembic's transaction is committed first (autocommit block) so each batch is its own
    transaction. Offline (`--sql`) a data step cannot read rows; the script gets a statement that
    stops it with instructions instead of silently doing nothing.
    """
    from alembic import context, op
    ctx = op.get_context()
    if ctx.as_sql:
        stop_offline(step.name, direction)
        return
    opts = options()
    if context.config.attributes.get(EXTERNAL_TRANSACTION):
        raise MigrationError(
            f"data step {step.name} needs to commit batch by batch, but the caller runs the"
            " migration inside its own transaction; pass an Engine or an idle Connection")
    with ctx.autocommit_block():
        result = run_step(op.get_bind().engine, step, direction, opts, resume=RESUME[direction])
    print_summary(result)


def ensure_finished(step_name: str) -> None:
    """A revision that builds on a data step's result refuses until that step's upgrade run is
    finished (GitLab's ensure_batched_background_migration_is_finished): a run left running,
    paused or failed, or none at all, stops it with a line naming the run."""
    from alembic import op
    if op.get_context().as_sql:
        return
    run = last_upgrade(op.get_bind(), step_name)
    if run is None or run["status"] != "finished":
        where = ("no run of it is recorded" if run is None else
                 f"run {run['id']} is {run['status']} at {run['rows_done']:,}/{run['total_rows']:,} rows")
        raise MigrationError(
            f"this revision needs the data step {step_name} finished, and {where}: finish it first"
            " (`orgmig status` shows it; the revision that runs it resumes it)")


def stop_offline(name: str, direction: str) -> None:
    """In an offline script (`--sql`), a data step is a statement that stops the script: it
    moves rows in batches and cannot be written out as SQL."""
    from alembic import op
    op.execute(
        f"DO $$ BEGIN RAISE EXCEPTION 'orgmig: data step {name} ({direction}) moves rows in"
        " batches and runs online only: run alembic without --sql for this revision'; END $$")


def refuse_to_drop_rows(revision: str, tables: Sequence[str], only_if: str = "true",
                        counts: str | None = None) -> None:
    """Before a schema revision's downgrade drops `tables`: refuse, dropping nothing, while they
    hold rows. By then the data revisions' downgrades have removed the rows they created, so what
    is left is the application's. `-x allow_data_loss=true` drops them anyway. `only_if` is a SQL
    condition under which the tables are dropped at all (revision 0001 drops user_settings only
    where it created it). `counts`, a query of (tbl, n) rows, counts instead of `count(*)` per
    table (a revision whose check also runs before the data revisions' downgrades, counting what
    they will leave). Offline, the script gets the same check as a statement."""
    from alembic import op
    if allow_data_loss():
        return
    counts = counts or " UNION ALL ".join(f"SELECT '{t}' AS tbl, count(*) AS n FROM {t}" for t in tables)
    if op.get_context().as_sql:
        op.execute(
            f"DO $$ DECLARE found text; BEGIN IF {only_if} THEN"
            f" SELECT string_agg(n || ' ' || tbl, ', ') INTO found FROM ({counts}) c WHERE n > 0;"
            f" IF found IS NOT NULL THEN RAISE EXCEPTION 'orgmig: refusing to downgrade {revision}:"
            f" its tables hold rows orgmig did not create (%); nothing was dropped; to drop them too,"
            f" run the downgrade with -x allow_data_loss=true', found; END IF; END IF; END $$")
        return
    bind = op.get_bind()
    if not bind.execute(text(f"SELECT {only_if}")).scalar():
        return
    found = [(t, n) for t, n in bind.execute(text(counts)).all() if n]
    if found:
        listing = ", ".join(f"{n:,} {t}" for t, n in found)
        raise DowngradeRefused(
            f"refusing to downgrade {revision}: its tables hold rows orgmig did not create ({listing})."
            " Nothing was dropped. To drop them too, run the downgrade again with -x allow_data_loss=true")


def check_downgrades() -> None:
    """Before the first revision of an online downgrade changes anything: every revision on the
    way down that defines `check_downgrade()` runs it now, newest first, so that a refusal leaves
    every revision as it was (a revision's downgrade runs its own check again when it gets there).
    Called by env.py under the migration lock; upgrades and offline scripts have nothing to check."""
    from alembic.operations import Operations

    from alembic import context
    ctx = context.get_context()
    steps_for = ctx.opts.get("fn")
    # Only upgrade, downgrade and stamp name a destination, and their `fn` only lists the steps:
    # that of `alembic current`, `history` or `check` prints or compares, and must run once.
    if ctx.as_sql or steps_for is None or "destination_rev" not in ctx.opts:
        return
    checks = [getattr(getattr(step, "revision", None), "module", None) for step in
              steps_for(ctx.get_current_heads(), ctx) if getattr(step, "is_downgrade", False)]
    checks = [module.check_downgrade for module in checks if hasattr(module, "check_downgrade")]
    if not checks:
        return
    with Operations.context(ctx):
        for check in checks:
            check()


def _holder(conn: Connection) -> str:
    row = conn.execute(text(
        "SELECT a.pid, a.application_name, a.usename, a.client_addr, a.backend_start"
        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :k1 AND l.objid = :k2"
        " AND l.objsubid = 2 LIMIT 1"), {"k1": LOCK_CLASS, "k2": MIGRATION_LOCK}).mappings().first()
    if row is None:
        return "a session that has just ended"
    where = f" from {row['client_addr']}" if row["client_addr"] else ""
    return (f"pid {row['pid']} ({row['application_name'] or 'no application name'}, role"
            f" {row['usename']}{where}, connected since {row['backend_start']:%Y-%m-%d %H:%M:%S %Z})")


@contextlib.contextmanager
def migration_lock(conn: Connection, wait: bool = True) -> Iterator[None]:
    """Hold the database's migration lock (a session advisory lock on `conn`) while migrating.
    Another holder is waited for up to ORGMIG_MIGRATE_LOCK_WAIT_MS (logged every 10 s), then
    this one stops with a message naming it. Outside a caller's transaction the lock statements
    are committed at once, so each revision still gets its own transaction."""
    own = not conn.in_transaction()
    keys = {"k1": LOCK_CLASS, "k2": MIGRATION_LOCK}
    wait_s = get_settings().migrate_lock_wait_ms / 1000 if wait else 0
    started = time.monotonic()
    next_note = started
    while not conn.execute(text("SELECT pg_try_advisory_lock(:k1, :k2)"), keys).scalar():
        holder = _holder(conn)
        waited = time.monotonic() - started
        if waited >= wait_s:
            if own:
                conn.rollback()
            raise MigrationError(
                f"another alembic upgrade or downgrade is running on this database: {holder}. Let it"
                f" finish (waited {waited:.0f}s; ORGMIG_MIGRATE_LOCK_WAIT_MS sets how long to wait),"
                " or stop it (SELECT pg_terminate_backend(pid)) and run this again")
        if own:
            conn.rollback()  # no transaction held open while waiting
        if time.monotonic() >= next_note:
            log.warning("waiting for another migration on this database to finish: %s", holder)
            next_note += 10
        time.sleep(min(0.5, max(0.0, wait_s - waited)))
    if own:
        conn.commit()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # a broken connection releases the lock itself
            conn.execute(text("SELECT pg_advisory_unlock(:k1, :k2)"), keys)
            if own:
                conn.commit()


def lock_not_available(exc: BaseException) -> bool:
    """55P03: a statement could not get its lock within lock_timeout."""
    return db.sqlstate(exc) == "55P03"


def with_lock_retries(conn: Connection, run: Callable[[], None]) -> None:
    """Run the revisions (`run`, each revision in its own transaction) and, when a statement
    cannot get its lock in time (55P03: the application holds a lock the DDL needs), roll that
    revision back and run again from it, the way GitLab's `with_lock_retries` does. Attempt k
    waits at most min(ORGMIG_LOCK_TIMEOUT_MS, 100 ms x 2^(k-1)) for each lock, and the last
    attempt ORGMIG_LOCK_TIMEOUT_MS, so the application's statements that queue behind the
    revision's lock request wait briefly at first; between attempts a backoff
    (ORGMIG_BACKOFF_*). After ORGMIG_DDL_LOCK_ATTEMPTS attempts (1: a single attempt with
    ORGMIG_LOCK_TIMEOUT_MS) the revision stops with a one-line error. Revisions already applied
    stay applied; a data revision run again resumes where it stopped."""
    s = settings()

    def timeout_ms(attempt: int) -> int:
        last = attempt == s.ddl_lock_attempts
        return s.lock_timeout_ms if last else min(s.lock_timeout_ms, FIRST_LOCK_TIMEOUT_MS * 2 ** (attempt - 1))

    def attempt(n: int) -> None:
        conn.exec_driver_sql(f"SET lock_timeout = '{timeout_ms(n)}ms'")
        conn.commit()
        run()

    def failed(exc: BaseException, _: int, __: bool) -> None:
        if lock_not_available(exc):
            conn.rollback()

    def final(what: str, exc: BaseException, n: int) -> None:
        if lock_not_available(exc):
            raise MigrationError(
                f"a revision could not get its locks in {n} attempts (the last waited {timeout_ms(n)} ms"
                f" for each): {db.error_summary(exc)}; another session holds a lock it needs (find it in"
                " pg_locks); the revisions before it are applied. Run again at a quieter time, or raise"
                " ORGMIG_DDL_LOCK_ATTEMPTS or ORGMIG_LOCK_TIMEOUT_MS") from None

    policy = Attempts(s.ddl_lock_attempts, s.backoff_base_ms / 1000, s.backoff_cap_ms / 1000,
                      retryable=lock_not_available)
    try:
        policy.call(lambda n: f"a revision could not get a lock within {timeout_ms(n)} ms, rolled back",
                    attempt, failed=failed, final=final)
    finally:
        with contextlib.suppress(Exception):  # a broken connection takes its settings with it
            conn.exec_driver_sql(f"SET lock_timeout = '{s.lock_timeout_ms}ms'")
            conn.commit()
