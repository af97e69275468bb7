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

The fake Okta runs as a process of its own (`python -m tests.fakes okta ...`, started in the
checkout); the bench imports nothing from tests/. The database: `--database-url` or DATABASE_URL
names a server where the bench may create (and afterwards drop) a scratch database; default
postgresql://postgres@127.0.0.1:5432/postgres. Exit 1 when a ratio misses its target (requests
<= 1.05x the minimum; wall time <= 1.15x the floor, when the rate limit sets one), 2 when the
bench could not run.
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

import harness.server as db
from harness import ROOT
from harness.report import exit_code, header, line, load1, say, verdict

from app import idp
from app.config import get_settings
from app.db import make_engine
from app.idp.config import OktaSettings

PER_MINUTE = 600
TARGET_REQUESTS, TARGET_WALL = 1.05, 1.15
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="users in the fake tenant (default 100,000)")
    parser.add_argument("--groups", type=int, default=200, help="groups in the fake tenant (default 200)")
    parser.add_argument("--window", type=float, default=1.0,
                        help="seconds per rate-limit window (600/min either way; default 1)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="requests in flight (default ORGMIG_EXPORT_CONCURRENCY or its default)")
    db.add_server_arguments(parser, keep=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    concurrency = args.concurrency or get_settings().export_concurrency
    server, where = db.open_server(args.database_url)

    per_window = max(1, round(PER_MINUTE * args.window / 60.0))
    say(f"tenant: {args.users:,} users, {args.groups} groups (the fake Okta starts in its own process)")
    load_before = load1()
    fake = FakeOkta(args.users, args.groups, per_window, args.window)
    name = f"orgmig_bench_{uuid.uuid4().hex[:8]}"
    try:
        minimum = minimum_requests(fake.ready["sizes"])
        url = server.create(name)
        db.upgrade_to(url, "head")
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
    requests_ok = made / need <= TARGET_REQUESTS
    wall_ok = floor <= 0 or wall / floor <= TARGET_WALL
    command = (f"python bench/okta_export.py --users {args.users} --groups {args.groups} --window {args.window:g}"
               f" --concurrency {concurrency}")
    lines = header("orgmig benchmark: the Okta export against the provider's page sizes and rate limit", where,
                   f"load average before {load_before:.2f}, after {load1():.2f}", command) + [
        line("limit", f"{per_window} requests per {args.window:g}s window per bucket ({PER_MINUTE}/min);"
                      f" concurrency {concurrency}"),
        line("exported", f"{result.counts.users:,} users, {result.counts.groups} groups,"
                         f" {result.counts.memberships:,} memberships"),
        line("requests", f"{made} made (429s: {rate_limited}), minimum {need} (users {minimum['users']},"
                         f" groups {minimum['groups']}, group members {minimum['other']}); ratio {made / need:.3f}"
                         f" (target <= {TARGET_REQUESTS}): {verdict(requests_ok)}"),
        line("wall time", f"{wall:.1f}s, floor {floor:.1f}s; ratio {wall / floor:.3f} (target <= {TARGET_WALL}):"
                          f" {verdict(wall_ok)}" if floor > 0 else
                          f"{wall:.1f}s; the rate limit sets no floor here (every bucket fits in one window)"),
    ]
    print("\n".join(lines))
    return exit_code(not (requests_ok and wall_ok))


if __name__ == "__main__":
    sys.exit(main())
