"""Fixtures and probes of the identity-provider export tests (a plugin module: tests/conftest.py registers it).

- `snapshot_db`: a database at `alembic upgrade head` (migrated once per session) whose snapshot
  tables are emptied before each test.
- `run_orgmig`: `orgmig ARGS` (through the `orgmig` entry point) in this process, returning the
  exit code, what it printed and its logs (`Outcome`), `command_env` the environment it reads;
  `run_export`: `orgmig export` that way; `export_subprocess` starts it as a separate process.
- `snapshot`: the snapshot tables as plain Python values, for comparing with a fake's data.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from app import cli
from app.config import get_settings
from app.db import make_engine
from app.ops import migrations, verify
from app.schema.idp_snapshot import SNAPSHOT_TABLES

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_PREFIXES = ("OKTA_", "KEYCLOAK_", "AUTH0_", "ORGMIG_IDP_", "ORGMIG_EXPORT_")
ISO_MILLIS = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'


@pytest.fixture(scope="session")
def idp_database(pg_server) -> URL:
    """One database migrated to head for all export tests of the session."""
    url = pg_server.create("orgmig_idp")
    migrations.upgrade(migrations.alembic_config(url))
    return url


@pytest.fixture
def snapshot_db(idp_database) -> URL:
    """The export tests' database with empty snapshot tables (emptied before each test)."""
    eng = make_engine(idp_database, poolclass=NullPool)
    try:
        with eng.begin() as conn:
            conn.execute(text("TRUNCATE " + ", ".join(t.name for t in SNAPSHOT_TABLES) + " RESTART IDENTITY CASCADE"))
    finally:
        eng.dispose()
    return idp_database


@pytest.fixture
def snapshot_engine(snapshot_db) -> Engine:
    eng = make_engine(snapshot_db, poolclass=NullPool)
    yield eng
    eng.dispose()


@pytest.fixture
def fresh_settings():
    """`app.config.get_settings()` reads the environment again now and after the test (it caches
    what it read: a process runs one command, a test session many)."""
    get_settings.cache_clear()
    yield get_settings.cache_clear
    get_settings.cache_clear()


@pytest.fixture
def provider_env(fresh_settings, monkeypatch, tmp_path):
    """Run with only the provider settings a test gives, from an empty working directory (no
    developer `.env` can leak in)."""
    for key in list(os.environ):
        if key.startswith(PROVIDER_PREFIXES):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)

    def set_env(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        fresh_settings()

    return set_env


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    logs: str

    @property
    def messages(self) -> list[str]:
        """The lines `orgmig export` itself printed on stderr (a fake server thread may print its
        own tracebacks to the same process-wide stream when a client hangs up on it)."""
        return [line for line in self.stderr.splitlines() if line.startswith("orgmig export:")]

    @property
    def errors(self) -> list[str]:
        """The lines any `orgmig` command itself printed on stderr."""
        return [line for line in self.stderr.splitlines() if line.startswith("orgmig")]

    @property
    def everything(self) -> str:
        return "\n".join((self.stdout, self.stderr, self.logs))


@contextmanager
def command_env(env: dict[str, str], clear: tuple[str, ...] = PROVIDER_PREFIXES) -> Iterator[None]:
    """While in the block, the environment a command reads: no variable starting with `clear`,
    `env` set, and the settings read afresh; all as before after it."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith(clear):
                mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        try:
            yield
        finally:
            get_settings.cache_clear()


def run_orgmig(*args: str) -> Outcome:
    """`orgmig ARGS` in this process: its exit code, what it printed, and its logs at DEBUG level."""
    out, err, logs = io.StringIO(), io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(list(args))
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    return Outcome(code, out.getvalue(), err.getvalue(), logs.getvalue())


def run_export(url: URL, *args: str) -> Outcome:
    """`orgmig [-v] export ...` in this process; logs are captured at DEBUG level."""
    verbose = ["-v"] if "-v" in args else []
    return run_orgmig(*verbose, "export", *(a for a in args if a != "-v"),
                      "--database-url", url.render_as_string(hide_password=False))


def export_subprocess(url: URL, env: dict[str, str], *args: str) -> subprocess.Popen:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(PROVIDER_PREFIXES)}
    full_env.update(env)
    full_env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "export", *args, "--database-url", url.render_as_string(hide_password=False)],
        env=full_env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def rows(engine: Engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def snapshot(engine: Engine, provider: str) -> dict:
    """Users, groups and memberships of one provider, without the run tags."""
    users = {
        r.external_id: r._asdict()
        for r in rows(engine, """SELECT external_id, login, email, email_verified, first_name, last_name, status,
                                        to_char(idp_created_at AT TIME ZONE 'UTC', :iso) AS created,
                                        to_char(idp_updated_at AT TIME ZONE 'UTC', :iso) AS updated,
                                        attributes, raw
                                 FROM idp_user WHERE provider = :p""", p=provider, iso=ISO_MILLIS)
    }
    groups = {
        (r.kind, r.external_id): r._asdict()
        for r in rows(engine, """SELECT kind, external_id, name, description, group_type, parent_external_id,
                                        attributes, raw
                                 FROM idp_group WHERE provider = :p""", p=provider)
    }
    members: dict[tuple[str, str], dict[str, dict]] = {}
    for r in rows(engine, """SELECT kind, group_external_id, user_external_id, attributes
                             FROM idp_membership WHERE provider = :p""", p=provider):
        members.setdefault((r.kind, r.group_external_id), {})[r.user_external_id] = r.attributes
    return {"users": users, "groups": groups, "members": members}


def fingerprint(engine: Engine, provider: str) -> str:
    """One text standing for the whole snapshot of a provider (run tags left out)."""
    snap = snapshot(engine, provider)
    flat = {part: {"|".join(k) if isinstance(k, tuple) else k: v for k, v in snap[part].items()} for part in snap}
    return json.dumps(flat, sort_keys=True, default=str)


def verification(engine: Engine) -> list[verify.Check]:
    path = ROOT / "alembic" / "verify" / "0005_idp_snapshot.sql"
    return verify.run_file(engine, path, "0005")


def failed_checks(engine: Engine) -> list[str]:
    return [f"{c.check_name}: {c.detail}" for c in verification(engine) if not c.ok]


def last_run(engine: Engine, provider: str):
    return rows(engine, "SELECT * FROM idp_export_run WHERE provider = :p ORDER BY id DESC LIMIT 1", p=provider)[0]
