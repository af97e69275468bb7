"""The Redis side: the connection (errors as one line, the URL without its password), the key
names, the two scripts and streaming reads of the hashes."""

from __future__ import annotations

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


def connect(url: str | None = None) -> redis.Redis:
    """A client for `url` (default REDIS_URL) that has answered a PING. Replies are bytes: the
    SHA-1 of a legacy value must be taken over its exact bytes."""
    raw = url or get_settings().redis_url.get_secret_value()
    shown = redact(raw)
    try:
        client = redis.Redis.from_url(raw.strip(), socket_connect_timeout=10, socket_timeout=120,
                                      health_check_interval=30)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is not a valid Redis URL ({shown}): {explain(exc)}") from None
    try:
        client.ping()
    except redis.RedisError as exc:
        raise DatabaseError(f"cannot connect to Redis at {shown}: {explain(exc)}") from None
    return client


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
