"""The Redis side: the connection (errors as one line, the URL without its password), the key
names, the two scripts and streaming reads of the hashes."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.commands.core import Script

from app.config import get_settings
from app.errors import ConfigError, DatabaseError

HERE = Path(__file__).parent
# The ids given to moved collections whose id the user's new field already holds:
# uuid5(CLASH_NAMESPACE, f"{old id}/{collection id}"), computed by move.lua.
CLASH_NAMESPACE = uuid.UUID("5b0c2f8e-6a43-4d56-9a0e-4c8f0e1d7a21")


@dataclass(frozen=True)
class Keys:
    """The hashes, by name. `legacy_users` and `legacy` are GeneNetwork's; the others orgmig's."""

    legacy_users: str = "users"
    legacy: str = "collections"
    target: str = "collections2"
    marker: str = "collections_migrated"
    digest: str = "collections_migrated_sha1"
    email_index: str = "collections_email_index"  # normalised email -> old ids (email_index.py)
    email_index_meta: str = "collections_email_index_meta"
    email_index_lock: str = "collections_email_index_lock"  # held by the one rebuilding it


KEYS = Keys()


def redact(url: str) -> str:
    """A Redis URL as a person may see it: the password (in the user info, which ends at the last
    `@` before the query, or as `password=` in the query) replaced by ***."""
    scheme, sep, after = url.strip().partition("://")
    if not sep:
        return "<unparseable URL>"
    at = after.split("?", 1)[0].rfind("@")
    if at >= 0:
        user, colon, _ = after[:at].partition(":")
        after = (f"{user}:***" if colon else "***") + after[at:]
    return f"{scheme}://" + re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", after)


def connect(url: str | None = None, *, timeout: float = 120.0) -> redis.Redis:
    """A client for `url` (default REDIS_URL) that has answered a PING. Replies are bytes: the
    SHA-1 of a legacy value must be taken over its exact bytes. `timeout`: seconds a command may
    wait for its answer (the default suits a bulk run; a login-time caller wants a few)."""
    raw = url or get_settings().redis_url.get_secret_value()
    shown = redact(raw)
    try:
        client = redis.Redis.from_url(raw.strip(), socket_connect_timeout=min(10.0, timeout), socket_timeout=timeout,
                                      health_check_interval=30)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is not a valid Redis URL ({shown}): {explain(exc)}") from None
    try:
        client.ping()
    except redis.RedisError as exc:
        raise DatabaseError(f"cannot connect to Redis at {shown}: {explain(exc)}") from None
    return client


RESUMES = "a rerun resumes where this one stopped (the accounts moved already are skipped)"


def where(client: redis.Redis) -> str:
    """The URL of the Redis `client` talks to, without a password."""
    pool = client.connection_pool
    kw = pool.connection_kwargs
    db = int(kw.get("db") or 0)
    if "path" in kw:
        return f"unix://{kw['path']}" + (f"?db={db}" if db else "")
    scheme = "rediss" if issubclass(pool.connection_class, redis.SSLConnection) else "redis"
    return f"{scheme}://{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{db}"


def failed(client: redis.Redis, doing: str, exc: BaseException | str, then: str = RESUMES) -> DatabaseError:
    """A Redis failure as the one line a person reads: which Redis, what it was doing, and what
    to do."""
    return DatabaseError(f"Redis at {where(client)} stopped answering {doing} ({explain(exc)}): {then}")


@contextlib.contextmanager
def answering(client: redis.Redis, doing: str, then: str = RESUMES) -> Iterator[None]:
    """Redis errors (a connection lost, a timeout, an error reply) inside the block end it as
    `failed(...)`: one line, not a traceback."""
    try:
        yield
    except redis.RedisError as exc:
        raise failed(client, doing, exc, then) from None


def explain(exc: BaseException | str) -> str:
    """A Redis error (or its message) as one line (its first), without any URL it may quote."""
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return re.sub(r"[a-z]+://\S+", lambda m: redact(m.group(0)), line)


class Scripts:
    """move.lua and purge.lua, sent once with SCRIPT LOAD and run with EVALSHA (redis-py loads a
    script again when the server answers NOSCRIPT, and before a pipeline that uses it)."""

    def __init__(self, client: redis.Redis) -> None:
        self.move: Script = client.register_script((HERE / "move.lua").read_text())
        self.purge: Script = client.register_script((HERE / "purge.lua").read_text())


def scan_hash(client: redis.Redis, key: str, count: int = 1_000) -> Iterator[tuple[bytes, bytes]]:
    """Every (field, value) of hash `key`, streamed with HSCAN (a field may come twice when the
    hash grows meanwhile; callers that write are idempotent)."""
    cursor = 0
    while True:
        cursor, page = client.hscan(key, cursor, count=count)
        yield from page.items()
        if cursor == 0:
            return


def text(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")
