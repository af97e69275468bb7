"""Benchmark: `orgmig collections migrate --all` on 100,000 old GeneNetwork accounts with collections.

1. Seeds, once: app users in a scratch PostgreSQL database migrated to head, and in a Redis
   database of its own (default 14, flushed; never 0) hash `users` and hash `collections` as
   GeneNetwork wrote them: 1-4 collections per account, 0-30 members each, legacy timestamps,
   names with spaces and non-ASCII letters; about 2% of the accounts have no email and 0.4% share
   theirs with another account or another app user (reported, not moved); 5% of the app users
   already hold a collection in `collections2` (merged with); 1,000 anonymous ids.
2. Times `python -m app.cli collections migrate --all` as a child process, start-up included,
   `--runs` times (default 3), each on the same data restored into a flushed Redis database
   (DUMP/RESTORE) with the collections rows of orgmig_report deleted; reports the median run.
3. Checks each run's result: the marker names every matched account, a sample of moved values
   holds ISO 8601 timestamps, the rest of the legacy data is untouched.

4. Per user (`--per-user N`, default 200; 0: none), on the same data restored again: the first
   lookup's build of the email index, then in this process, on a pooled engine, after 50 untimed
   offers for other users, `legacy_offer`
   for N random matchable users and `migrate_for_user` for N others (each in a transaction of its
   own, each checked), and `orgmig collections migrate --user ID` as a child process, start-up
   included, `--cli-runs` times (default 5) for other users; medians and p99 of each.
   `--checkout DIR` runs the child processes from another checkout of orgmig (the code before a
   change); `--runs 0` skips the bulk runs.

Users/s counts old accounts with collections (moved or reported) per second of wall time; the
anonymous ids are walked too but not counted. Target: 5,000 users/s. Exit 0 when met, 1 when
missed, 2 when the bench could not run.

    python bench/collections.py [--accounts 100000] [--runs 3] [--seed 0] [--per-user 200]
                                [--cli-runs 5] [--checkout DIR]
                                [--database-url URL] [--redis-url redis://127.0.0.1:6379/14]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import harness.server as db
import orjson
import redis
from harness import ROOT
from harness.genenetwork import hset_all, seed, seed_stores
from harness.latency import pct
from harness.process import median
from harness.report import exit_code, fail, header, line, say, verdict
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from app.collections import email_index, legacy_offer, migrate_for_user
from app.db import make_engine, redact

DEFAULT_REDIS = "redis://127.0.0.1:6379/14"
TARGET = 5_000
WARM_UP = 50  # offers before the timed ones, for other users


def check(r: redis.Redis, colls: dict, existing: dict, matchable: dict[str, int], ids: list[int]) -> str | None:
    """What is wrong with a run's result, or None."""
    marked = r.hlen("collections_migrated")
    if marked != len(matchable):
        return f"{marked:,} accounts marked as moved, expected {len(matchable):,}"
    if r.hlen("collections") != len(colls):
        return "legacy values were deleted without --purge-legacy"
    for old, idx in list(matchable.items())[::97]:
        if r.hget("collections_migrated", old) != str(ids[idx]).encode():
            return f"{old}: the marker does not name user {ids[idx]}"
        value = orjson.loads(r.hget("collections2", str(ids[idx])))
        moved = orjson.loads(colls[old])
        if [c["id"] for c in value] != [c["id"] for c in orjson.loads(existing.get(idx, b"[]"))] + \
                [c["id"] for c in moved]:
            return f"user {ids[idx]}: the collections are not the existing ones followed by the moved ones"
        if not all(c["created"].endswith(":00Z") and c["changed"].endswith(":00Z") for c in value):
            return f"user {ids[idx]}: a timestamp is not ISO 8601 UTC"
    return None


def ms(seconds: list[float]) -> str:
    """Median and p99 (nearest rank) of `seconds`, in milliseconds."""
    return f"median {pct(seconds, 50) * 1000:.2f} ms, p99 {pct(seconds, 99) * 1000:.2f} ms (n={len(seconds)})"


def per_user(args, r: redis.Redis, url, ids: list[int], matchable: dict[str, int], rng: random.Random,
             command: list[str], cwd: Path) -> list[str] | None:
    """The per-user figures (lines to print), or None after saying what went wrong."""
    warm = WARM_UP if args.per_user else 0
    sample = rng.sample(sorted(matchable.items()), min(len(matchable), warm + 2 * args.per_user + args.cli_runs))
    warm_up, sample = sample[:warm], sample[warm:]
    offers, moves, clis = sample[:args.per_user], sample[args.per_user:2 * args.per_user], \
        sample[2 * args.per_user:]
    engine = make_engine(url)  # pooled, as the HTTP service's
    try:
        started = time.perf_counter()
        addresses = email_index.rebuild(r)
        build = time.perf_counter() - started
        for _, idx in warm_up:  # untimed: the pool's connections, the first reads of the index pages
            with engine.connect() as conn:
                legacy_offer(conn, r, ids[idx])
        timed = {"offer": [], "migrate": []}
        for old, idx in offers:
            started = time.perf_counter()
            with engine.connect() as conn:
                offer = legacy_offer(conn, r, ids[idx])
            timed["offer"].append(time.perf_counter() - started)
            if offer.reason is not None or offer.old_id != old:
                fail(f"the offer for user {ids[idx]} is {offer.to_json()}, expected {old}'s")
                return None
        for old, idx in moves:
            started = time.perf_counter()
            with engine.begin() as conn:
                result = migrate_for_user(conn, r, ids[idx])
            timed["migrate"].append(time.perf_counter() - started)
            if result.counts["moved"] != 1 or r.hget("collections_migrated", old) != str(ids[idx]).encode():
                fail(f"migrate_for_user({ids[idx]}) moved {dict(result.counts)}")
                return None
    finally:
        engine.dispose()
    walls = []
    for old, idx in clis:
        started = time.perf_counter()
        at = command.index("--all")
        proc = subprocess.run([*command[:at], "--user", str(ids[idx]), *command[at + 1:]], cwd=cwd,
                              capture_output=True, text=True)
        walls.append(time.perf_counter() - started)
        if proc.returncode != 0 or r.hget("collections_migrated", old) != str(ids[idx]).encode():
            fail(f"migrate --user {ids[idx]} failed (exit {proc.returncode}): {proc.stderr.strip()[:500]}")
            return None
    lines = [line("index", f"built in {build * 1000:.0f} ms ({addresses:,} addresses; once, by the first lookup)")]
    if offers:
        lines += [line("offer", f"legacy_offer, in process: {ms(timed['offer'])}"),
                  line("migrate", f"migrate_for_user, in process: {ms(timed['migrate'])}")]
    if walls:
        lines.append(line("cli", f"orgmig collections migrate --user ID, child process: {ms(walls)}"
                                 + (f" (code of {cwd})" if cwd != ROOT else "")))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=100_000, help="old accounts with collections (default 100,000)")
    p.add_argument("--runs", type=int, default=3, help="timed runs; the median is reported (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-user", type=int, default=200,
                   help="users whose offer and migration are timed one by one (default 200; 0: none)")
    p.add_argument("--cli-runs", type=int, default=5, help="timed `migrate --user` child processes (default 5)")
    p.add_argument("--checkout", metavar="DIR", type=Path, default=ROOT,
                   help="the orgmig checkout whose `migrate --user` the child processes run (default this one)")
    db.add_server_arguments(p, keep=None)
    p.add_argument("--redis-url", metavar="URL", default=DEFAULT_REDIS,
                   help=f"a Redis database the bench may flush (default {DEFAULT_REDIS}; never 0)")
    args = p.parse_args(argv)
    if args.accounts < 1 or args.runs < 0 or args.per_user < 0 or args.cli_runs < 0 \
            or not (args.runs or args.per_user or args.cli_runs):
        return fail("--accounts must be at least 1, and something timed (--runs, --per-user, --cli-runs)")
    try:
        r = redis.Redis.from_url(args.redis_url)
        if int(r.connection_pool.connection_kwargs.get("db", 0)) == 0:
            return fail("--redis-url must name a database other than 0 (the bench flushes it)")
        redis_version = r.info("server")["redis_version"]
    except (redis.RedisError, ValueError) as exc:
        return fail(str(exc).splitlines()[0])
    server, where = db.open_server(args.database_url)

    name = f"orgmig_bench_collections_{args.accounts}_{os.getpid()}"
    load_before = os.getloadavg()
    say(f"seeding {args.accounts:,} old accounts with collections (Redis {args.redis_url}) and their app users"
        f" ({name})")
    users, colls, existing, emails, matchable = seed(args.accounts, random.Random(args.seed))
    url = server.create(name, replace=True)
    try:
        logging.getLogger("app").setLevel(logging.WARNING)  # the data revisions' summaries: nothing to say here
        db.upgrade_to(url, "head")
        engine = make_engine(url, poolclass=NullPool)
        ids = seed_stores(engine, r, emails, users, colls)
        hset_all(r, "collections2", {str(ids[i]): v for i, v in existing.items()})
        dumps = {k: r.dump(k) for k in ("users", "collections", "collections2")}
        n_colls = sum(len(orjson.loads(v)) for v in colls.values())
        say(f"seeded: {len(users):,} accounts ({len(matchable):,} matchable), {n_colls:,} collections,"
            f" {len(emails):,} app users, {len(existing):,} with collections already, 1,000 anonymous ids")

        command = [*db.ORGMIG, "collections", "migrate", "--all",
                   "--database-url", url.render_as_string(hide_password=False), "--redis-url", args.redis_url]
        shown = f"orgmig collections migrate --all --database-url {redact(url)} --redis-url {args.redis_url}"
        walls, outputs = [], []
        for run in range(1, args.runs + 1):
            restore(r, dumps, engine)
            started = time.perf_counter()
            proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            walls.append(time.perf_counter() - started)
            if proc.returncode != 0:
                return fail(f"run {run} failed (exit {proc.returncode}): {proc.stderr.strip()[:500]}")
            problem = check(r, colls, existing, matchable, ids)
            if problem:
                return fail(f"run {run}: {problem}")
            outputs.append(proc.stdout.strip().splitlines()[-1])
            say(f"run {run}: {walls[-1]:.2f} s = {args.accounts / walls[-1]:,.0f} users/s")
        figures = []
        if args.per_user or args.cli_runs:
            restore(r, dumps, engine)
            say(f"per user: {args.per_user} offers, {args.per_user} migrations, {args.cli_runs} child processes")
            figures = per_user(args, r, url, ids, matchable, random.Random(args.seed + 1), command,
                               args.checkout.resolve())
            if figures is None:
                return 2
        engine.dispose()
    finally:
        r.flushdb()
        server.drop(name)

    flags = "".join(f" --{k.replace('_', '-')} {getattr(args, k)}"
                    for k in ("accounts", "runs", "seed", "per_user", "cli_runs", "redis_url"))
    checkout = f" --checkout {args.checkout}" if args.checkout.resolve() != ROOT else ""
    lines = header("orgmig benchmark: orgmig collections migrate (Redis collections -> collections2)",
                   f"{where}; Redis {redis_version} at {args.redis_url}",
                   f"load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after",
                   f"python bench/collections.py{flags}{checkout}")
    lines += [line("data", f"{args.accounts:,} old accounts with collections, seed {args.seed}"), *figures]
    if walls:
        wall = median(walls, key=float)
        rate = args.accounts / wall
        lines += [line("each run", shown),
                  line("orgmig", outputs[walls.index(wall)]),
                  line("runs", f"{' / '.join(f'{args.accounts / w:,.0f}' for w in walls)} users/s"),
                  line("median", f"{rate:,.0f} users/s, {wall:.2f} s"
                                 f" (target >= {TARGET:,}: {verdict(rate >= TARGET)})")]
    print("\n".join(lines))
    return exit_code(bool(walls) and args.accounts / median(walls, key=float) < TARGET)


def restore(r: redis.Redis, dumps: dict[str, bytes], engine) -> None:
    """The seeded Redis data back (DUMP/RESTORE), and the collections rows of orgmig_report deleted."""
    r.flushdb()
    for key, blob in dumps.items():
        r.restore(key, 0, blob)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM orgmig_report WHERE step = 'collections'"))


if __name__ == "__main__":
    sys.exit(main())
