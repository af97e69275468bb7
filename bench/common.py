"""What the benches share: the log line, the server they open and the server and code they name,
the seeded template database at revision 0003, the verdict against a target.

Imported as `bench.common` (a bench puts the checkout's root on sys.path first, so it also runs
from a checkout where the package is not installed).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
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

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
# `alembic` of this checkout, as a child process runs it (add `-x ...` and the command).
ALEMBIC = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load1() -> float:
    """The 1-minute load average now."""
    return os.getloadavg()[0]


def machine() -> str:
    return (f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()},"
            f" Python {platform.python_version()}")


def open_server(database_url: str | None) -> tuple[Server, str] | None:
    """The server a bench creates its databases on (`--database-url`, else `DATABASE_URL`, else
    DEFAULT_SERVER) and its description for the report; None, the reason said on stderr, when it
    cannot be reached."""
    try:
        server = Server(normalize_url(database_url or os.environ.get("DATABASE_URL") or DEFAULT_SERVER))
        return server, describe(server)
    except (DatabaseError, psycopg.Error) as exc:
        print(f"bench: {str(exc).splitlines()[0]}", file=sys.stderr)
        return None


def describe(server: Server) -> str:
    with psycopg.connect(libpq(server.admin_url)) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        shared = conn.execute("SHOW shared_buffers").fetchone()[0]
        work_mem = conn.execute("SHOW work_mem").fetchone()[0]
    return f"PostgreSQL {version} (shared_buffers {shared}, work_mem {work_mem}) at {redact(server.admin_url)}"


def child_env(url: URL) -> dict[str, str]:
    """The environment of a child `alembic` or `orgmig` process working on `url`."""
    return dict(os.environ, DATABASE_URL=url.render_as_string(hide_password=False), PYTHONUNBUFFERED="1")


def upgrade_to(url: URL, revision: str) -> None:
    cfg = migrations.alembic_config(url)
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


def code_version() -> str:
    """The commit the migration code comes from, and which files under app/ or alembic/ differ from it."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "app", "alembic"],
                               capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    paths = [line[3:] for line in dirty.splitlines() if line.strip()]
    if not paths:
        return f"commit {commit}"
    shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    return f"commit {commit} with uncommitted changes in {shown}"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"
