"""The login-time service on a free loopback port, wired as `orgmig serve` wires it
(app.service.server), and a caller."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.pool import NullPool

from app.config import Settings
from app.db import make_engine
from app.ops import migrations
from app.ops.databases import libpq
from app.service import server
from app.service.auth import Authenticator

TOKEN = "t0ken-for-the-tests-0123456789abcdef"


@pytest.fixture(scope="session")
def schema_template(pg_server) -> str:
    """A database at revision 0006 (every table the service reads), built once per session."""
    url = pg_server.create("orgmig_serve_template")
    migrations.upgrade(migrations.alembic_config(url), "0006")
    return url.database


@pytest.fixture
def schema(pg_server, schema_template) -> Iterator[Engine]:
    """An engine on a fresh copy of the template, for one test."""
    name = f"orgmig_serve_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq(pg_server.admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{schema_template}" STRATEGY = WAL_LOG')
    pg_server.created.append(name)
    engine = make_engine(pg_server.server.url(name), poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()
        pg_server.drop(engine.url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(url, authenticate: Authenticator | None = None, **settings) -> Iterator[str]:
    """The service on its own pool; `settings` are Settings fields (serve_rate_per_minute=3 ...)."""
    values = Settings(**{"serve_rate_per_minute": 1000, **settings})
    engine = server.make_engine(url, values)
    port = free_port()
    uv = uvicorn.Server(server.config(engine, authenticate or Authenticator(TOKEN), values, "127.0.0.1", port))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(10)
        engine.dispose()


def post(base: str, path: str, body=None, token: str | None = TOKEN, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kwargs.pop("headers", {}))
    return httpx.post(f"{base}{path}", json=body, headers=headers, timeout=30, **kwargs)


def migrate(base: str, body, token: str | None = TOKEN, **kwargs) -> httpx.Response:
    return post(base, "/v1/users/migrate", body, token, **kwargs)
