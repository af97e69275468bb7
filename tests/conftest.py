"""Fixtures: a real PostgreSQL for every database test (see tests/pg.py for where it comes from)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from app.ops import migrations
from app.db import make_engine
from tests.pg import DatabaseFactory, server_url

# The tests never read a developer's .env or DATABASE_URL by accident.
os.environ.pop("DATABASE_URL", None)


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


# pytest-alembic: its built-in tests run against a new empty database per test.
@pytest.fixture
def alembic_engine(engine: Engine) -> Engine:
    return engine


@pytest.fixture
def alembic_config():
    return {"file": str(migrations.alembic_config().config_file_name)}


# pytest-alembic's collector does not work under pytest 9, so its plugin is disabled in
# pyproject.toml and its runner fixture is used directly.
from pytest_alembic.plugin.fixtures import alembic_runner  # noqa: E402,F401

# The identity-provider export tests' fixtures (helpers they import from tests.idp_support).
from tests.idp_support import idp_database, provider_env, snapshot_db, snapshot_engine  # noqa: E402,F401
