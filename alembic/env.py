"""Alembic environment for orgmig.

The URL comes from `DATABASE_URL` (app.config). A harness may pass a Connection or an Engine in
`config.attributes["connection"]` (Alembic's cookbook and pytest-alembic respectively). Each
revision runs in its own transaction, with `lock_timeout` and `statement_timeout` set first, so
DDL never queues behind a long lock and a data revision can commit batch by batch; a revision
that cannot get a lock in time is rolled back and run again, waiting longer each time
(app.batch.revision.with_lock_retries).

Online, one `alembic upgrade`/`downgrade` runs at a time per database: a second one waits for the
first (up to ORGMIG_MIGRATE_LOCK_WAIT_MS) and then finds the work done, or stops naming the
holder. Whatever fails ends, from the `alembic` command, in one line on stderr and exit code 1 (2 for
configuration and connection problems; 130 for SIGINT and 143 for SIGTERM, app.interrupt); called
from Python, the same message is raised as an app.errors.OrgmigError.

Offline (`--sql`), the script starts with `\\set ON_ERROR_STOP on` and each revision checks, in
its own transaction, that the version it stamps is the one it expects: run through psql, it stops
at the first error, and even without ON_ERROR_STOP nothing after a failed revision commits.
"""

from __future__ import annotations

import argparse
import logging.config
import sys

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from alembic import context
from app import db
from app.batch.revision import (
    CONNECTED,
    EXTERNAL_TRANSACTION,
    check_downgrades,
    lost_connection,
    migration_lock,
    with_lock_retries,
)
from app.config import get_settings
from app.errors import OrgmigError
from app.interrupt import exit_code, install, name
from app.schema import include_object, metadata

config = context.config
target_metadata = metadata

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

# The `alembic` command line (an argparse namespace) as opposed to a call from Python.
FROM_COMMAND_LINE = isinstance(config.cmd_opts, argparse.Namespace)


def _session_timeouts() -> list[str]:
    s = get_settings()
    return [
        f"SET lock_timeout = '{int(s.lock_timeout_ms)}ms'",
        f"SET statement_timeout = '{int(s.statement_timeout_ms)}ms'",
    ]


def _check_stamp(ctx, step, heads, run_args) -> None:
    """Offline: after a revision stamps its version, stop its transaction unless the stamp took.
    If an earlier revision failed, this revision's UPDATE of alembic_version matched no row, and
    the exception rolls back everything the revision did."""
    if not ctx.as_sql:
        return
    expected = _literal(",".join(sorted(heads)) or None)
    revision = _literal(", ".join(step.destination_revision_ids) or "base")
    found = "(SELECT string_agg(version_num, ',' ORDER BY version_num) FROM alembic_version)"
    ctx.impl.static_output(
        f"DO $$ BEGIN IF {found} IS DISTINCT FROM {expected} THEN RAISE EXCEPTION"
        f" 'orgmig: alembic_version is not % after revision %: an earlier statement of this"
        f" script failed; nothing of this revision is kept', {expected}, {revision}; END IF; END $$;\n")


def _literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        transaction_per_migration=True,
        compare_type=True,
        compare_server_default=True,
        include_object=include_object,
        on_version_apply=_check_stamp,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: a script a DBA can review, and run with psql."""
    try:
        url = db.database_url(config.attributes.get("database_url"))
    except db.DatabaseError:
        url = db.normalize_url("postgresql://localhost/orgmig")
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    context.get_context().impl.static_output("\\set ON_ERROR_STOP on\n")
    with context.begin_transaction():
        for stmt in _session_timeouts():
            context.execute(stmt)
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    # Session-level timeouts; committed at once unless the caller owns an open transaction,
    # in which case Alembic runs every revision inside it.
    config.attributes[CONNECTED] = True
    was_in_transaction = connection.in_transaction()
    config.attributes[EXTERNAL_TRANSACTION] = was_in_transaction
    for stmt in _session_timeouts():
        connection.exec_driver_sql(stmt)
    if not was_in_transaction:
        connection.commit()
    _configure(connection=connection)

    def run() -> None:
        with context.begin_transaction():
            context.run_migrations()

    with migration_lock(connection, wait=not was_in_transaction):
        check_downgrades()  # every refusal on the way down before the first revision changes anything
        if not was_in_transaction:
            connection.rollback()  # the checks' reads: no transaction left open
        if was_in_transaction:
            run()  # the caller owns the transaction: nothing of it to roll back and run again
        else:
            with_lock_retries(connection, run)


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _run_on(given)
        return
    if isinstance(given, Engine):
        with given.connect() as connection:
            _run_on(connection)
        return
    engine = db.make_engine(config.attributes.get("database_url"), poolclass=NullPool,
                            connect_args={"application_name": "orgmig alembic"})
    try:
        db.check_connection(engine)
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


def main() -> None:
    if FROM_COMMAND_LINE:
        install()  # SIGTERM stops a deploy as Ctrl-C does: cleanly, with one line
    try:
        if context.is_offline_mode():
            run_migrations_offline()
        else:
            run_migrations_online()
    except (OrgmigError, DBAPIError) as exc:
        url = config.attributes.get("database_url")
        if isinstance(exc, OrgmigError):
            error = exc
        elif config.attributes.get(CONNECTED) and db.connection_lost(exc):
            error = lost_connection(exc, url)
        else:
            error = db.explain(exc, url)
        if not FROM_COMMAND_LINE:
            raise error from None
        logging.getLogger("app").debug("alembic failed", exc_info=exc)
        print(f"alembic: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
    except KeyboardInterrupt:
        # Outside a data step's batches (those end in Interrupted, an OrgmigError, above): the
        # revision in progress is rolled back; those before it stay applied.
        if not FROM_COMMAND_LINE:
            raise
        print(f"alembic: interrupted ({name()}); the revision in progress was rolled back, those before it"
              " are applied; the same command goes on from there", file=sys.stderr)
        raise SystemExit(exit_code()) from None


main()
