"""Where the tests' PostgreSQL comes from, first that works:

1. `TEST_DATABASE_URL` (any PostgreSQL URL whose role may CREATE DATABASE);
2. a testcontainers PostgreSQL, where the testcontainers package is installed and a Docker
   engine answers;
3. an embedded PostgreSQL from the `pgserver` wheel, in a temporary folder.

Each test run then works in databases it creates itself and drops at the end.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL, make_url

from app.db import normalize_url


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-not-found]

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def server_url() -> Iterator[tuple[URL, str]]:
    """Yield (admin URL, where it came from) for a PostgreSQL server the tests may use."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        yield normalize_url(explicit), "TEST_DATABASE_URL"
        return
    if _docker_answers():
        try:
            from testcontainers.postgres import PostgresContainer  # type: ignore[import-not-found]
        except ImportError:
            pass
        else:
            with PostgresContainer("postgres:16-alpine", driver="psycopg") as pg:
                yield normalize_url(pg.get_connection_url()), "testcontainers"
            return
    from app.ops.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="orgmig-test-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pgdata", cleanup="delete")
        try:
            yield server.url, "embedded PostgreSQL (pgserver)"
        finally:
            server.stop()


def libpq(url: URL) -> str:
    """A conninfo psycopg accepts, from a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class DatabaseFactory:
    """Creates uniquely named databases on one server and drops them all at the end."""

    def __init__(self, admin_url: URL):
        self.admin_url = admin_url
        self.created: list[str] = []

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(libpq(self.admin_url), autocommit=True)

    def create(self, prefix: str = "orgmig_test") -> URL:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.admin_url.set(database=name)

    def drop(self, url: URL) -> None:
        name = url.database
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(make_url(str(self.admin_url)).set(database=name))
