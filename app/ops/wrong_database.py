"""The wrong-database guard: a `DATABASE_URL` pointing at another database than the
application's would otherwise build the whole schema there, migrate 0 rows and succeed.

- Revision 0001, before it creates `user_settings` where it is absent: a database that already
  holds other tables is most likely not a new one but the wrong one.
- Revision 0004, before it migrates: `user_settings` empty while the application's tables (any
  table orgmig did not create) hold rows.

Each case is one warning line naming the database and what to do. With
ORGMIG_REQUIRE_LEGACY_ROWS=true (or `-x require_legacy_rows=true`), for deploy pipelines, the
upgrade instead stops (ConfigError, exit 2) unless `user_settings` exists and holds rows. Online
only: an offline script cannot read the database it will run on."""

from __future__ import annotations

import logging

from sqlalchemy import Connection, text

from app import db
from app.errors import ConfigError
from app.numbers import plural
from app.schema import metadata

log = logging.getLogger("app")

SETTING = "ORGMIG_REQUIRE_LEGACY_ROWS=true (or -x require_legacy_rows=true)"
SHOWN = 5  # table names a line lists at most

# User tables of every schema but the system ones, named as a person would type them.
TABLES = text(
    "SELECT c.oid::regclass::text AS name, c.relname FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
    " ORDER BY 1"
)


def _where(conn: Connection) -> str:
    return f"database {conn.exec_driver_sql('SELECT current_database()').scalar_one()}" \
           f" ({db.redact(conn.engine.url)})"


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN:,} more" if len(names) > SHOWN else "")


def _application_tables(conn: Connection) -> list[str]:
    """Tables orgmig did not create (nor alembic), with their qualified names."""
    ours = set(metadata.tables) | {"alembic_version", "user_settings"}
    return [name for name, rel in conn.execute(TABLES).all()
            if rel not in ours and not rel.startswith("orgmig_")]


def _refuse_if(required: bool, message: str) -> None:
    """With ORGMIG_REQUIRE_LEGACY_ROWS=true, what is otherwise a warning is an error."""
    if required:
        raise ConfigError(message)


def before_baseline(conn: Connection, required: bool) -> None:
    """Revision 0001, before it creates `user_settings` where absent."""
    if conn.execute(text("SELECT to_regclass('user_settings') IS NOT NULL")).scalar_one():
        return
    where = _where(conn)
    _refuse_if(required, f"{where} has no user_settings table, and ORGMIG_REQUIRE_LEGACY_ROWS=true requires its"
               " rows: point DATABASE_URL at the application's database (revision 0001 was not applied)")
    others = [name for name, rel in conn.execute(TABLES).all() if rel != "alembic_version"]
    if others:
        log.warning("%s has %s (%s) but no user_settings: revision 0001 creates an empty one and"
                    " nothing will be migrated. If DATABASE_URL names the wrong database, stop, `alembic"
                    " downgrade base`, and point it at the application's; %s makes this an error",
                    where, plural(len(others), "other table"), _listing(others), SETTING)


def before_migrating(conn: Connection, required: bool) -> None:
    """Revision 0004, before its run: `user_settings` empty while the application's tables
    hold rows."""
    if conn.execute(text("SELECT EXISTS (SELECT 1 FROM user_settings)")).scalar_one():
        return
    where = _where(conn)
    _refuse_if(required, f"user_settings in {where} is empty, and ORGMIG_REQUIRE_LEGACY_ROWS=true requires its"
               " rows: point DATABASE_URL at the application's database (the revisions before 0004 stay applied)")
    tables = _application_tables(conn)
    if not tables:
        return
    holding = " UNION ALL ".join(
        f"SELECT {i} WHERE EXISTS (SELECT 1 FROM {name})" for i, name in enumerate(tables))
    full = [tables[i] for (i,) in conn.execute(text(holding)).all()]
    if full:
        log.warning("user_settings in %s is empty, but %s hold rows: nothing will be migrated. If DATABASE_URL"
                    " names the wrong database, point it at the application's and run again; %s makes this"
                    " an error", where, _listing(full), SETTING)


def in_revision(check) -> None:
    """Run `check` (before_baseline or before_migrating) from inside a revision, online, with the
    setting from the environment or `-x`."""
    from alembic import op
    from app.batch import revision_settings
    if not op.get_context().as_sql:
        check(op.get_bind(), revision_settings().require_legacy_rows)
