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

    python bench/okta_export.py [--users 100000] [--groups 200] [--window 1] [--concurrency N]
                                [--database-url URL]

With the package installed (`pip install -e .`). The fake Okta runs as a process of its own
(`python -m tests.fakes okta ...`, started in the checkout); the bench imports nothing from tests/.
The database: `--database-url` or DATABASE_URL
names a server where the bench may create (and afterwards drop) a scratch database; default
postgresql://postgres@127.0.0.1:5432/postgres.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import subprocess
import sys
import time
import uuid
from pathlib import Path

from app import idp
from app.config import get_settings
from app.db import make_engine, normalize_url
from app.idp.config import OktaSettings
from app.ops import migrations
from app.ops.databases import Server

ROOT = Path(__file__).resolve().parent.parent
PER_MINUTE = 600
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
# The API's largest pages: users, groups, group members.
USERS_PAGE, GROUPS_PAGE, MEMBERS_PAGE = 200, 10_000, 1_000


def minimum_requests(sizes: dict) -> dict[str, int]:
    """The fewest requests per bucket the page sizes allow, from what the fake's listings hold."""
    def pages(n: int, size: int) -> int:
        return max(1, math.ceil(n / size))

    return {
        "users": pages(sizes["users"], USERS_PAGE) + pages(sizes["deprovisioned"], USERS_PAGE),
        "groups": pages(sizes["groups"], GROUPS_PAGE),
        "other": sum(pages(n, MEMBERS_PAGE) for n in sizes["group_members"]),
    }


def floor_seconds(requests: dict[str, int], per_window: int, window: float) -> float:
    """Earliest finish allowed by fixed windows, starting at a window boundary."""
    return max((math.ceil(n / per_window) - 1) * window if n > per_window else 0.0 for n in requests.values())


class FakeOkta:
    """The fake Okta (`python -m tests.fakes okta`) in a process of its own, as a real provider is:
    its work does not compete with the exporter for this interpreter."""

    def __init__(self, users: int, groups: int, per_window: int, window: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes", "okta", "--users", str(users), "--groups", str(groups),
             "--seed", "7", "--option", f"rate_limit_per_minute={per_window}", "--option", f"window_seconds={window}"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise SystemExit(f"the fake Okta did not start (exit code {self.proc.returncode})")
        self.ready = json.loads(line)

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--window", type=float, default=1.0,
                        help="seconds per rate-limit window (600/min either way; default 1)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="requests in flight (default ORGMIG_EXPORT_CONCURRENCY or its default)")
    parser.add_argument("--database-url", default=None,
                        help=f"a server where the bench may create a scratch database (default DATABASE_URL, "
                             f"else {DEFAULT_SERVER})")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    settings = get_settings()
    server_url = args.database_url or (settings.database_url.get_secret_value() if settings.database_url
                                       else DEFAULT_SERVER)
    concurrency = args.concurrency or settings.export_concurrency

    per_window = max(1, round(PER_MINUTE * args.window / 60.0))
    print(f"tenant: {args.users:,} users, {args.groups} groups (the fake Okta starts in its own process)",
          flush=True)
    fake = FakeOkta(args.users, args.groups, per_window, args.window)
    server = Server(normalize_url(server_url))
    name = f"orgmig_bench_{uuid.uuid4().hex[:8]}"
    try:
        minimum = minimum_requests(fake.ready["sizes"])
        url = server.create(name)
        migrations.upgrade(migrations.alembic_config(url))
        engine = make_engine(url, pool_size=concurrency + 2)
        okta = OktaSettings(**fake.ready["settings"], _env_file=None)
        # Start at a window boundary, so the floor below is exact.
        time.sleep(args.window - (time.time() % args.window) + 0.001)
        started = time.monotonic()
        result = idp.export("okta", engine, concurrency=concurrency, settings=okta)
        wall = time.monotonic() - started
        stats = fake.ask("stats")
        made, rate_limited = stats["requests"], stats["statuses"].get("429", 0)
        engine.dispose()
    finally:
        fake.stop()
        server.drop(name)

    floor = floor_seconds(minimum, per_window, args.window)
    need = sum(minimum.values())
    print()
    print(f"limit: {per_window} requests per {args.window:g}s window per bucket ({PER_MINUTE}/min); "
          f"concurrency {concurrency}")
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
