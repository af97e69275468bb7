"""Alembic environment for orgmig.

The URL comes from `DATABASE_URL` (app.config). A harness may pass a Connection or an Engine in
`config.attributes["connection"]` (Alembic's cookbook and pytest-alembic respectively). Each
revision runs in its own transaction, with `lock_timeout` and `statement_timeout` set first, so
DDL never queues behind a long lock and a data revision can commit batch by batch.
"""

from __future__ import annotations

import logging.config
import sys

from sqlalchemy import Connection, Engine
from sqlalchemy.pool import NullPool

from alembic import context
from app import db
from app.batch.revision import EXTERNAL_TRANSACTION
from app.config import get_settings
from app.schema import metadata

config = context.config
target_metadata = metadata

if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def _session_timeouts() -> list[str]:
    s = get_settings()
    return [
        f"SET lock_timeout = '{int(s.lock_timeout_ms)}ms'",
        f"SET statement_timeout = '{int(s.statement_timeout_ms)}ms'",
    ]


def _include_object(obj, name, type_, reflected, compare_to):
    # alembic's own version table is not part of the model.
    return not (type_ == "table" and name == "alembic_version")


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        transaction_per_migration=True,
        compare_type=True,
        compare_server_default=True,
        include_object=_include_object,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: a script a DBA can review."""
    try:
        url = db.database_url(config.attributes.get("database_url"))
    except db.DatabaseError:
        url = db.normalize_url("postgresql://localhost/orgmig")
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        for stmt in _session_timeouts():
            context.execute(stmt)
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    # Session-level timeouts; committed at once unless the caller owns an open transaction,
    # in which case Alembic runs every revision inside it.
    was_in_transaction = connection.in_transaction()
    config.attributes[EXTERNAL_TRANSACTION] = was_in_transaction
    for stmt in _session_timeouts():
        connection.exec_driver_sql(stmt)
    if not was_in_transaction:
        connection.commit()
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _run_on(given)
        return
    if isinstance(given, Engine):
        with given.connect() as connection:
            _run_on(connection)
        return
    try:
        engine = db.make_engine(config.attributes.get("database_url"), poolclass=NullPool)
        db.check_connection(engine)
    except db.DatabaseError as exc:
        print(f"alembic: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    with engine.connect() as connection:
        _run_on(connection)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
