"""The server a bench creates its databases on, the template databases it copies for every timed
run (`CREATE DATABASE ... TEMPLATE`), and statements run on them."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from app.db import DatabaseError, make_engine, normalize_url, redact
from app.ops import migrations
from app.ops.databases import Server, libpq
from app.ops.seed import SeedSummary, seed_legacy

from . import ROOT
from .report import fail, say

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
# `alembic` of this checkout, as a child process runs it (add `-x ...` and the command).
ALEMBIC = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]
# `orgmig` of this checkout, as a child process runs it.
ORGMIG = [sys.executable, "-m", "app.cli"]
# What a bench catches as "could not run" (exit 2).
ERRORS = (DatabaseError, RuntimeError, psycopg.Error)


def add_server_arguments(parser: argparse.ArgumentParser, keep: str | None = "keep the bench databases") -> None:
    """--database-url, and --keep with its help (None: no --keep)."""
    parser.add_argument("--database-url", metavar="URL",
                        help=f"server to use (default DATABASE_URL, else {DEFAULT_SERVER})")
    if keep:
        parser.add_argument("--keep", action="store_true", help=keep)


def open_server(database_url: str | None) -> tuple[Server, str]:
    """The server a bench creates its databases on (`--database-url`, else `DATABASE_URL`, else
    DEFAULT_SERVER) and its description for the report; when it cannot be reached, the reason on
    stderr and exit code 2 (SystemExit)."""
    try:
        server = Server(normalize_url(database_url or os.environ.get("DATABASE_URL") or DEFAULT_SERVER))
        return server, describe(server)
    except (DatabaseError, psycopg.Error) as exc:
        raise SystemExit(fail(str(exc).splitlines()[0])) from None


def describe(server: Server) -> str:
    with psycopg.connect(libpq(server.admin_url)) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        shared = conn.execute("SHOW shared_buffers").fetchone()[0]
        work_mem = conn.execute("SHOW work_mem").fetchone()[0]
    return f"PostgreSQL {version} (shared_buffers {shared}, work_mem {work_mem}) at {redact(server.admin_url)}"


def child_env(url: URL, **extra: str) -> dict[str, str]:
    """The environment of a child `alembic` or `orgmig` process working on `url`."""
    return dict(os.environ, DATABASE_URL=url.render_as_string(hide_password=False), PYTHONUNBUFFERED="1", **extra)


def execute(url: URL, *statements: str, params: dict | None = None) -> list:
    """Each statement in turn on one autocommit connection; each one's rows (None when it returns none)."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        out = []
        for sql in statements:
            cur = conn.execute(sql, params)
            out.append(cur.fetchall() if cur.description else None)
        return out


def upgrade_to(url: URL, revision: str, **x: str) -> None:
    """`alembic upgrade revision` in this process (`x`: the -x arguments)."""
    cfg = migrations.alembic_config(url, x or None)
    cfg.attributes["configure_logger"] = False
    migrations.upgrade(cfg, revision)


def prepare(url: URL, users: int, seed: int) -> SeedSummary:
    """A database at 0003 holding `users` seeded legacy rows, vacuumed and analyzed."""
    upgrade_to(url, "0003")
    engine = make_engine(url, poolclass=NullPool)
    try:
        summary = seed_legacy(engine, users, seed=seed)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM (ANALYZE) user_settings"))
            checkpoint(conn)
    finally:
        engine.dispose()
    return summary


def checkpoint(conn) -> None:
    """CHECKPOINT on an autocommit connection, so a timed run does not pay for earlier writes."""
    try:
        conn.execute(text("CHECKPOINT"))
    except DBAPIError:
        say("CHECKPOINT not allowed for this role; timing without it")


class Databases:
    """The databases a bench made on `server`, dropped at the end (`keep`: all but the copies)."""

    def __init__(self, server: Server, keep: bool = False) -> None:
        self.server = server
        self.keep = keep
        self.kept: list[str] = []
        self.copies: list[str] = []

    def create(self, name: str, replace: bool = False) -> URL:
        """A database kept with --keep (a template, or one looked at afterwards)."""
        url = self.server.create(name, replace=replace)
        self.kept.append(name)
        return url

    def add(self, name: str) -> None:
        """A database made elsewhere on this server, dropped at the end unless kept."""
        self.kept.append(name)

    def copy(self, name: str, template: str) -> URL:
        """A file copy of `template`, so every timed run starts from the same state; dropped by `drop`
        or at the end."""
        url = self.server.create(name, template=template, replace=True)
        self.copies.append(name)
        return url

    def drop(self, name: str) -> None:
        self.server.drop(name)
        for names in (self.copies, self.kept):
            if name in names:
                names.remove(name)

    def __enter__(self) -> Databases:
        return self

    def __exit__(self, *exc) -> None:
        for name in self.copies + ([] if self.keep else self.kept):
            self.server.drop(name)


class PrivateServer:
    """A throw-away PostgreSQL cluster started with the given settings (initdb + pg_ctl)."""

    def __init__(self, settings: dict[str, str]) -> None:
        bindir = Path(subprocess.check_output(["pg_config", "--bindir"], text=True).strip())
        self.pg_ctl, initdb = bindir / "pg_ctl", bindir / "initdb"
        if not self.pg_ctl.exists() or not initdb.exists():
            raise FileNotFoundError(f"pg_ctl/initdb not found in {bindir}")
        self.dir = Path(tempfile.mkdtemp(prefix="orgmig-bench-pg-"))
        self.port = 5499
        # initdb refuses to run as root: run the server as the postgres account then.
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.run_as:
            shutil.chown(self.dir, "postgres")
        subprocess.run([*self.run_as, str(initdb), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust"],
                       check=True, capture_output=True)
        options = " ".join(f"-c {k}={v}" for k, v in {
            **settings, "port": str(self.port), "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.dir)}.items())
        subprocess.run([*self.run_as, str(self.pg_ctl), "-D", str(self.dir / "data"), "-o", options, "-w",
                        "-l", str(self.dir / "log"), "start"], check=True, capture_output=True)
        self.url = normalize_url(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")

    def stop(self) -> None:
        subprocess.run([*self.run_as, str(self.pg_ctl), "-D", str(self.dir / "data"), "-m", "fast", "stop"],
                       capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
