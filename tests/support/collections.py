"""Fixtures and helpers of the collections tests: the machine's real Redis, on a database number
of its own (TEST_REDIS_URL, default redis://127.0.0.1:6379/13; never database 0), flushed before
and after every test; a private redis-server the test may kill; and an app database migrated to
head with app users in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
from sqlalchemy import Engine, text

from app.collections import per_user
from app.ops import migrations

DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {url} ({exc}); start one or set TEST_REDIS_URL")
    finally:
        client.close()
    db = client.connection_pool.connection_kwargs.get("db", 0)
    if int(db) == 0:
        pytest.fail("TEST_REDIS_URL must name a database other than 0: the tests flush it")
    return url


@pytest.fixture
def rdb(redis_url: str) -> Iterator[redis.Redis]:
    """A client (bytes replies) on the tests' Redis database, empty at the start and the end."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def private_redis() -> Iterator[tuple[subprocess.Popen, str]]:
    """(the server process, its URL): a redis-server of the test's own on a Unix socket, no port,
    no persistence; killed at the end."""
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on PATH")
    folder = Path(tempfile.mkdtemp(prefix="orgmig-redis-", dir="/tmp"))
    sock = folder / "redis.sock"
    server = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", "",
                               "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    url = f"unix://{sock}"
    try:
        for _ in range(200):
            try:
                if redis.Redis.from_url(url).ping():
                    break
            except redis.RedisError:
                time.sleep(0.025)
        else:
            pytest.fail("the private redis-server did not start")
        yield server, url
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def app_db(engine: Engine, alembic_cfg) -> Engine:
    """A database migrated to head (no legacy rows): the app's users are inserted by the test."""
    migrations.upgrade(alembic_cfg, "head")
    return engine


def add_users(engine: Engine, *emails: str | None) -> list[int]:
    """App users with these emails; their ids, in order."""
    with engine.begin() as conn:
        return [conn.execute(text('INSERT INTO "user" (keycloak_user_id, email) VALUES (gen_random_uuid()::text, :e)'
                                  ' RETURNING id'), {"e": e}).scalar_one() for e in emails]


def add_account(r: redis.Redis, old_id: str, email: str | None, **extra) -> None:
    """An old account in hash `users`, as GeneNetwork stored it."""
    value = {"user_id": old_id, "full_name": extra.pop("full_name", "A Person"), **extra}
    if email is not None:
        value["email_address"] = email
    r.hset("users", old_id, orjson.dumps(value))


def legacy_collection(cid: str, name: str, members: list[str], created: str = "Mar 05 2021 09:14PM",
                      changed: str = "Apr 11 2022 07:02AM") -> dict:
    return {"id": cid, "name": name, "created_timestamp": created, "changed_timestamp": changed,
            "num_members": len(members), "members": members}


def add_collections(r: redis.Redis, old_id: str, collections: list[dict] | bytes) -> bytes:
    raw = collections if isinstance(collections, bytes) else orjson.dumps(collections)
    r.hset("collections", old_id, raw)
    return raw


def two_users_and_an_orphan(engine: Engine, r: redis.Redis) -> list[int]:
    """Two app users (a@x.org, b@x.org) with an old account each (old-a, old-b), and an old account
    with no email (old-none); each account holds one collection c1 (named A, B, N). The users' ids."""
    users = add_users(engine, "a@x.org", "b@x.org")
    for old_id, email, name, member in (("old-a", "a@x.org", "A", "1"), ("old-b", "b@x.org", "B", "2"),
                                        ("old-none", None, "N", "3")):
        add_account(r, old_id, email)
        add_collections(r, old_id, [legacy_collection("c1", name, [member])])
    return users


def new_value(r: redis.Redis, user_id: int) -> list[dict] | None:
    """The user's list in `collections2`, parsed (None when absent)."""
    raw = r.hget("collections2", str(user_id))
    return None if raw is None else orjson.loads(raw)


def reports(engine: Engine) -> list[tuple[str, str, bool, dict]]:
    """(old id, reason, migrated, detail) of the collections step's rows in orgmig_report."""
    with engine.connect() as conn:
        return sorted((d["old_id"], reason, migrated, d) for reason, migrated, d in conn.execute(text(
            "SELECT reason, migrated, detail FROM orgmig_report WHERE step = 'collections'")))


def migrate_one(engine: Engine, r: redis.Redis, user_id: int, **options):
    """`per_user.migrate_for_user` in a transaction of its own, committed."""
    with engine.begin() as conn:
        return per_user.migrate_for_user(conn, r, user_id, **options)


def import_anon(engine: Engine, r: redis.Redis, user_id: int, anon_id: str, **options):
    """`per_user.import_anonymous` in a transaction of its own, committed."""
    with engine.begin() as conn:
        return per_user.import_anonymous(conn, r, user_id, anon_id, **options)
