"""The identity tests' databases and fixtures: `identity_databases` (template databases per
provider and stage, copied per test) and `identity_fake` (a started fake over a fresh tenant)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.ops import migrations
from app.ops.databases import libpq
from tests.support.identity.cast import start
from tests.support.identity.legacy import insert_app_org, insert_legacy_rows
from tests.support.identity.probes import Ids, fingerprint
from tests.support.identity.run import alembic, export


def synced_with_fake(databases: Databases, identity_fake, provider: str) -> tuple:
    """A test's copy of `provider`'s synced template with the fake it is to export from next:
    (url, engine, fake, ids, tenant, group ids by name)."""
    url, engine = databases.open(provider, "synced")
    fake = identity_fake(provider)
    tenant = fake.tenant
    return url, engine, fake, Ids(provider, fake), tenant, {gr.name: gr.id for gr in tenant.groups.values()}


class Databases:
    """Per provider, template databases built once per session: `exported` (legacy rows migrated
    by revision 0004, the schema at 0006, the fake's snapshot exported) and `synced` (then
    `alembic upgrade head`); tests work on copies."""

    def __init__(self, pg_server) -> None:
        self.pg = pg_server
        self.templates: dict[tuple[str, str], str] = {}
        self.base: str | None = None

    def copy(self, template: str, prefix: str = "orgmig_idt") -> URL:
        """A copy of `template`, dropped at the end of the session. WAL_LOG: these databases are
        small, and FILE_COPY's checkpoint costs seconds on a busy server."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(libpq(self.pg.admin_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY = WAL_LOG')
        self.pg.created.append(name)
        return self.pg.server.url(name)

    def empty(self) -> URL:
        """A copy of the base: the schema at 0003, no legacy rows, no export."""
        return self.copy(self._base())

    def _base(self) -> str:
        if self.base is None:
            url = self.pg.create("orgmig_idt_base")
            migrations.upgrade(migrations.alembic_config(url), "0003")
            self.base = url.database
        return self.base

    def template(self, provider: str, stage: str) -> str:
        key = (provider, stage)
        if key not in self.templates:
            if stage == "exported":
                url = self.copy(self._base(), f"orgmig_idt_{provider}")
                engine = make_engine(url, poolclass=NullPool)
                try:
                    with start(provider) as fake:
                        insert_legacy_rows(engine, provider, fake)
                        migrations.upgrade(migrations.alembic_config(url), "0006")
                        insert_app_org(engine)
                        export(url, provider, fake)
                finally:
                    engine.dispose()
            else:
                url = self.copy(self.template(provider, "exported"), f"orgmig_idt_{provider}_synced")
                proc = alembic(url, "upgrade", "head")
                assert proc.returncode == 0, proc.stderr[-3000:]
            self.templates[key] = url.database
        return self.templates[key]

    def get(self, provider: str, stage: str = "exported") -> URL:
        """A copy of the template, for one test."""
        return self.copy(self.template(provider, stage))

    def open(self, provider: str, stage: str = "exported") -> tuple[URL, Engine]:
        """A copy of the template for one test, and an engine on it (no pool: nothing held open)."""
        url = self.get(provider, stage)
        return url, make_engine(url, poolclass=NullPool)

    def template_url(self, provider: str, stage: str) -> URL:
        """The template itself, to read only (and no connection left open: it is copied from)."""
        return self.pg.server.url(self.template(provider, stage))

    def fingerprint(self, provider: str, stage: str) -> dict[str, tuple]:
        """The template's own fingerprint."""
        engine = make_engine(self.template_url(provider, stage), poolclass=NullPool)
        try:
            return fingerprint(engine)
        finally:
            engine.dispose()



@pytest.fixture(scope="session")
def identity_databases(pg_server) -> Databases:
    return Databases(pg_server)


@pytest.fixture
def identity_fake():
    """`identity_fake(provider)`: a started fake over a fresh tests' tenant, stopped after the test."""
    started = []

    def make(provider: str):
        fake = start(provider)
        fake.start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()
