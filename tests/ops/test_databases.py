"""app.ops.databases: whole databases on one server, as the demo, the tests and the bench use them."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.errors import DatabaseError
from app.ops.databases import Server
from tests.support.db import execute, scalar


@pytest.fixture
def server(pg_server):
    srv = Server(pg_server.admin_url)
    names: list[str] = []
    yield srv, names
    for name in names:
        srv.drop(name)


def _name(names: list[str], label: str) -> str:
    # A quote and a capital in the name: identifiers are quoted, never interpolated bare.
    name = f'orgmig_Db"{label}_{uuid.uuid4().hex[:8]}'
    names.append(name)
    return name


def test_create_copy_replace_and_drop(server):
    srv, names = server
    original, copy = _name(names, "a"), _name(names, "b")
    url = srv.create(original)
    assert url.database == original and srv.exists(original)
    engine = make_engine(url, poolclass=NullPool)
    try:
        execute(engine, "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)")
    finally:
        engine.dispose()

    with pytest.raises(DatabaseError, match="already exists"):
        srv.create(original)

    copy_engine = make_engine(srv.create(copy, template=original), poolclass=NullPool)
    try:
        assert scalar(copy_engine, "SELECT sum(x) FROM t") == 3
    finally:
        copy_engine.dispose()

    replaced = make_engine(srv.create(copy, replace=True), poolclass=NullPool)
    try:
        assert scalar(replaced, "SELECT to_regclass('t')") is None
    finally:
        replaced.dispose()

    srv.drop(original)
    srv.drop(original)  # dropping what is gone is not an error
    assert not srv.exists(original) and srv.exists(copy)
