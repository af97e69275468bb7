"""Whole databases on one PostgreSQL server, for the demo, the tests and the benchmarks: create
(empty, or as a file copy of another), drop, check. Names are quoted identifiers; nothing here
ever touches a database it was not asked about."""

from __future__ import annotations

import psycopg
from sqlalchemy.engine import URL

from app.errors import DatabaseError


def libpq(url: URL) -> str:
    """A conninfo psycopg accepts, from a SQLAlchemy URL (password included: never print it)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Server:
    """A PostgreSQL server reached through `admin_url`, whose role may CREATE DATABASE."""

    def __init__(self, admin_url: URL) -> None:
        self.admin_url = admin_url

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(libpq(self.admin_url), autocommit=True)

    def url(self, name: str) -> URL:
        return self.admin_url.set(database=name)

    def exists(self, name: str) -> bool:
        with self._admin() as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    def create(self, name: str, *, template: str | None = None, replace: bool = False) -> URL:
        """A new database `name`: empty, or a file copy of `template` (no session may be
        connected to it). An existing `name` is dropped first with `replace`, else refused."""
        with self._admin() as conn:
            if replace:
                conn.execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")
            elif conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                raise DatabaseError(f"database {name} already exists: drop it (dropdb {name}) or choose another")
            if template is None:
                conn.execute(f"CREATE DATABASE {_ident(name)}")
            else:
                # FILE_COPY (PostgreSQL 15+) copies the files after a checkpoint instead of
                # writing the whole database to the WAL.
                version = int(conn.execute("SHOW server_version_num").fetchone()[0])
                strategy = " STRATEGY = FILE_COPY" if version >= 150000 else ""
                conn.execute(f"CREATE DATABASE {_ident(name)} TEMPLATE {_ident(template)}{strategy}")
        return self.url(name)

    def drop(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")
