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

from sqlalchemy.engine import URL

from app.db import normalize_url
from app.ops.databases import Server


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-not-found]  # only where testcontainers is installed
    except ImportError:
        return False
    try:
        docker.from_env(timeout=3).ping()
    except (docker.errors.DockerException, OSError):  # no engine, no socket, no permission
        return False
    return True


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


class DatabaseFactory:
    """Creates uniquely named databases on one server (app.ops.databases.Server) and drops them
    all at the end."""

    def __init__(self, admin_url: URL):
        self.admin_url = admin_url
        self.server = Server(admin_url)
        self.created: list[str] = []

    def create(self, prefix: str = "orgmig_test") -> URL:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        url = self.server.create(name)
        self.created.append(name)
        return url

    def drop(self, url: URL) -> None:
        self.server.drop(url.database)
        if url.database in self.created:
            self.created.remove(url.database)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(self.server.url(name))
