"""GeneNetwork's per-user collections at login, over HTTP (docs/collections.md, "The login-time
flow"): the offer, the move and the anonymous import of app.collections.per_user, on a pooled
database connection and one Redis client with short timeouts. Answers name only the caller's own
user: never another account's or user's id."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis
from sqlalchemy import Connection

from app.collections import (
    RegisteredAccount,
    UnknownAppUser,
    connect,
    import_anonymous,
    legacy_offer,
    migrate_for_user,
)
from app.collections.per_user import UNKNOWN_APP_USER
from app.errors import DatabaseError
from app.service import schema
from app.service.guard import error

log = logging.getLogger("app.service")

REDIS_TIMEOUT_S = 2.0


class RedisUnavailable(Exception):
    """The collections' Redis does not answer (503 with Retry-After)."""


class Store:
    """The Redis client of the collections endpoints, connected at first use (the login-time
    migration answers whether or not Redis does) and again after a failed connection."""

    def __init__(self, url: str, timeout: float = REDIS_TIMEOUT_S) -> None:
        self.url, self.timeout = url, timeout
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()

    def client(self) -> redis.Redis:
        with self._lock:
            if self._client is None:
                try:
                    self._client = connect(self.url, timeout=self.timeout)
                except DatabaseError as exc:
                    log.warning("collections: %s", exc)
                    raise RedisUnavailable from None
            return self._client


def _moved(app_user_id: int, result) -> dict:
    return schema.CollectionsMoved(app_user_id=app_user_id, counts=dict(sorted(result.counts.items())),
                                   reported=result.reasons()).model_dump()


def offer(conn: Connection, store: Store, app_user_id: int):
    found = legacy_offer(conn, store.client(), app_user_id)
    if found.reason == UNKNOWN_APP_USER:
        return error(404, "no app user has this id", UNKNOWN_APP_USER)
    return schema.LegacyCollections(app_user_id=app_user_id, can_migrate=found.reason is None, reason=found.reason,
                                    collections=found.collections, names=list(found.names),
                                    members=found.members).model_dump()


def migrate(conn: Connection, store: Store, app_user_id: int):
    with conn.begin():  # the report rows it writes commit with it
        return _moved(app_user_id, migrate_for_user(conn, store.client(), app_user_id))


def import_anon(conn: Connection, store: Store, app_user_id: int, anon_id: str):
    with conn.begin():
        return _moved(app_user_id, import_anonymous(conn, store.client(), app_user_id, anon_id))


def answer(work: Callable[[], object]):
    """The work's JSON, or the error a caller can act on."""
    try:
        return work()
    except UnknownAppUser:
        return error(404, "no app user has this id", UNKNOWN_APP_USER)
    except RegisteredAccount:
        return error(409, "this id is a registered account's, not an anonymous session's", "registered_account")
    except (RedisUnavailable, DatabaseError, redis.RedisError):
        return error(503, "the collections store (Redis) does not answer; try again", **{"Retry-After": "5"})
