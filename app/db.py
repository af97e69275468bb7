"""Database URLs and engines: one place that turns `DATABASE_URL` into a psycopg 3 engine.

`postgresql://`, `postgres://` and `postgresql+psycopg://` all select psycopg 3. Errors that
reach a person name the URL with its password hidden, never the password itself.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from app.config import get_settings
from app.errors import DatabaseError

# Worth another try, by SQLSTATE: the same transaction may well succeed a moment later.
RETRYABLE_SQLSTATES = {
    "55P03": "lock_timeout",
    "57014": "statement_timeout",
    "40P01": "deadlock",
    "40001": "serialization failure",
    # A concurrent writer (the application migrating a user at login) inserted a key the
    # transaction was about to insert; the retry finds that row instead.
    "23505": "unique violation",
    "57P01": "server shutting down",
    "57P02": "crash shutdown",
    "57P03": "server starting up",
}


def normalize_url(raw: str) -> URL:
    """Parse a PostgreSQL URL and force the psycopg 3 driver."""
    try:
        url = make_url(raw.strip())
    except ArgumentError as exc:
        raise DatabaseError(f"DATABASE_URL is not a valid database URL ({redact(raw)})") from exc
    backend = url.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return url.set(drivername="postgresql+psycopg")
    raise DatabaseError(
        f"DATABASE_URL must be a PostgreSQL URL (postgresql://...), got {url.drivername!r}"
    )


def redact(url: str | URL) -> str:
    """The URL as a person may see it: the password replaced by ***."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def database_url(explicit: str | None = None) -> URL:
    """The URL to use: an explicit one, else `DATABASE_URL`."""
    if explicit:
        return normalize_url(explicit)
    secret = get_settings().database_url
    if secret is None or not secret.get_secret_value().strip():
        raise DatabaseError("DATABASE_URL is not set: export DATABASE_URL=postgresql://user@host:5432/dbname")
    return normalize_url(secret.get_secret_value())


def make_engine(url: str | URL | None = None, **kwargs) -> Engine:
    """An engine for `url` (default: `DATABASE_URL`) with psycopg 3."""
    resolved = url if isinstance(url, URL) else database_url(url)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(resolved, **kwargs)


def error_summary(exc: BaseException) -> str:
    """SQLSTATE and PostgreSQL's primary message, else the driver's first line: never the DETAIL
    line, which can quote a row's values (and rows hold secrets), nor SQLAlchemy's parameters."""
    orig = getattr(exc, "orig", None) or exc
    diag = getattr(orig, "diag", None)
    if diag is not None and diag.message_primary:
        return f"{diag.sqlstate or ''} {diag.message_primary}".strip()
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def explain(exc: BaseException, url: str | URL) -> DatabaseError:
    """Turn a driver error into a one-line message that names the URL without its password."""
    where = redact(url)
    if isinstance(exc, OperationalError):
        return DatabaseError(f"cannot connect to {where}: {error_summary(exc)}")
    if isinstance(exc, DBAPIError):
        return DatabaseError(f"database error on {where}: {error_summary(exc)}")
    return DatabaseError(f"{type(exc).__name__} on {where}")


def check_connection(engine: Engine) -> None:
    """Connect once; raise DatabaseError with a readable message when the database does not answer."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        raise explain(exc, engine.url) from None


@contextlib.contextmanager
def transaction(conn: Connection, lock_timeout_ms: int | None = None,
                statement_timeout_ms: int | None = None, **local: str) -> Iterator[Connection]:
    """One transaction on `conn` with `lock_timeout` and `statement_timeout` set for it alone
    (defaults: the settings), plus any other `SET LOCAL name = value` given as keywords.
    Commits on success, rolls back on error."""
    s = get_settings()
    local = {
        "lock_timeout": f"{int(lock_timeout_ms or s.lock_timeout_ms)}ms",
        "statement_timeout": f"{int(statement_timeout_ms or s.statement_timeout_ms)}ms",
        **local,
    }
    with conn.begin():
        conn.execute(
            text("SELECT " + ", ".join(f"set_config(:n{i}, :v{i}, true)" for i in range(len(local)))),
            {**{f"n{i}": k for i, k in enumerate(local)}, **{f"v{i}": str(v) for i, v in enumerate(local.values())}},
        )
        yield conn


def sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None) or exc
    return getattr(orig, "sqlstate", None)


def connection_lost(exc: BaseException) -> bool:
    """The connection broke (server restart, network): the transaction rolled back with it."""
    if isinstance(exc, OperationalError) and getattr(exc, "connection_invalidated", False):
        return True
    state = sqlstate(exc) or ""
    return state.startswith("08") or (isinstance(exc, OperationalError) and not state)


def is_retryable(exc: BaseException) -> bool:
    """Whether running the same transaction again may succeed: timeouts, deadlocks,
    serialization failures, a concurrent insert of the same key, a lost connection."""
    return sqlstate(exc) in RETRYABLE_SQLSTATES or connection_lost(exc)


def backoff(attempt: int, base_s: float, cap_s: float) -> float:
    """Seconds to wait before attempt `attempt + 1`: capped exponential, with jitter (half to
    all of it) so retrying workers do not collide again."""
    return min(cap_s, base_s * 2 ** (max(attempt, 1) - 1)) * random.uniform(0.5, 1.0)
