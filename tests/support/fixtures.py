"""Fixtures: a real PostgreSQL for every database test (see tests/support/pg.py for where it
comes from), and pytest-alembic's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_alembic.plugin.fixtures import alembic_runner
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.ops import migrations
from tests.support.pg import DatabaseFactory, server_url

__all__ = ["alembic_cfg", "alembic_config", "alembic_engine", "alembic_runner", "database_url",
           "empty_db", "engine", "pg_server"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[DatabaseFactory]:
    with server_url() as (admin_url, source):
        factory = DatabaseFactory(admin_url)
        print(f"\norgmig tests: PostgreSQL from {source}")
        try:
            yield factory
        finally:
            factory.drop_all()


@pytest.fixture(scope="session")
def database_url(pg_server: DatabaseFactory) -> URL:
    """One freshly created database for this test run (empty; tests that migrate it share it)."""
    return pg_server.create("orgmig_run")


@pytest.fixture
def empty_db(pg_server: DatabaseFactory) -> Iterator[URL]:
    """A new empty database for one test, dropped afterwards."""
    url = pg_server.create()
    try:
        yield url
    finally:
        pg_server.drop(url)


@pytest.fixture
def engine(empty_db: URL) -> Iterator[Engine]:
    eng = make_engine(empty_db, poolclass=NullPool)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def alembic_cfg(empty_db: URL):
    """An Alembic config pointed at `empty_db`, as `alembic -c alembic.ini` would be."""
    return migrations.alembic_config(empty_db)


# pytest-alembic: its built-in tests run against a new empty database per test. Its collector
# does not work under pytest 9, so its plugin is disabled in pyproject.toml and its runner
# fixture is registered here.
@pytest.fixture
def alembic_engine(engine: Engine) -> Engine:
    return engine


@pytest.fixture
def alembic_config():
    return {"file": str(migrations.alembic_config().config_file_name)}
