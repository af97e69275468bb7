"""Benchmark: the user_settings data revision (0004) against the per-row loop it replaces and
against the floor, the same rows written the plainest way.

    python bench/migrate_users.py --users 1000000 [--runs 3] [--batch-size 500] [--baseline-users N]
                                  [--rss-small 10000] [--parts upgrade,floor,baseline,rss]
                                  [--shape seed|clean|nulls|duplicates|sparse|wide]
                                  [--revision head|0004] [--profile] [--waits [MS]]
                                  [--seed 0] [--database-url URL] [--keep]

In one run against one PostgreSQL server:

1. creates `orgmig_bench_<users>`, runs `alembic upgrade 0003`, seeds `--users` legacy rows with
   app.ops.seed (awkward rows included), then VACUUM ANALYZE, as a long-lived table would be;
2. times `python -m alembic -x batch_size=B upgrade head` in a child process (DATABASE_URL set),
   wall time and the child's own peak RSS (os.wait4 reports that process's resource use only),
   `--runs` times (default 3), each on a fresh file copy of the seeded database
   (`CREATE DATABASE ... TEMPLATE`) after a CHECKPOINT, and reports the median run (of an even
   number of runs, the slower middle one);
3. the floor (bench/floor.py), on another fresh copy made as the runs' are: the contract's rows
   written by one INSERT ... SELECT chain per half of the key range in two database sessions at
   once, no bookkeeping; the ratio of the upgrade's rate to it (target >= 1.0);
4. copies the first `--baseline-users` legacy rows (default min(users, 50,000)) byte for byte into
   `orgmig_bench_<users>_baseline` (at 0003) and times the per-row loop the seed guide's migration
   057 ran: per legacy row select the role, insert the org, the user, the membership and the
   settings, one round trip each, committing every 500 rows;
5. repeats step 1-2 with `--rss-small` users in `orgmig_bench_<rss-small>_rss` for the memory
   comparison.

`--revision 0004` times `alembic upgrade 0004` instead of `head` (the data revision without the
schema revisions after it, whose DDL includes an index built on "user"). `--shape` picks the
legacy rows: `seed` (the default, app.ops.seed as above) or one of bench/data_shapes.py's
shapes (clean, nulls, duplicates, sparse, wide), loaded the same way and then vacuumed and
analyzed; the rss part always seeds.

`--profile` adds, on one more copy, `alembic upgrade 0004` run in this process with every
statement of every engine timed and summed by name (bench/harness/profile.py): the step's batch
statement, the ledger's, the pacer's, ANALYZE; the workers' threads add up to more than the wall.

`--waits` (every 10 ms, or every MS) samples pg_stat_activity during each timed upgrade and the
floor, from a connection to the server's `postgres` database (bench/harness/sessions.py), and
prints per run where the workers' sessions spent their time (on CPU, each wait event, idle in
a transaction or between transactions: the client's turn), which statements they were running,
how many ran on a CPU at once against the host's runnable threads, and the CPU seconds of the
alembic process (or the floor's client threads), the backends, the WAL writer, checkpointer and
background writer, the sampler and the host. The sampling costs CPU of its own (shown): compare
runs sampled alike.

`--parts` picks which of upgrade (2), floor (3), baseline (4) and rss (5) run (default all); a
ratio or target needs both its sides. The upgrade runs with the environment's settings: the
engine steers itself by default (alone on its database it has no limit), `ORGMIG_STEER=off`
turns that off.

It prints users/s for the upgrade (the median run, and every run), the floor and the baseline,
the upgrade's ratio to each, the peak RSS at both sizes (the highest of the runs) and their ratio, and the batch size,
each against its target (>= 15,000 users/s at 1,000,000; >= 5x the baseline; RSS ratio <= 1.2).
Users/s counts legacy rows processed (migrated or reported) per second of wall time, child
start-up included. The exit code is 1 when a target is missed, 2 when the bench could not run.
The databases are dropped at the end unless --keep.

The server: `--database-url` or DATABASE_URL names a server where the bench may create databases;
default postgresql://postgres@127.0.0.1:5432/postgres.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import harness.server as db
import psycopg
from data_shapes import SHAPES, load_sql
from floor import CHAIN, time_floor
from harness.process import median, timed
from harness.profile import StatementClock, Timing, print_profile
from harness.report import exit_code, fail, header, line, say, verdict
from harness.sessions import Sessions, sampled
from sqlalchemy import Text, bindparam, cast, event, exists, func, insert, literal, select, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.ops.databases import libpq
from app.schema import SETTINGS_COLUMNS, org, org_user, role, settings, user, user_settings

TARGET_RATE = 15_000
TARGET_SPEEDUP = 5.0
TARGET_RSS_RATIO = 1.2
TARGET_FLOOR_RATIO = 1.0
PARTS = ("upgrade", "floor", "baseline", "rss")
BASELINE_COMMIT_EVERY = 500


# --- the upgrade, in a child process ----------------------------------------------------------


@dataclass
class UpgradeRun:
    users: int
    seconds: float
    peak_rss_kib: int
    migrated: int
    reported: int
    log_tail: list[str]
    steering: str  # the steering's decisions, in order (the actions; none when not steered)
    waits: Sessions | None = None  # where the sessions' time went (--waits)

    @property
    def rate(self) -> float:
        return self.users / self.seconds


# The step's batch statement (app/steps/user_settings/upgrade.sql): its sessions are the workers.
BATCH_MARKER = "WITH rng AS MATERIALIZED"
# The floor's chain (bench/floor.py).
FLOOR_MARKER = "WITH src AS MATERIALIZED"


def time_upgrade(url: URL, users: int, batch_size: int, log_dir: Path, revision: str = "head",
                 waits_ms: float | None = None) -> UpgradeRun:
    sampler = sampled(url, url.database, BATCH_MARKER, waits_ms, statement_names())
    try:
        run = timed([*db.ALEMBIC, "-x", f"batch_size={batch_size}", "upgrade", revision], db.child_env(url),
                    log_dir / f"upgrade_{users}.log", tail=12, what=f"alembic upgrade {revision}",
                    watch=None if sampler is None else sampler.start)
    finally:
        waits = sampler.stop() if sampler is not None and sampler.is_alive() else None
    if waits is not None:
        waits.client_cpu, waits.client = run.cpu_seconds, "alembic process"
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            migrated = conn.execute(text("SELECT count(*) FROM orgmig_user_settings_link")).scalar()
            reported = conn.execute(
                text("SELECT count(DISTINCT source_id) FROM orgmig_report"
                     " WHERE source_table = 'user_settings' AND NOT migrated")
            ).scalar()
            steering = conn.execute(text(
                "SELECT coalesce((SELECT string_agg(action, ', ' ORDER BY id) FROM orgmig_steer_decision), 'none')"
                " || ' (' || string_agg(DISTINCT state, ', ') || ')' FROM orgmig_steer")).scalar()
    finally:
        engine.dispose()
    return UpgradeRun(users, run.seconds, run.peak_rss_kib, migrated, reported, run.tail, steering or "none", waits)


@dataclass
class Shaped:
    """A data shape loaded (bench/data_shapes.py), as the report reads a seed."""
    users: int
    seconds: float
    migratable: int

    @property
    def rate(self) -> float:
        return self.users / self.seconds

    @property
    def unmigratable(self) -> int:
        return self.users - self.migratable


def load_shape(url: URL, users: int, shape: str) -> Shaped:
    """A database at 0003 holding `users` legacy rows of `shape`, vacuumed and analyzed."""
    db.upgrade_to(url, "0003")
    started = time.perf_counter()
    db.execute(url, load_sql(shape), "SELECT setval(pg_get_serial_sequence('user_settings', 'id'),"
               " (SELECT max(id) FROM user_settings))", params={"users": users})
    seconds = time.perf_counter() - started
    (rows, _) = db.execute(url, "SELECT count(*) FROM user_settings us WHERE us.keycloak_user_id ~ '[^[:space:]]'"
                           " AND NOT EXISTS (SELECT 1 FROM user_settings w"
                           " WHERE w.keycloak_user_id = us.keycloak_user_id AND w.id > us.id)",
                           "VACUUM (ANALYZE) user_settings")
    db.execute(url, "CHECKPOINT")
    return Shaped(users, seconds, rows[0][0])


# --- the profile: every statement of the upgrade timed in this process --------------------------


def statement_names() -> dict[str, str]:
    """The engine's and the step's SQL text -> its name (ledger.claim, upgrade, ...)."""
    from app.batch.ledger import SQL as LEDGER
    from app.steps.user_settings import SQL as STEP
    names = {}
    for files in (LEDGER, STEP):
        for name in files.names():
            try:
                names[re.sub(r"\s+", " ", files.source(name))] = name
            except KeyError:
                continue
    return names


def profile(url: URL, batch_size: int) -> tuple[dict[str, dict[str, Timing]], dict[str, float]]:
    """`alembic upgrade 0004` in this process with the environment's settings, every statement of
    every engine timed (the workers' threads summed: with several workers the statements add up
    to more than the wall time); the start-up of a child process is not in it."""
    clock = StatementClock(Engine, statement_names(), explain=False)
    phase = f"alembic upgrade 0004 in process (batch size {batch_size})"
    try:
        clock.phase = phase
        started = time.perf_counter()
        db.upgrade_to(url, "0004", batch_size=str(batch_size))
        wall = time.perf_counter() - started
    finally:
        clock.phase = ""
        event.remove(Engine, "before_cursor_execute", clock._before)
        event.remove(Engine, "after_cursor_execute", clock._after)
    return clock.phases, {phase: wall}


# --- the per-row baseline ---------------------------------------------------------------------


def copy_legacy_rows(source: URL, target: URL, limit: int) -> None:
    """The first `limit` legacy rows, byte for byte (binary COPY), and the identity moved past them."""
    with psycopg.connect(libpq(source)) as src, psycopg.connect(libpq(target)) as dst:
        with src.cursor().copy(
            f"COPY (SELECT * FROM user_settings ORDER BY id LIMIT {int(limit)}) TO STDOUT (FORMAT binary)"
        ) as out, dst.cursor().copy("COPY user_settings FROM STDIN (FORMAT binary)") as into:
            for chunk in out:
                into.write(chunk)
        dst.execute("SELECT setval(pg_get_serial_sequence('user_settings', 'id'), (SELECT max(id) FROM user_settings))")
        dst.commit()
    with psycopg.connect(libpq(target), autocommit=True) as dst:
        dst.execute("VACUUM (ANALYZE) user_settings")


def per_row_baseline(url: URL) -> tuple[int, int, float]:
    """The usual ORM-style loop: one round trip per statement, a commit every 500 legacy rows.

    Rows the contract does not migrate (NULL/blank ids, losing duplicates) are left out by the read
    query, so the loop never hits a unique violation. Returns (rows read, users migrated, seconds).
    """
    us = user_settings
    later = us.alias("later")
    winner = ~exists().where(later.c.keycloak_user_id == us.c.keycloak_user_id, later.c.id > us.c.id)
    columns = [cast(c, Text).label(c.name) if c.name == "mcp_config" else c for c in us.columns]
    read = (
        select(*columns)
        .where(us.c.id > bindparam("after"), us.c.keycloak_user_id.op("~")(r"[^[:space:]]"), winner)
        .order_by(us.c.id)
        .limit(BASELINE_COMMIT_EVERY)
    )
    engine = make_engine(url, poolclass=NullPool)
    migrated = 0
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            for name, rank in (("admin", 1), ("user", 1000)):
                if conn.execute(select(role.c.id).where(role.c.name == name)).scalar() is None:
                    conn.execute(insert(role).values(name=name, rank=rank))
            conn.commit()
            total = conn.execute(select(func.count()).select_from(us)).scalar()
            after = 0
            while True:
                batch = conn.execute(read, {"after": after}).mappings().all()
                if not batch:
                    break
                for row in batch:
                    tos = row["accepted_tos"].replace(tzinfo=UTC) if row["accepted_tos"] else None
                    role_id = conn.execute(select(role.c.id).where(role.c.name == "admin")).scalar()
                    org_id = conn.execute(
                        insert(org).values(name=f"user_{row['id']}_org").returning(org.c.id)
                    ).scalar()
                    user_id = conn.execute(
                        insert(user).values(
                            keycloak_user_id=row["keycloak_user_id"], legacy_user_settings_id=row["id"],
                            current_org_id=org_id, email=row["email"], email_verified=row["email_verified"],
                            accepted_tos=tos, enable_sound_notifications=row["enable_sound_notifications"],
                        ).returning(user.c.id)
                    ).scalar()
                    conn.execute(insert(org_user).values(org_id=org_id, user_id=user_id, role_id=role_id,
                                                         status="active"))
                    values = {c: row[c] for c in SETTINGS_COLUMNS}
                    values["accepted_tos"] = tos
                    if values["mcp_config"] is not None:
                        values["mcp_config"] = cast(literal(values["mcp_config"], Text), settings.c.mcp_config.type)
                    conn.execute(insert(settings).values(org_id=org_id, **values))
                    migrated += 1
                conn.commit()
                after = batch[-1]["id"]
    finally:
        engine.dispose()
    return total, migrated, time.perf_counter() - started


# --- report -----------------------------------------------------------------------------------


def mib(kib: int) -> str:
    return f"{kib / 1024:,.1f} MiB"


def parts(value: str) -> tuple[str, ...]:
    chosen = tuple(p.strip() for p in value.split(",") if p.strip())
    unknown = [p for p in chosen if p not in PARTS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"parts are some of {','.join(PARTS)}, got {value!r}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=1_000_000, help="legacy users to migrate (default 1,000,000)")
    p.add_argument("--runs", type=int, default=3,
                   help="timed upgrades of the large database, each on a fresh copy;"
                        " the median is reported (default 3)")
    p.add_argument("--batch-size", type=int, default=500, help="upgrade batch size (default 500)")
    p.add_argument("--baseline-users", type=int, help="rows for the per-row baseline (default min(users, 50,000))")
    p.add_argument("--rss-small", type=int, default=10_000, help="users for the memory comparison run (default 10,000)")
    p.add_argument("--parts", type=parts, default=PARTS,
                   help=f"which parts run, comma-separated (default {','.join(PARTS)})")
    p.add_argument("--revision", default="head", choices=("head", "0004"),
                   help="what the timed upgrade runs to: head (default) or 0004, the data revision alone"
                        " (without the schema revisions after it)")
    p.add_argument("--shape", default="seed", choices=("seed", *SHAPES),
                   help="the legacy rows: seed (app.ops.seed, default) or a shape of bench/data_shapes.py")
    p.add_argument("--profile", action="store_true",
                   help="on one more copy, run the upgrade to 0004 in this process with every statement timed")
    p.add_argument("--waits", type=float, nargs="?", const=10.0, metavar="MS",
                   help="sample pg_stat_activity every MS ms (default 10) during each timed upgrade and the floor,"
                        " and print where their sessions' time and the CPUs went")
    p.add_argument("--seed", type=int, default=0, help="seed for the synthetic rows (default 0)")
    db.add_server_arguments(p)
    args = p.parse_args(argv)
    baseline_users = args.baseline_users if args.baseline_users is not None else min(args.users, 50_000)
    for name, value in (("--users", args.users), ("--runs", args.runs), ("--batch-size", args.batch_size),
                        ("--baseline-users", baseline_users), ("--rss-small", args.rss_small)):
        if value < 1:
            return fail(f"{name} must be at least 1")
    if baseline_users > args.users:
        return fail("--baseline-users cannot exceed --users")

    server, where = db.open_server(args.database_url)

    main_db = f"orgmig_bench_{args.users}" + ("" if args.shape == "seed" else f"_{args.shape}")
    baseline_db = f"orgmig_bench_{args.users}_baseline"
    small_db = f"orgmig_bench_{args.rss_small}_rss"
    load_before = os.getloadavg()
    runs, big, floor, base, small = [], None, None, None, None
    phases, walls = {}, {}
    try:
        with db.Databases(server, args.keep) as dbs, tempfile.TemporaryDirectory(prefix="orgmig-bench-") as tmp:
            say(f"seeding {args.users:,} legacy users into {main_db}"
                + ("" if args.shape == "seed" else f" (shape {args.shape})"))
            url = dbs.create(main_db)
            seeded = (db.prepare(url, args.users, args.seed) if args.shape == "seed"
                      else load_shape(url, args.users, args.shape))
            say(f"seeded in {seeded.seconds:.1f} s")
            if "upgrade" in args.parts:
                say(f"timing alembic upgrade {args.revision} (batch size {args.batch_size},"
                    f" {args.runs} run{'s' if args.runs > 1 else ''})")
                for i in range(1, args.runs + 1):
                    run_url = dbs.copy(f"{main_db}_run{i}", template=main_db)
                    runs.append(time_upgrade(run_url, args.users, args.batch_size, Path(tmp), args.revision,
                                             args.waits))
                    say(f"upgrade run {i}: {runs[-1].rate:,.0f} users/s, peak RSS {mib(runs[-1].peak_rss_kib)}")
                    dbs.drop(f"{main_db}_run{i}")
                big = median(runs)
            if args.profile:
                say("profile: alembic upgrade 0004 in this process, every statement timed")
                prof_url = dbs.copy(f"{main_db}_profile", template=main_db)
                phases, walls = profile(prof_url, args.batch_size)
                dbs.drop(f"{main_db}_profile")
            if "floor" in args.parts:
                floor_url = dbs.copy(f"{main_db}_floor", template=main_db)
                say("floor: one INSERT ... SELECT chain per half of the key range, two sessions")
                floor = time_floor(floor_url, sampled(floor_url, floor_url.database, FLOOR_MARKER, args.waits,
                                                                 {CHAIN: "floor chain"}))
                say(f"floor: {floor.rate:,.0f} users/s")
                dbs.drop(f"{main_db}_floor")
            if "baseline" in args.parts:
                say(f"baseline: copying {baseline_users:,} legacy rows into {baseline_db}")
                burl = dbs.create(baseline_db)
                db.upgrade_to(burl, "0003")
                copy_legacy_rows(url, burl, baseline_users)
                say("baseline: per-row loop running")
                base = per_row_baseline(burl)
                say(f"baseline: {base[0] / base[2]:,.0f} users/s")
            if "rss" in args.parts:
                say(f"memory comparison: seeding {args.rss_small:,} users into {small_db}")
                surl = dbs.create(small_db)
                small_seeded = db.prepare(surl, args.rss_small, args.seed)
                small = time_upgrade(surl, args.rss_small, args.batch_size, Path(tmp))
                say(f"small upgrade: {small.rate:,.0f} users/s, peak RSS {mib(small.peak_rss_kib)}")
    except db.ERRORS as exc:
        return fail(str(exc))

    command = (f"python bench/migrate_users.py --users {args.users} --runs {args.runs} --batch-size {args.batch_size}"
               f" --baseline-users {baseline_users} --rss-small {args.rss_small} --parts {','.join(args.parts)}"
               f"{'' if args.shape == 'seed' else f' --shape {args.shape}'}"
               f"{'' if args.revision == 'head' else f' --revision {args.revision}'}"
               f"{'' if args.waits is None else f' --waits {args.waits:g}'} --seed {args.seed}")
    steer = os.environ.get("ORGMIG_STEER")
    lines = header("orgmig benchmark: revision 0004 (user_settings -> org schema)", where,
                   f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}",
                   command if steer is None else f"ORGMIG_STEER={steer} {command}") + [
        line("batch size", str(args.batch_size)),
        (f"  seed         {args.users:,} legacy rows in {seeded.seconds:.1f} s ({seeded.rate:,.0f} rows/s);"
         f" {seeded.migratable:,} migratable, {seeded.unmigratable:,} to report"),
    ]
    missed = []
    if big is not None:
        big_rss = max(r.peak_rss_kib for r in runs)
        rate_ok = big.rate >= TARGET_RATE
        missed += [] if rate_ok else ["rate"]
        lines += [
            (f"  upgrade      {big.users:,} users in {big.seconds:.1f} s = {big.rate:,.0f} users/s, the median of"
             f" {len(runs)} run{'s' if len(runs) > 1 else ''} (migrated {big.migrated:,}, reported {big.reported:,})"),
            ("  runs         " + ", ".join(f"{r.rate:,.0f}" for r in runs) + " users/s"
             f" ({', '.join(f'{r.seconds:.1f}' for r in runs)} s); peak RSS {mib(big_rss)} (highest)"),
            line("steering", "; ".join(f"run {i}: {r.steering}" for i, r in enumerate(runs, 1))),
            (f"  rate         {big.rate:,.0f} users/s at {big.users:,} (target >= {TARGET_RATE:,}"
             f"{' at 1,000,000' if big.users != 1_000_000 else ''}): {verdict(rate_ok)}"),
        ]
    if floor is not None:
        lines.append(f"  floor        {floor.rows:,} users in {floor.seconds:.1f} s = {floor.rate:,.0f} users/s"
                     f" (migrated {floor.migrated:,}; two sessions, one INSERT ... SELECT chain per half)")
        if big is not None:
            ratio = big.rate / floor.rate
            missed += [] if ratio >= TARGET_FLOOR_RATIO else ["floor"]
            lines.append(f"  run/floor    {ratio:.2f}x the floor (the upgrade's child start-up included;"
                         f" target >= {TARGET_FLOOR_RATIO:g}x): {verdict(ratio >= TARGET_FLOOR_RATIO)}")
    if base is not None:
        base_rows, base_migrated, base_seconds = base
        base_rate = base_rows / base_seconds
        lines.append(f"  baseline     {base_rows:,} users in {base_seconds:.1f} s = {base_rate:,.0f} users/s"
                     f" (migrated {base_migrated:,}; per-row loop, commit every {BASELINE_COMMIT_EVERY})")
        if big is not None:
            speedup = big.rate / base_rate
            missed += [] if speedup >= TARGET_SPEEDUP else ["speed-up"]
            lines.append(f"  speed-up     {speedup:.1f}x the per-row baseline (target >= {TARGET_SPEEDUP:g}x):"
                         f" {verdict(speedup >= TARGET_SPEEDUP)}")
    if small is not None:
        lines.append(f"  upgrade      {small.users:,} users in {small.seconds:.1f} s = {small.rate:,.0f} users/s;"
                     f" peak RSS {mib(small.peak_rss_kib)}")
        if big is not None:
            rss_ratio = big_rss / small.peak_rss_kib
            missed += [] if rss_ratio <= TARGET_RSS_RATIO else ["rss"]
            lines.append(f"  peak RSS     {mib(big_rss)} at {big.users:,} / {mib(small.peak_rss_kib)}"
                         f" at {small.users:,} = {rss_ratio:.2f} (target <= {TARGET_RSS_RATIO}):"
                         f" {verdict(rss_ratio <= TARGET_RSS_RATIO)}")
    if big is not None:
        lines += [line("child log", entry.split("] ", 1)[-1]) for entry in big.log_tail
                  if "[app.summary]" in entry]
    for i, run in enumerate(runs, 1):
        if run.waits is not None:
            lines += run.waits.lines(f"upgrade run {i}, {run.seconds:.1f} s")
    if floor is not None and floor.waits is not None:
        lines += floor.waits.lines(f"floor, {floor.seconds:.1f} s")
    checks = [(r, seeded.migratable) for r in runs] + ([(small, small_seeded.migratable)] if small else [])
    for run, expected in checks:
        if run.migrated + run.reported != run.users or run.migrated != expected:
            missed.append("counts")
            lines.append(
                f"  WARNING      migrated + reported = {run.migrated + run.reported:,} of {run.users:,} legacy rows"
                f" (the seed expected {expected:,} migrated)"
            )
    if floor is not None and floor.migrated != seeded.migratable:
        missed.append("floor counts")
        lines.append(f"  WARNING      the floor wrote {floor.migrated:,} users"
                     f" (the seed expected {seeded.migratable:,})")
    print("\n".join(lines))
    if phases:
        print_profile(phases, walls, False)
    return exit_code(missed)


if __name__ == "__main__":
    sys.exit(main())
