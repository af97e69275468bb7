"""Benchmark: the login-time service (`orgmig serve`) as its callers use it, with the
provider-issued access token checked (JWKS cached): (1) a post-login hook asking for users already
migrated, the call made at every login until the user's app id is stored on the provider's side;
(2) the application asking GeneNetwork's collections offer (`GET .../collections/legacy`) for
users whose old account holds collections, at `--accounts` old accounts.

    python bench/serve.py [--users 20000] [--accounts 100000] [--requests 4000] [--clients 4]
                          [--database-url URL] [--redis-url redis://127.0.0.1:6379/14]

It creates `orgmig_bench_serve`, migrates `--users` seeded legacy users (`alembic upgrade head`),
starts the fake Auth0 of tests/fakes (its /oauth/token issues RS256 tokens for the service's API
and publishes the key at /.well-known/jwks.json, as Auth0 does), starts `orgmig serve` as a child
process with ORGMIG_SERVE_JWT_* pointing at it, takes one token by client credentials, then sends
`--requests` `POST /v1/users/migrate` calls for random migrated keycloak_user_ids from `--clients`
threads (one keep-alive client each) after a warm-up. For (2) it seeds the Redis database (flushed
first; never 0) with bench/collections.py's old accounts and their app users, and asks the offer
of random users whose old account can move. The floors, measured in the same run: the same answer
read the plainest way, without HTTP, on one open connection per client: for (1) the login path's
first statement (run.sql's login_start, which finds the link of a migrated user); for (2) the
user's email from the database and the old account's values from Redis by its known id (one
round trip each). It prints requests/s and p50/p99/max for
each, the ratios of the p99s, and the verdicts against the target (p99 under 20 ms at 4 callers).
The database and the Redis data are dropped at the end. Exit 1 when a target is missed, 2 when it
could not run.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import harness.server as db
import httpx
import psycopg
import redis
from harness import ROOT
from harness.genenetwork import seed, seed_stores
from harness.latency import pct
from harness.report import exit_code, fail, header, line, load1, say, verdict
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.ops.databases import libpq
from app.ops.seed import seed_legacy
from app.steps.user_settings.login import SQL, start_params
from tests.fakes.auth0 import FakeAuth0
from tests.fakes.tenant import make_tenant
from tests.service.serving import free_port

API = "https://orgmig.example/login-migration"
TARGET_P99_MS = 20.0


class Latencies:
    def __init__(self) -> None:
        self.seen: list[float] = []
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self.seen.append(seconds)

    def ms(self, q: float) -> float:
        """The q-quantile (0 < q <= 1) by nearest rank, in milliseconds."""
        return pct(self.seen, q * 100) * 1000


def in_threads(clients: int, per_client: int,
               call_factory: Callable[[int], Callable[[], None]]) -> tuple[Latencies, float]:
    """`clients` threads each making `per_client` calls (each thread's call from the factory)."""
    seen = Latencies()

    def run(i: int) -> None:
        call = call_factory(i)
        for _ in range(per_client):
            started = time.perf_counter()
            call()
            seen.add(time.perf_counter() - started)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return seen, time.perf_counter() - t0


def start_service(url, fake: FakeAuth0, client_id: str, redis_url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(db.child_env(url), ORGMIG_SERVE_JWT_ISSUER=f"{fake.base_url}/", ORGMIG_SERVE_JWT_AUDIENCE=API,
               ORGMIG_SERVE_JWT_CLIENT_IDS=client_id, ORGMIG_SERVE_RATE_PER_MINUTE="1000000", REDIS_URL=redis_url)
    # its log (one access line per request) to a file: a pipe nobody reads would fill and stall it
    log = tempfile.TemporaryFile(mode="w+")
    child = subprocess.Popen([*db.ORGMIG, "serve", "--port", str(port)], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=log, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return child, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or child.poll() is not None:
            child.kill()
            log.seek(0)
            raise RuntimeError(f"the endpoint did not start: {log.read()[-2000:]}")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=4_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--accounts", type=int, default=100_000)
    db.add_server_arguments(parser, keep=None)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    r = redis.Redis.from_url(args.redis_url)
    if int(r.connection_pool.connection_kwargs.get("db") or 0) == 0:
        return fail("--redis-url must name a database other than 0 (it is flushed)")
    server, described = db.open_server(args.database_url)
    url = server.create("orgmig_bench_serve", replace=True)
    engine = make_engine(url, poolclass=NullPool)
    fake = FakeAuth0(make_tenant(users=1, groups=1, seed=1))
    fake.start()
    child = None
    per_client = args.requests // args.clients
    try:
        db.upgrade_to(url, "0003")
        seed_legacy(engine, args.users, seed=1)
        db.upgrade_to(url, "head")
        with engine.connect() as conn:
            ids = list(conn.execute(text('SELECT keycloak_user_id FROM "user"')).scalars())
        say(f"seeding {args.accounts:,} old accounts in {args.redis_url} and their app users")
        users, colls, _, emails, matchable = seed(args.accounts, random.Random(0))
        app_ids = seed_stores(engine, r, emails, users, colls)
        movable = [(app_ids[i], old) for old, i in matchable.items()]
        fake.apis.add_api(API)
        client_id, secret = fake.apis.add_client()
        token = httpx.post(fake.token_url, data={"grant_type": "client_credentials", "client_id": client_id,
                                                 "client_secret": secret, "audience": API}).json()["access_token"]
        child, base = start_service(url, fake, client_id, args.redis_url)

        def http_call(i: int) -> Callable[[], None]:
            rng = random.Random(i)
            http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)

            def call() -> None:
                reply = http.post("/v1/users/migrate", json={"keycloak_user_id": rng.choice(ids)})
                if reply.status_code != 200:
                    raise RuntimeError(f"status {reply.status_code}: {reply.text[:200]}")
            return call

        def floor_call(i: int) -> Callable[[], None]:
            rng = random.Random(i)
            conn = psycopg.connect(libpq(url), autocommit=True)
            statement = str(SQL("run.login_start").compile(dialect=postgresql.psycopg.dialect()))

            def call() -> None:
                if conn.execute(statement, start_params(rng.choice(ids))).fetchone()[0] is None:
                    raise RuntimeError("a migrated user was not found")
            return call

        def offer_call(i: int) -> Callable[[], None]:
            rng = random.Random(100 + i)
            http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)

            def call() -> None:
                reply = http.get(f"/v1/users/{rng.choice(movable)[0]}/collections/legacy")
                if reply.status_code != 200 or not reply.json()["can_migrate"]:
                    raise RuntimeError(f"status {reply.status_code}: {reply.text[:200]}")
            return call

        def offer_floor(i: int) -> Callable[[], None]:
            rng = random.Random(100 + i)
            conn = psycopg.connect(libpq(url), autocommit=True)
            client = redis.Redis.from_url(args.redis_url)

            def call() -> None:
                user_id, old = rng.choice(movable)
                conn.execute('SELECT email FROM "user" WHERE id = %s', (user_id,)).fetchone()
                pipe = client.pipeline(transaction=False)
                pipe.hget("users", old)
                pipe.hget("collections", old)
                if None in pipe.execute():
                    raise RuntimeError("an old account was not found")
            return call

        in_threads(args.clients, 100, http_call)  # warm-up: connections, JWKS, plans
        served, served_s = in_threads(args.clients, per_client, http_call)
        floor, floor_s = in_threads(args.clients, per_client, floor_call)
        in_threads(1, 1, offer_call)  # the email index, built once (bench/collections.py times it)
        in_threads(args.clients, 100, offer_call)
        offers, offers_s = in_threads(args.clients, per_client, offer_call)
        offers_floor, offers_floor_s = in_threads(args.clients, per_client, offer_floor)
    except db.ERRORS as exc:
        return fail(str(exc))
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            child.wait(10)
        fake.stop()
        engine.dispose()
        server.drop("orgmig_bench_serve")
        r.flushdb()
    command = (f"python bench/serve.py --users {args.users} --accounts {args.accounts} --requests {args.requests}"
               f" --clients {args.clients} --redis-url {args.redis_url}")
    out = header("orgmig benchmark: the login-time service, provider token checked", described,
                 f"load average {load1():.2f}", command)
    missed = []
    for title, pairs in (("users already migrated (POST /v1/users/migrate)",
                          (("orgmig serve (HTTP, JWT)", served, served_s),
                           ("floor: the statement alone", floor, floor_s))),
                         (f"the collections offer at {args.accounts:,} old accounts (GET .../collections/legacy)",
                          (("orgmig serve (HTTP, JWT)", offers, offers_s),
                           ("floor: one read of each store", offers_floor, offers_floor_s)))):
        out.append(f"  {title}")
        for name, seen, seconds in pairs:
            out.append(f"    {name:<30} {len(seen.seen) / seconds:>8,.0f} requests/s  p50 {seen.ms(0.5):6.2f} ms"
                       f"  p99 {seen.ms(0.99):6.2f} ms  max {seen.ms(1.0):7.2f} ms")
        (_, a, _), (_, b, _) = pairs
        ok = a.ms(0.99) < TARGET_P99_MS
        missed += [] if ok else [title]
        out.append(f"    ratio: p99 {a.ms(0.99) / b.ms(0.99):.1f}x the floor's, p50 {a.ms(0.5) / b.ms(0.5):.1f}x;"
                   f" target p99 under {TARGET_P99_MS:.0f} ms at {args.clients} callers: {verdict(ok)}")
    out += [line("MISSED", m) for m in missed]
    print("\n".join(out))
    return exit_code(missed)

if __name__ == "__main__":
    sys.exit(main())
