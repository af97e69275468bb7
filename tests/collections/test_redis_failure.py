"""Redis stopping during `orgmig collections migrate --all`, or under a login-time lookup: one
line naming the Redis (and, for the run, that a rerun resumes), exit 2, not a traceback. The
Redis is a private server the test starts on a Unix socket and kills or pauses (never the
machine's shared one)."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson
import pytest
import redis

from app import collections
from app.errors import DatabaseError
from tests.support.collections import add_users, legacy_collection
from tests.support.migrate import ROOT, alembic_env

ACCOUNTS = 50_000


def test_redis_dying_while_the_run_reads_ends_in_one_line(private_redis, app_db):
    server, url = private_redis
    r = redis.Redis.from_url(url)
    add_users(app_db, "someone@x.org")
    pipe = r.pipeline(transaction=False)
    for i in range(ACCOUNTS):
        pipe.hset("users", f"old-{i}", orjson.dumps({"user_id": f"old-{i}", "email_address": f"u{i}@x.org"}))
        pipe.hset("collections", f"old-{i}", orjson.dumps([legacy_collection("c1", "A", ["BXD:1"])]))
    pipe.execute()
    r.config_resetstat()

    run = subprocess.Popen([sys.executable, "-m", "app.cli", "collections", "migrate", "--all", "--redis-url", url],
                           cwd=ROOT, env=alembic_env(app_db.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        # Killed as soon as the run has begun reading the old accounts (HSCAN of `users`).
        while "cmdstat_hscan" not in r.info("commandstats"):
            assert run.poll() is None, run.stderr.read()
            time.sleep(0.002)
        moves_started = "cmdstat_evalsha" in r.info("commandstats")
        server.kill()
        server.wait()
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert not moves_started
    assert run.returncode == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"orgmig: Redis at {url} stopped answering while reading the old accounts"), err
    assert err.rstrip().endswith("a rerun resumes where this one stopped (the accounts moved already are skipped)"), err
    assert out == ""


def test_a_login_time_lookup_gives_up_after_its_timeout_in_one_line(private_redis, app_db):
    _, url = private_redis
    (uid,) = add_users(app_db, "a@x.org")
    client = collections.connect(url, timeout=0.5)
    redis.Redis.from_url(url).client_pause(3_000)  # the server stops answering for 3 s
    started = time.monotonic()
    with app_db.connect() as conn, pytest.raises(DatabaseError) as err:
        collections.legacy_offer(conn, client, uid)
    assert time.monotonic() - started < 2.5
    assert str(err.value).startswith(f"Redis at {url} stopped answering while looking up the old account (")
    assert len(str(err.value).splitlines()) == 1 and err.value.exit_code == 2
