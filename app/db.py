"""Database URLs and engines: one place that turns `DATABASE_URL` into a psycopg 3 engine.

`postgresql://`, `postgres://` and `postgresql+psycopg://` all select psycopg 3. Errors that
reach a person name the URL with its password hidden, never the password itself.
"""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from app.config import get_settings


class DatabaseError(RuntimeError):
    """A database problem explained in one line, safe to print."""


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
