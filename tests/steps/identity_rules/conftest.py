"""The rules of rules.sql tried one by one on small tables: a database at the identity schema
(revision 0006), and per test a connection whose transaction is rolled back, with one finished
export run (id 1) that snapshot rows may name."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.provider_names import CAPABILITIES
from app.steps.identity import APP_ROLE_WORDS, ROLES, SQL


@pytest.fixture(scope="module")
def rules_engine(identity_databases, schema_template):
    url = identity_databases.copy(schema_template)
    engine = make_engine(url, poolclass=NullPool)
    yield engine
    engine.dispose()


class Rules:
    """A connection in a transaction rolled back at the end of the test: `exec` writes small
    tables, `rule(sql, provider, **params)` runs a statement naming rules ({name}, {name:alias})
    with the parameters the identity step gives them for that provider."""

    def __init__(self, conn) -> None:
        self.conn = conn
        conn.execute(text("INSERT INTO idp_export_run (id, provider, mode, status) VALUES (1, 'okta', 'full',"
                          " 'finished'), (2, 'keycloak', 'full', 'finished'), (3, 'auth0', 'full', 'finished')"))

    def exec(self, sql: str, **params) -> None:
        self.conn.execute(text(sql), params)

    def rule(self, sql: str, provider: str = "okta", **params) -> list:
        values = {"provider": provider, "env": "PROD", "role_map": "{}", "role_words": list(APP_ROLE_WORDS),
                  "role_names": list(ROLES), "run_id": None, **CAPABILITIES[provider].params(), **params}
        clause = text(SQL.expand(sql))
        names = set(clause._bindparams)
        return list(self.conn.execute(clause, {k: v for k, v in values.items() if k in names}))


@pytest.fixture
def rules(rules_engine):
    with rules_engine.connect() as conn:
        trans = conn.begin()
        try:
            yield Rules(conn)
        finally:
            trans.rollback()
