"""Benchmark: export 100,000 Okta users in 200 groups from a fake Okta that enforces
600 requests per minute on each endpoint bucket (users, groups, everything else).

Prints
- the request count against the minimum the API's page sizes allow (users 200 a page, groups
  10,000, group members 1,000; one listing of DEPROVISIONED users; Everyone's members not listed),
- the wall time of the export against the floor the rate limit sets: with fixed windows of W
  seconds allowing L requests each, a bucket that needs n requests cannot finish before
  (ceil(n / L) - 1) * W seconds when it starts at a window boundary (the bench waits for one).

By default the 600/min limit is enforced as 10 requests per 1-second window (the same rate with no
minute-long bursts), so the limit binds at this size. `--window 60` uses Okta's own one-minute
windows; every bucket then fits in one window, the rate limit sets no floor, and the export is
bound by latency instead (the floor printed is 0 and the ratio is not meaningful).

    python bench/okta_export.py [--users 100000] [--groups 200] [--window 1] [--database-url URL]

The database: `--database-url` or DATABASE_URL names a server where the bench may create (and
afterwards drop) a scratch database; default postgresql://postgres@127.0.0.1:5432/postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import multiprocessing
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.db import make_engine, normalize_url  # noqa: E402
from app.idp.config import OktaSettings  # noqa: E402
from app.idp.export import Exporter  # noqa: E402
from app.ops import migrations  # noqa: E402
from tests.fakes.okta import FakeOkta  # noqa: E402
from tests.fakes.tenant import make_tenant  # noqa: E402

PER_MINUTE = 600


def minimum_requests(fake: FakeOkta) -> dict[str, int]:
    """The fewest requests per bucket the page sizes allow."""
    users = fake.expected_users()
    deprovisioned = sum(1 for u in users if u["status"] == "DEPROVISIONED")
    groups = fake.expected_groups()
    members = sum(max(1, math.ceil(len(fake.expected_group_members(g["id"])) / 1000))
                  for g in groups if g["type"] != "BUILT_IN")
    return {
        "users": max(1, math.ceil((len(users) - deprovisioned) / 200)) + max(1, math.ceil(deprovisioned / 200)),
        "groups": max(1, math.ceil(len(groups) / 10000)),
        "other": members,
    }


def floor_seconds(requests: dict[str, int], per_window: int, window: float) -> float:
    """Earliest finish allowed by fixed windows, starting at a window boundary."""
    return max((math.ceil(n / per_window) - 1) * window if n > per_window else 0.0 for n in requests.values())


def serve_fake(conn, users: int, groups: int, per_window: int, window: float) -> None:
    """The fake Okta, in a process of its own (as a real provider is: its work does not compete
    with the exporter for this interpreter). Answers `stats` and `stop` on `conn`."""
    tenant = make_tenant(users, groups, seed=7)
    with FakeOkta(tenant, rate_limit_per_minute=per_window, window_seconds=window) as fake:
        conn.send({"base_url": fake.base_url, "api_token": fake.api_token, "minimum": minimum_requests(fake)})
        while True:
            command = conn.recv()
            if command == "stats":
                conn.send({"requests": len(fake.requests), "rate_limited": fake.request_count(status=429)})
            elif command == "stop":
                conn.send("stopped")
                return


def scratch_database(server: str) -> tuple[str, str]:
    url = normalize_url(server)
    name = f"orgmig_bench_{uuid.uuid4().hex[:8]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin, url.set(database=name).render_as_string(hide_password=False)


def drop_database(admin: str, url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--window", type=float, default=1.0,
                        help="seconds per rate-limit window (600/min either way; default 1)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL")
                        or "postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    per_window = max(1, round(PER_MINUTE * args.window / 60.0))
    print(f"tenant: {args.users:,} users, {args.groups} groups (the fake Okta starts in its own process)",
          flush=True)
    here, there = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve_fake, args=(there, args.users, args.groups, per_window,
                                                              args.window), daemon=True)
    server.start()
    fake = here.recv()
    minimum = fake["minimum"]
    admin, url = scratch_database(args.database_url)
    try:
        migrations.upgrade(migrations.alembic_config(url))
        engine = make_engine(url, pool_size=args.concurrency + 2)
        settings = OktaSettings(OKTA_BASE_URL=fake["base_url"], OKTA_API_TOKEN=fake["api_token"], _env_file=None)
        exporter = Exporter("okta", settings, engine, concurrency=args.concurrency)
        # Start at a window boundary, so the floor below is exact.
        time.sleep(args.window - (time.time() % args.window) + 0.001)
        started = time.monotonic()
        result = asyncio.run(exporter.run())
        wall = time.monotonic() - started
        here.send("stats")
        stats = here.recv()
        made, rate_limited = stats["requests"], stats["rate_limited"]
        engine.dispose()
    finally:
        here.send("stop")
        here.recv()
        server.join(timeout=10)
        drop_database(admin, url)

    floor = floor_seconds(minimum, per_window, args.window)
    need = sum(minimum.values())
    print()
    print(f"limit: {per_window} requests per {args.window:g}s window per bucket ({PER_MINUTE}/min); "
          f"concurrency {args.concurrency}")
    print(f"exported: {result.counts.users:,} users, {result.counts.groups} groups, "
          f"{result.counts.memberships:,} memberships")
    print(f"requests: {made} made (429s: {rate_limited}), minimum {need} "
          f"(users {minimum['users']}, groups {minimum['groups']}, group members {minimum['other']}); "
          f"ratio {made / need:.3f} (target <= 1.05)")
    if floor > 0:
        print(f"wall time: {wall:.1f}s, floor {floor:.1f}s; ratio {wall / floor:.3f} (target <= 1.15)")
    else:
        print(f"wall time: {wall:.1f}s; the rate limit sets no floor here (every bucket fits in one window)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
