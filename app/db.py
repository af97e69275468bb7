"""Database URLs and engines: one place that turns `DATABASE_URL` into a psycopg 3 engine.

`postgresql://`, `postgres://` and `postgresql+psycopg://` all select psycopg 3. Errors that
reach a person name the URL with its password hidden, never the password itself.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Iterator, Sequence
from urllib.parse import unquote

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

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


def _split_userinfo(raw: str) -> tuple[str, str | None, str | None, str]:
    """(scheme, user, password, rest) of `scheme://user:password@rest`, where the user info ends
    at the LAST `@` before the query string, so a password may hold `@`, `/`, `:` or `#`
    unescaped; user and password are percent-decoded as a URL library would."""
    scheme, sep, after = raw.partition("://")
    if not sep:
        return raw, None, None, ""
    authority = after.split("?", 1)[0]
    at = authority.rfind("@")
    if at < 0:
        return scheme, None, None, after
    userinfo, rest = after[:at], after[at + 1:]
    user, colon, password = userinfo.partition(":")
    return scheme, unquote(user), (unquote(password) if colon else None), rest


def normalize_url(raw: str) -> URL:
    """Parse a PostgreSQL URL and force the psycopg 3 driver. The password never reaches an
    error message, whatever characters it holds or however malformed the URL is."""
    raw = raw.strip()
    scheme, user, password, rest = _split_userinfo(raw)
    try:
        url = make_url(f"{scheme}://{rest}")
        if user is not None:
            url = url.set(username=user or None, password=password)
    except Exception:  # noqa: BLE001 - any parse failure; the message must not quote the URL
        shown = f"{scheme}://..." if rest else "not of the form postgresql://user:password@host/db"
        raise DatabaseError(f"DATABASE_URL is not a valid database URL ({shown})") from None
    backend = url.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return url.set(drivername="postgresql+psycopg")
    raise DatabaseError(
        f"DATABASE_URL must be a PostgreSQL URL (postgresql://...), got {url.drivername!r}"
    )


def redact(url: str | URL | None) -> str:
    """The URL as a person may see it: the password replaced by ***."""
    if url is None:
        return "the database (DATABASE_URL)"
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    scheme, user, password, rest = _split_userinfo(url.strip())
    if not rest or "://" not in url:
        return "<unparseable URL>"
    shown = "" if user is None else (user + (":***" if password is not None else "") + "@")
    # No user info, but `name:word` where a port belongs: that word may be a password.
    rest = re.sub(r"^([^/?:]*):(?!\d+(?:[/?]|$))[^/?]*", r"\1:***", rest)
    return f"{scheme}://{shown}{rest}"


def scrub(message: str, url: str | URL | None) -> str:
    """`message` with the URL's password, and each piece of it, replaced by ***."""
    password = url.password if isinstance(url, URL) else (
        _split_userinfo(url.strip())[2] if isinstance(url, str) else None)
    if not password:
        return message
    pieces = {password, *(p for p in re.split(r"[@:/#?]", password) if len(p) >= 3)}
    for piece in sorted(pieces, key=len, reverse=True):
        message = message.replace(str(piece), "***")
    return message


def database_url(explicit: str | None = None) -> URL:
    """The URL to use: an explicit one, else `DATABASE_URL`."""
    if explicit:
        return normalize_url(explicit)
    secret = get_settings().database_url
    if secret is None or not secret.get_secret_value().strip():
        raise DatabaseError("DATABASE_URL is not set: export DATABASE_URL=postgresql://user@host:5432/dbname")
    return normalize_url(secret.get_secret_value())


def make_engine(url: str | URL | None = None, **kwargs) -> Engine:
    """An engine for `url` (default: `DATABASE_URL`) with psycopg 3. Its sessions run with JIT
    off: orgmig's statements are short, and where statistics are missing PostgreSQL's cost
    estimates can cross the JIT thresholds and spend seconds compiling a statement that runs in
    milliseconds."""
    resolved = url if isinstance(url, URL) else database_url(url)
    kwargs.setdefault("pool_pre_ping", True)
    connect_args = kwargs.setdefault("connect_args", {})
    connect_args["options"] = (connect_args.get("options", "") + " -c jit=off").strip()
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


# What to do about an error, by SQLSTATE (or its class, the first two characters).
HINTS = {
    "42P07": "a table or index of that name already exists and orgmig did not create it: rename"
             " or drop it, or point DATABASE_URL at the right database",
    "42501": "the role lacks a privilege on that object: run the migration as the owner of the"
             " tables (or grant the privilege)",
    "42P01": "a table orgmig expects is missing: check DATABASE_URL and `orgmig status`",
    "53300": "the server has no free connection: lower ORGMIG_WORKERS or raise max_connections",
    "57014": "a statement ran past statement_timeout: raise ORGMIG_STATEMENT_TIMEOUT_MS",
    "55P03": "another session holds a lock this needs: find it in pg_locks, or raise ORGMIG_LOCK_TIMEOUT_MS",
    "08": "the connection to the server failed: check that it runs and accepts connections",
    "57P": "the server shut down or restarted: run the same command again when it is back",
}


def hint(exc: BaseException) -> str | None:
    state = sqlstate(exc) or ""
    return HINTS.get(state) or HINTS.get(state[:2]) or HINTS.get(state[:3])


def explain(exc: BaseException, url: str | URL | None) -> DatabaseError:
    """Turn a driver error into a one-line message that names the URL without its password and
    says what to do where that is known."""
    where = redact(url)
    advice = hint(exc)
    tail = f" ({advice})" if advice else ""
    if isinstance(exc, OperationalError) and (connection_lost(exc) or not sqlstate(exc)):
        message = f"cannot connect to {where}: {error_summary(exc)}{tail}"
    elif isinstance(exc, DBAPIError):
        message = f"database error on {where}: {error_summary(exc)}{tail}"
    else:
        message = f"{type(exc).__name__} on {where}"
    return DatabaseError(scrub(" ".join(message.split()), url))


def check_connection(engine: Engine) -> None:
    """Connect once; raise DatabaseError with a readable message when the database does not answer."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        raise explain(exc, engine.url) from None


@contextlib.contextmanager
def transaction(conn: Connection, lock_timeout_ms: int | None = None,
                statement_timeout_ms: int | None = None, *, rollback: bool = False,
                **local: str) -> Iterator[Connection]:
    """One transaction on `conn` with `lock_timeout` and `statement_timeout` set for it alone
    (defaults: the settings; 0 means no limit), plus any other `SET LOCAL name = value` given
    as keywords. Commits on success (rolls back always with `rollback`: a dry run), rolls back
    on error."""
    s = get_settings()
    local = {
        "lock_timeout": f"{int(s.lock_timeout_ms if lock_timeout_ms is None else lock_timeout_ms)}ms",
        "statement_timeout":
            f"{int(s.statement_timeout_ms if statement_timeout_ms is None else statement_timeout_ms)}ms",
        **local,
    }
    tx = conn.begin()
    try:
        conn.execute(
            text("SELECT " + ", ".join(f"set_config(:n{i}, :v{i}, true)" for i in range(len(local)))),
            {**{f"n{i}": k for i, k in enumerate(local)}, **{f"v{i}": str(v) for i, v in enumerate(local.values())}},
        )
        yield conn
    except BaseException:
        tx.rollback()
        raise
    if rollback:
        tx.rollback()
    else:
        tx.commit()


# The tables of `names` (in the connection's schema) that have no planner statistics, or changed by
# more than a tenth of their rows since they were last analyzed.
_UNANALYZED = text("""
SELECT t.name
FROM unnest(CAST(:names AS text[])) t(name)
LEFT JOIN pg_stat_user_tables a ON a.schemaname = current_schema() AND a.relname = t.name
WHERE NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = current_schema() AND s.tablename = t.name)
   OR a.n_mod_since_analyze > a.n_live_tup / 10
""")


def analyze_stale(conn: Connection, tables: Sequence[str]) -> list[str]:
    """ANALYZE those of `tables` that have no planner statistics or changed by more than a tenth
    since they were analyzed (autovacuum may not have got to them yet, or is off); return them.
    A table filled a moment ago without statistics is planned as if it held a few pages, and a
    filter on it estimated at the default selectivity: joins against it turn into nested loops."""
    stale = list(conn.execute(_UNANALYZED, {"names": list(tables)}).scalars())
    if stale:
        conn.exec_driver_sql("ANALYZE " + ", ".join(f'"{name}"' for name in stale))
    return stale


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
