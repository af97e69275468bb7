"""Redis stopping during `orgmig collections migrate --all`: one line naming the Redis and saying
that a rerun resumes, exit 2, not a traceback. The Redis is a private server the test starts on a
Unix socket and kills (never the machine's shared one)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

from tests.support.collections import add_users, legacy_collection
from tests.support.migrate import ROOT, alembic_env

ACCOUNTS = 50_000


@pytest.fixture
def private_redis() -> Iterator[tuple[subprocess.Popen, str]]:
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
