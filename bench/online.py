"""Benchmark: revision 0004 run beside the application's traffic.

    python bench/online.py [--users 1000000] [--rate 200] [--login-rate 20] [--idle-seconds 60]
                           [--block-seconds 15] [--idle-before 20] [--runs 3] [--joiners 1,2,4]
                           [--only idle,default,workers1,join] [--seed 0] [--database-url URL]
                           [--keep] [--reuse]

Once: a template database at revision 0003 with `--users` legacy rows seeded by app.ops.seed (as
bench/migrate_users.py seeds them, then VACUUM ANALYZE), and min(5,000, users/20) of its users
migrated the way the application migrates them at login (the login path's statement), so the
application has users in the new tables before the upgrade. Every scenario runs on a fresh file
copy of that template.

The application: a process of its own issuing short transactions at a fixed rate (`--rate`,
default 200 a second) on 16 connections (threads), open loop: transaction i is due at
t0 + i/rate whether or not the earlier ones finished, and its latency is measured from that
scheduled start to its commit, so a stall counts for every transaction it delays (no
coordinated omission). The mix: 40% read a user_settings row by keycloak_user_id, 15% update a
user_settings row, 5% insert a new legacy row, 30% read the "user" and settings rows of an
already migrated user, 10% update that user's settings and "user" rows. Beside it, at
`--login-rate` (default 20 a second, same open loop), `app.migrate_user(connection,
keycloak_user_id)`: half for users not yet migrated (each once; a call that finds its user
migrated by the bulk run meanwhile counts as "already migrated"), half for migrated ones.

Scenarios (`--only`):

- `idle`: no upgrade; blocks of `--block-seconds` alternate without and with the live-write
  capture installed (the trigger and change log, by the SQL the revision installs them with,
  app/steps/user_settings/capture.sql), `--idle-seconds` in each state. The blocks without it
  are the idle figures; the two states compared give the capture's cost on the application's
  writes to user_settings, on the same database at the same time, apart from the upgrade's load.
- `default`, `workers1`: `--runs` times each (default 3), in turn: `--idle-before` seconds
  (20) of the traffic alone on a fresh copy, then `alembic upgrade 0004` with the default
  settings, or with `-x workers=1`, beside it. Each run's p99 during the upgrade (the alembic
  process's life) is set against the p99 of the 20 seconds just before it on the same copy; the
  median of those ratios is what the target is checked on. The WAL written, the WAL segment
  files before and after, the server's checkpoints (other sessions' count too) and what the
  application's backends waited for are given per run.
- `join`: no traffic; `alembic -x workers=1 upgrade 0004` alone, then with 1, 2 and 4
  (`--joiners`) `orgmig work --workers 1` processes started as soon as its run is open: the
  upgrade's rate by processes taking batches.

The first `--warmup` seconds (5) of traffic on a copy are not measured; an idle block is
measured from one second after the capture was switched.

Targets (exit 1 when one is missed, 2 when the bench could not run): the application's p99
during the upgrade at most 2x its idle p99 (the median ratio of the runs), with the default
settings and with -x workers=1; migrate_user's p99 under 20 ms, idle and during the upgrade,
for users migrated by the call and for users already migrated. The rates and the capture's cost
have no target. The 1-minute load average is given with each figure (the host may be shared).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing as mp
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402 - after the path set-up above
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import URL  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from app.db import DatabaseError, make_engine  # noqa: E402
from app.ops.databases import Server  # noqa: E402
from app.steps.roles import ensure_roles  # noqa: E402
from app.steps.user_settings import ROLES, SQL, STEP  # noqa: E402
from app.steps.user_settings.login import migrate_user  # noqa: E402
from bench.common import (  # noqa: E402
    ALEMBIC,
    DEFAULT_SERVER,
    child_env,
    code_version,
    load1,
    machine,
    open_server,
    prepare,
    say,
    verdict,
)

REVISION = "0004"
APP_NAME = "orgmig-bench-app"
POOL = 16
MIX = (("read_legacy", 40), ("update_legacy", 15), ("insert_legacy", 5), ("read_new", 30), ("update_new", 10))
APP_KINDS = tuple(k for k, _ in MIX)
LEGACY_WRITES = ("update_legacy", "insert_legacy")
SETTLE_S = 1.0
TARGET_RATIO = 2.0
TARGET_LOGIN_MS = 20.0
SCENARIOS = ("idle", "default", "workers1", "join")


# --- the application, in a process of its own -----------------------------------------------


@dataclass
class Workload:
    url: str
    rate: float
    login_rate: float
    legacy: list[tuple[int, str]]          # (id, keycloak_user_id) of legacy rows
    migrated: list[tuple[int, str, str]]   # (user id, keycloak_user_id, org id) of migrated users
    new_logins: list[str]                  # keycloak_user_ids not yet migrated, in call order
    seed: int


@dataclass(frozen=True)
class Sample:
    due: float          # scheduled start (CLOCK_MONOTONIC, shared by the processes of this host)
    kind: str
    latency_ms: float   # from the scheduled start to the end of the transaction
    service_ms: float   # from the moment a connection began it
    ok: bool
    note: str           # migrate_user: "now" (migrated by the call), "found"; an error: its SQLSTATE


def _schedule(work: Workload):
    """(due, kind, argument) forever: the application's transactions and the logins, each stream
    at its own fixed rate, merged in time order."""
    rng = random.Random(work.seed)
    kinds, weights = zip(*MIX, strict=True)
    t0 = time.monotonic()
    app_i, login_i, new_i = 0, 0, 0
    while True:
        app_due = t0 + app_i / work.rate
        login_due = t0 + login_i / work.login_rate if work.login_rate else math.inf
        if app_due <= login_due:
            kind = rng.choices(kinds, weights)[0]
            if kind in ("read_legacy", "update_legacy"):
                arg = rng.choice(work.legacy)
            elif kind in ("read_new", "update_new"):
                arg = rng.choice(work.migrated)
            else:
                arg = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            app_i += 1
            yield app_due, kind, arg
        else:
            if login_i % 2 == 0 and work.new_logins:
                kind, arg = "login_new", work.new_logins[new_i % len(work.new_logins)]
                new_i += 1
            else:
                kind, arg = "login_migrated", rng.choice(work.migrated)[1]
            login_i += 1
            yield login_due, kind, arg


def _transaction(conn, kind: str, arg, rng: random.Random) -> str:
    if kind == "read_legacy":
        with conn.begin():
            conn.exec_driver_sql("SELECT * FROM user_settings WHERE keycloak_user_id = %(k)s", {"k": arg[1]}).all()
    elif kind == "update_legacy":
        with conn.begin():
            conn.exec_driver_sql("UPDATE user_settings SET user_version = user_version + 1, max_iterations = %(n)s"
                                 " WHERE id = %(id)s", {"n": rng.randint(10, 200), "id": arg[0]})
    elif kind == "insert_legacy":
        with conn.begin():
            conn.exec_driver_sql(
                "INSERT INTO user_settings (keycloak_user_id, language, agent, llm_model, email, email_verified,"
                " accepted_tos, enable_sound_notifications) VALUES (%(k)s, 'en', 'CodeActAgent', 'openai/gpt-4o',"
                " %(e)s, false, now() AT TIME ZONE 'UTC', true) RETURNING id", {"k": arg, "e": f"{arg[:8]}@example.org"}
            ).all()
    elif kind == "read_new":
        with conn.begin():
            conn.exec_driver_sql(
                'SELECT u.id, u.email, u.status, s.language, s.agent, s.llm_model, s.max_iterations FROM "user" u'
                " JOIN settings s ON s.org_id = u.current_org_id WHERE u.keycloak_user_id = %(k)s", {"k": arg[1]}
            ).all()
    elif kind == "update_new":
        with conn.begin():
            conn.exec_driver_sql("UPDATE settings SET max_iterations = %(n)s WHERE org_id = %(o)s",
                                 {"n": rng.randint(10, 200), "o": arg[2]})
            conn.exec_driver_sql('UPDATE "user" SET enable_sound_notifications = %(b)s WHERE id = %(u)s',
                                 {"b": rng.random() < 0.5, "u": arg[0]})
    else:
        found = migrate_user(conn, arg)
        return "none" if found is None else ("now" if found.migrated_now else "found")
    return ""


def run_traffic(work: Workload, out: str, ready, stop) -> None:
    """The application: POOL threads, each on its own connection, take transactions off a queue
    that a dispatcher fills at their due times; every transaction's latency goes to `out`."""
    engine = create_engine(work.url, pool_size=POOL, max_overflow=0,
                           connect_args={"application_name": APP_NAME})
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    samples: list[Sample] = []
    lock = threading.Lock()
    connected = threading.Barrier(POOL + 1)

    def worker(i: int) -> None:
        rng = random.Random(work.seed * 1000 + i)
        conn = engine.connect()
        connected.wait()
        while (job := jobs.get()) is not None:
            due, kind, arg = job
            began = time.monotonic()
            try:
                note, ok = _transaction(conn, kind, arg, rng), True
            except Exception as exc:  # noqa: BLE001 - an error is a result the bench counts
                ok = False
                note = getattr(getattr(exc, "orig", None), "sqlstate", None) or type(exc).__name__
                with contextlib.suppress(Exception):
                    conn.rollback()
                if conn.invalidated or conn.closed:
                    conn = engine.connect()
            end = time.monotonic()
            with lock:
                samples.append(Sample(due, kind, (end - due) * 1000, (end - began) * 1000, ok, note))
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(POOL)]
    for t in threads:
        t.start()
    connected.wait()
    ready.set()
    for due, kind, arg in _schedule(work):
        if stop.is_set():
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        jobs.put((due, kind, arg))
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join()
    engine.dispose()
    with open(out, "w") as f:
        for s in samples:
            f.write(f"{s.due!r}\t{s.kind}\t{s.latency_ms!r}\t{s.service_ms!r}\t{int(s.ok)}\t{s.note}\n")


class Traffic:
    """The application process: started, ready (connected), stopped with its samples."""

    def __init__(self, work: Workload, out: Path) -> None:
        ctx = mp.get_context("spawn")
        self.out = out
        self.ready, self.stopping = ctx.Event(), ctx.Event()
        self.proc = ctx.Process(target=run_traffic, args=(work, str(out), self.ready, self.stopping),
                                name="orgmig-bench-app")
        self.proc.start()
        if not self.ready.wait(120):
            self.proc.kill()
            raise RuntimeError("the application traffic did not start within 120 s")

    def stop(self) -> list[Sample]:
        self.stopping.set()
        self.proc.join(120)
        if self.proc.exitcode != 0:
            self.proc.kill()
            raise RuntimeError(f"the application traffic process exited with {self.proc.exitcode}")
        samples = []
        for line in self.out.read_text().splitlines():
            due, kind, lat, svc, ok, note = line.split("\t")
            samples.append(Sample(float(due), kind, float(lat), float(svc), ok == "1", note))
        return samples


# --- what the host and the application's backends do meanwhile --------------------------------


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Waits(threading.Thread):
    """Every 200 ms, what the application's active backends wait for (pg_stat_activity), and for
    a lock wait, which statements wait behind whose."""

    def __init__(self, url: URL) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.counts: Counter = Counter()
        self.blocked: Counter = Counter()
        self.halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url.set(drivername="postgresql").render_as_string(hide_password=False),
                             autocommit=True) as conn:
            while not self.halt.wait(0.2):
                for wtype, wevent, query, blockers in conn.execute(
                        "SELECT a.wait_event_type, a.wait_event, left(a.query, 40),"
                        " (SELECT string_agg(DISTINCT coalesce(nullif(b.application_name, ''), b.backend_type)"
                        "   || ': ' || left(b.query, 40), ' | ') FROM pg_stat_activity b"
                        "  WHERE b.pid = ANY (pg_blocking_pids(a.pid)))"
                        " FROM pg_stat_activity a WHERE a.application_name = %s AND a.state = 'active'",
                        (APP_NAME,)):
                    self.counts["on CPU" if wtype is None else f"{wtype}:{wevent}"] += 1
                    if wtype == "Lock":
                        self.blocked[(" ".join(query.split()), " ".join((blockers or "?").split()))] += 1

    def stop(self) -> Counter:
        self.halt.set()
        self.join()
        return self.counts


@dataclass
class Window:
    """Samples of one measured period, with the host's state around it."""

    name: str
    samples: list[Sample]
    seconds: float
    load: tuple[float, float]
    cpu_busy: float | None = None
    waits: Counter = field(default_factory=Counter)
    upgrade: dict | None = None
    blocked: Counter = field(default_factory=Counter)


def pct(values: list[float], p: float) -> float:
    """The p-th percentile by nearest rank (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def within(samples: list[Sample], spans: list[tuple[float, float]]) -> list[Sample]:
    return [s for s in samples if any(a <= s.due < b for a, b in spans)]


# --- the template and its copies --------------------------------------------------------------


def premigrate(url: URL, count: int) -> None:
    """`count` users migrated as the application migrates them at login (the login path's statement
    over their legacy rows), before any upgrade: the application's users in the new tables."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            total = conn.execute(text("SELECT max(id) FROM user_settings")).scalar_one()
            step = max(1, total // count)
            keys = list(conn.execute(text(
                "SELECT keycloak_user_id FROM user_settings WHERE id % :m = :m / 2"
                " AND keycloak_user_id ~ '[^[:space:]]' ORDER BY id LIMIT :n"), {"m": step, "n": count}).scalars())
            conn.commit()
            for i in range(0, len(keys), 500):
                with conn.begin():
                    for name, value in STEP.batch_settings.items():
                        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
                    ensure_roles(conn, STEP.name, ROLES, warn=False)
                    sequence = conn.execute(SQL("run.user_id_sequence")).scalar_one()
                    ids = list(conn.execute(text(
                        "SELECT id FROM user_settings WHERE keycloak_user_id = ANY (:k) ORDER BY id"),
                        {"k": keys[i:i + 500]}).scalars())
                    STEP.migrate(conn, min(ids), max(ids), 2**31 - 1, None, sequence, ids=ids)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text('VACUUM (ANALYZE) role, org, "user", org_user, settings, orgmig_user_settings_link,'
                              " orgmig_report"))
    finally:
        engine.dispose()


def workload(url: URL, users: int, rate: float, login_rate: float, seed: int) -> Workload:
    """Who the application's transactions pick from: a sample of legacy rows, the migrated users,
    and users not yet migrated (winners of their keycloak_user_id) in a seeded random order."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            every = max(1, users // 50_000)
            legacy = [tuple(r) for r in conn.execute(text(
                "SELECT id, keycloak_user_id FROM user_settings WHERE id % :m = 0"
                " AND keycloak_user_id ~ '[^[:space:]]' ORDER BY id"), {"m": every})]
            migrated = [(r[0], r[1], str(r[2])) for r in conn.execute(text(
                'SELECT id, keycloak_user_id, current_org_id FROM "user" ORDER BY id'))]
            every = max(1, users // 20_000)
            fresh = list(conn.execute(text(
                "SELECT us.keycloak_user_id FROM user_settings us WHERE us.id % :m = :m - 1"
                " AND us.keycloak_user_id ~ '[^[:space:]]'"
                " AND NOT EXISTS (SELECT 1 FROM orgmig_user_settings_link l WHERE l.user_settings_id = us.id)"
                " AND NOT EXISTS (SELECT 1 FROM user_settings w WHERE w.keycloak_user_id = us.keycloak_user_id"
                "                 AND w.id > us.id) ORDER BY us.id"), {"m": every}).scalars())
    finally:
        engine.dispose()
    random.Random(seed).shuffle(fresh)
    return Workload(url.render_as_string(hide_password=False), rate, login_rate, legacy, migrated, fresh, seed)


def build_template(server: Server, name: str, users: int, seed: int, reuse: bool) -> None:
    if reuse and server.exists(name):
        say(f"using the existing template {name}")
        return
    say(f"seeding {users:,} legacy users into {name}")
    url = server.create(name, replace=True)
    seeded = prepare(url, users, seed)
    count = min(5_000, max(1, users // 20))
    say(f"seeded in {seeded.seconds:.1f} s; migrating {count:,} users as the login path does")
    premigrate(url, count)


# --- the scenarios --------------------------------------------------------------------------


class Bench:
    def __init__(self, server: Server, template: str, work: Workload, logs: Path, warmup: float) -> None:
        self.server = server
        self.template = template
        self.work = work
        self.logs = logs
        self.warmup = warmup
        self.copies = 0

    def copy(self) -> tuple[str, URL]:
        self.copies += 1
        name = f"{self.template}_run{self.copies}"
        return name, self.server.create(name, template=self.template, replace=True)

    def traffic(self, url: URL, label: str) -> Traffic:
        work = Workload(**{**self.work.__dict__, "url": url.render_as_string(hide_password=False)})
        t = Traffic(work, self.logs / f"samples_{label}.tsv")
        time.sleep(self.warmup)
        return t

    def idle(self, idle_seconds: float, block_seconds: float) -> tuple[Window, Window]:
        """Blocks without and with the capture installed, alternating, on one copy."""
        name, url = self.copy()
        engine = make_engine(url, poolclass=NullPool)
        spans: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
        loads: dict[str, list[float]] = {"off": [], "on": []}
        blocks = max(1, round(idle_seconds / block_seconds))
        try:
            traffic = self.traffic(url, "idle")
            waits = Waits(url)
            waits.start()
            try:
                for i in range(2 * blocks):
                    state = "off" if i % 2 == 0 else "on"
                    with engine.begin() as conn:
                        conn.exec_driver_sql(SQL.source("capture.install" if state == "on" else "capture.remove"))
                    start = time.monotonic() + SETTLE_S
                    loads[state].append(load1())
                    time.sleep(SETTLE_S + block_seconds)
                    spans[state].append((start, time.monotonic()))
                    say(f"idle: {block_seconds:g} s with the capture {state}; load average {load1():.2f}")
            finally:
                counts = waits.stop()
                samples = traffic.stop()
            with engine.begin() as conn:
                conn.exec_driver_sql(SQL.source("capture.remove"))
        finally:
            engine.dispose()
            self.server.drop(name)
        return tuple(Window(f"idle, capture {state}", within(samples, spans[state]), blocks * block_seconds,
                            (min(loads[state]), max(loads[state])), waits=counts if state == "off" else Counter())
                     for state in ("off", "on"))

    def upgrade(self, label: str, x_args: list[str], idle_before: float) -> tuple[Window, Window]:
        """`idle_before` seconds of traffic alone (this run's idle reference), then `alembic upgrade
        0004` beside it; the upgrade's window is the alembic process's life."""
        name, url = self.copy()
        try:
            traffic = self.traffic(url, label)
            try:
                idle_load = load1()
                idle_start = time.monotonic()
                time.sleep(idle_before)
                idle_end = time.monotonic()
                waits = Waits(url)
                before, cpu0, wal0 = load1(), cpu_times(), wal_state(url)
                waits.start()
                log = self.logs / f"upgrade_{label}_{self.copies}.log"
                try:
                    start = time.monotonic()
                    code = run_logged(alembic_cmd(x_args), url, log)
                    end = time.monotonic()
                finally:
                    counts = waits.stop()
            finally:
                samples = traffic.stop()
            cpu1, after, wal1 = cpu_times(), load1(), wal_state(url)
            if code != 0:
                raise RuntimeError(f"alembic upgrade {REVISION} ({label}) exited with {code}: see {log}")
            upgrade = ledger(url) | {"seconds": end - start, **wal_delta(wal0, wal1)}
            blocked = waits.blocked
        finally:
            self.server.drop(name)
        busy = (cpu1[0] - cpu0[0]) / max(1, cpu1[1] - cpu0[1])
        say(f"{label}: {upgrade['rows']:,} rows in {end - start:.1f} s; load average {before:.2f} -> {after:.2f}")
        return (Window(f"{label}, idle before", within(samples, [(idle_start, idle_end)]), idle_end - idle_start,
                       (idle_load, before)),
                Window(label, within(samples, [(start, end)]), end - start, (before, after), busy, counts, upgrade,
                       blocked))

    def join(self, joiners: int) -> dict:
        """`alembic -x workers=1 upgrade 0004` and `joiners` `orgmig work --workers 1` processes, no traffic."""
        name, url = self.copy()
        try:
            before = load1()
            log = self.logs / f"join_{joiners}_alembic.log"
            with open(log, "w") as out:
                start = time.monotonic()
                alembic = subprocess.Popen(alembic_cmd(["workers=1"]), cwd=ROOT, env=child_env(url), stdout=out,
                                           stderr=subprocess.STDOUT)
            workers: list[tuple[subprocess.Popen, Path]] = []
            if joiners and wait_for_run(url, alembic):
                for i in range(joiners):
                    wlog = self.logs / f"join_{joiners}_work{i + 1}.log"
                    with open(wlog, "w") as out:
                        workers.append((subprocess.Popen(
                            [sys.executable, "-m", "app.cli", "work", "--workers", "1"], cwd=ROOT,
                            env=child_env(url), stdout=out, stderr=subprocess.STDOUT), wlog))
            code = alembic.wait()
            end = time.monotonic()
            joined = []
            for proc, wlog in workers:
                wcode = proc.wait(120)
                tail = (wlog.read_text(errors="replace").strip().splitlines() or [""])[-1]
                joined.append(tail.split(": ", 1)[-1].split(" batches")[0] + " batches"
                              if wcode == 0 else f"exit {wcode}")
            if code != 0:
                raise RuntimeError(f"alembic -x workers=1 upgrade {REVISION} beside {joiners} orgmig work"
                                   f" exited with {code}: see {log}")
            result = ledger(url) | {"seconds": end - start, "joiners": joiners, "joined": joined,
                                    "load": (before, load1())}
        finally:
            self.server.drop(name)
        say(f"join {joiners}: {result['rows']:,} rows in {result['seconds']:.1f} s"
            f" ({result['rows'] / result['seconds']:,.0f} rows/s); load average {before:.2f} -> {load1():.2f}")
        return result


def alembic_cmd(x_args: list[str]) -> list[str]:
    cmd = list(ALEMBIC)
    for x in x_args:
        cmd += ["-x", x]
    return cmd + ["upgrade", REVISION]


def run_logged(cmd: list[str], url: URL, log: Path) -> int:
    with open(log, "w") as out:
        return subprocess.call(cmd, cwd=ROOT, env=child_env(url), stdout=out, stderr=subprocess.STDOUT)


def wait_for_run(url: URL, alembic: subprocess.Popen) -> bool:
    """Until the upgrade's run is open (`orgmig work` joins a running run); False when alembic ended first."""
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        while alembic.poll() is None:
            if conn.execute("SELECT 1 FROM orgmig_run WHERE status = 'running'").fetchone():
                return True
            time.sleep(0.02)
    return False


def ledger(url: URL) -> dict:
    """The finished run as its ledger has it, and whether the capture is in force (until `orgmig finalize`)."""
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        row = conn.execute(
            "SELECT r.status, r.total_rows, extract(epoch FROM (SELECT max(finished_at) FROM orgmig_batch b"
            "   WHERE b.run_id = r.id) - r.started_at),"
            " (SELECT count(*) FROM orgmig_batch b WHERE b.run_id = r.id AND b.status = 'succeeded'),"
            " (SELECT coalesce(sum(attempts - 1), 0) FROM orgmig_batch b WHERE b.run_id = r.id),"
            " to_regclass('orgmig_user_settings_change') IS NOT NULL"
            " FROM orgmig_run r WHERE r.step = 'user_settings_to_org' ORDER BY r.id DESC LIMIT 1").fetchone()
    status, rows, batch_seconds, batches, retries, capture_kept = row
    return {"status": status, "rows": rows, "batch_seconds": float(batch_seconds or 0), "batches": batches,
            "retries": retries, "capture_kept": capture_kept}


def wal_state(url: URL) -> dict:
    """WAL written so far, WAL segment files, checkpoints (all of the server: other sessions'
    checkpoints show here too, CREATE DATABASE asks for one)."""
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:
        state = {"wal_bytes": int(conn.execute("SELECT wal_bytes FROM pg_stat_wal").fetchone()[0]),
                 "checkpoints": conn.execute("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
                 .fetchone()[0]}
        try:  # pg_ls_waldir needs a superuser or pg_monitor
            state["segments"] = conn.execute("SELECT count(*) FROM pg_ls_waldir()").fetchone()[0]
        except psycopg.Error:
            state["segments"] = None
    return state


def wal_delta(a: dict, b: dict) -> dict:
    return {"wal_gb": (b["wal_bytes"] - a["wal_bytes"]) / 1e9, "checkpoints": b["checkpoints"] - a["checkpoints"],
            "segments": (a["segments"], b["segments"])}


# --- the report -------------------------------------------------------------------------------


def stats(samples: list[Sample]) -> dict:
    lat = [s.latency_ms for s in samples if s.ok]
    return {"n": len(samples), "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat, default=math.nan),
            "errors": Counter(s.note for s in samples if not s.ok),
            "service_p99": pct([s.service_ms for s in samples if s.ok], 99)}


def app_samples(w: Window, kinds=APP_KINDS) -> list[Sample]:
    return [s for s in w.samples if s.kind in kinds]


def logins(w: Window, migrated_now: bool) -> list[Sample]:
    """migrate_user calls that migrated their user (a failed call for a user not yet migrated
    counts here, as an error), or that found it migrated."""
    if migrated_now:
        return [s for s in w.samples if s.kind == "login_new" and (s.note == "now" or not s.ok)]
    return [s for s in w.samples if s.kind.startswith("login") and s.ok and s.note != "now"]


def row(label: str, st: dict, extra: str = "") -> str:
    errors = sum(st["errors"].values())
    err = f"  errors {errors} ({', '.join(f'{k} {v}' for k, v in st['errors'].most_common(3))})" if errors else ""
    return (f"    {label:<48}{st['n']:>7,}{st['p50']:>9.2f}{st['p99']:>9.2f}{st['max']:>9.1f}{extra}{err}")


def load_text(load: tuple[float, float]) -> str:
    return f"{load[0]:.2f}-{load[1]:.2f}" if abs(load[1] - load[0]) >= 0.005 else f"{load[0]:.2f}"


UPGRADES = {"default": ("default settings", []), "workers1": ("-x workers=1", ["workers=1"])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=1_000_000, help="legacy users (default 1,000,000)")
    p.add_argument("--rate", type=float, default=200, help="application transactions a second (default 200)")
    p.add_argument("--login-rate", type=float, default=20, help="migrate_user calls a second (default 20)")
    p.add_argument("--idle-seconds", type=float, default=60,
                   help="idle traffic measured without, and again with, the capture (default 60 each)")
    p.add_argument("--block-seconds", type=float, default=15, help="length of one idle block (default 15)")
    p.add_argument("--idle-before", type=float, default=20,
                   help="seconds of traffic alone before each upgrade, its idle reference (default 20)")
    p.add_argument("--runs", type=int, default=3,
                   help="upgrades of each kind beside the traffic, in turn, on fresh copies (default 3)")
    p.add_argument("--warmup", type=float, default=5, help="seconds of traffic not measured in each copy (default 5)")
    p.add_argument("--joiners", default="1,2,4", help="orgmig work processes to try beside alembic (default 1,2,4)")
    p.add_argument("--only", default=",".join(SCENARIOS), help=f"scenarios to run (default {','.join(SCENARIOS)})")
    p.add_argument("--seed", type=int, default=0, help="seed of the legacy rows and the traffic (default 0)")
    p.add_argument("--database-url", metavar="URL", help=f"server to use (default DATABASE_URL, else {DEFAULT_SERVER})")
    p.add_argument("--keep", action="store_true", help="keep the template database")
    p.add_argument("--reuse", action="store_true", help="use the template database if it exists (from --keep)")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    try:
        joiners = [int(j) for j in args.joiners.split(",") if j.strip()]
    except ValueError:
        joiners = [-1]
    if (args.users < 100 or args.rate <= 0 or args.login_rate < 0 or args.idle_seconds <= 0 or args.runs < 1
            or args.block_seconds <= 0 or args.idle_before <= 0 or set(only) - set(SCENARIOS)
            or any(j < 1 or j > 32 for j in joiners)):
        print("bench: --users must be at least 100, --rate, --runs and the idle lengths positive, --login-rate"
              f" not negative, --joiners 1-32 each, --only among {','.join(SCENARIOS)}", file=sys.stderr)
        return 2

    opened = open_server(args.database_url)
    if opened is None:
        return 2
    server, where = opened

    template = f"orgmig_bench_online_{args.users}"
    code = code_version()
    load_start = load1()
    windows: dict[str, Window] = {}
    runs: dict[str, list[tuple[Window, Window]]] = {k: [] for k in UPGRADES if k in only}
    joins: list[dict] = []
    logs = Path(tempfile.mkdtemp(prefix="orgmig-bench-online-"))
    started = time.monotonic()
    try:
        build_template(server, template, args.users, args.seed, args.reuse)
        work = workload(server.url(template), args.users, args.rate, args.login_rate, args.seed)
        bench = Bench(server, template, work, logs, args.warmup)
        if "idle" in only:
            say(f"idle: {args.rate:g} tx/s and {args.login_rate:g} logins/s, capture off and on in turn")
            windows["off"], windows["on"] = bench.idle(args.idle_seconds, args.block_seconds)
            say(progress_line("idle", None, windows["off"], windows["on"]))
        for i in range(1, args.runs + 1 if runs else 1):
            for key in runs:  # in turn, so a change in the host's load reaches both kinds alike
                label, x_args = UPGRADES[key]
                say(f"run {i}: {args.idle_before:g} s of traffic alone, then upgrade {REVISION} with {label}")
                runs[key].append(bench.upgrade(key, x_args, args.idle_before))
                say(progress_line(f"run {i}, {label}", *runs[key][-1]))
        if "join" in only:
            for j in [0, *joiners]:
                say(f"upgrade {REVISION} with -x workers=1 and {j} orgmig work --workers 1, no traffic")
                joins.append(bench.join(j))
    except (DatabaseError, RuntimeError, psycopg.Error) as exc:
        print(f"bench: {exc} (logs in {logs})", file=sys.stderr)
        return 2
    finally:
        if not args.keep:
            server.drop(template)

    return report(args, where, code, load_start, time.monotonic() - started, windows, runs, joins, work, logs)


def progress_line(label: str, idle: Window | None, w: Window, capture_on: Window | None = None) -> str:
    """One run's figures as they come (the report at the end has them all)."""
    st = stats(app_samples(w))
    line = f"{label}: p50 {st['p50']:.2f} ms, p99 {st['p99']:.2f} ms"
    if idle is not None:
        line += f" (idle p99 just before {stats(app_samples(idle))['p99']:.2f} ms)"
    if capture_on is not None:
        line += (f"; writes to user_settings p99 {stats(app_samples(w, LEGACY_WRITES))['p99']:.2f} ms, with the capture"
                 f" {stats(app_samples(capture_on, LEGACY_WRITES))['p99']:.2f} ms")
    line += (f"; migrate_user p99 {stats(logins(w, True))['p99']:.1f} ms migrating,"
             f" {stats(logins(w, False))['p99']:.1f} ms migrated")
    if w.upgrade:
        u = w.upgrade
        line += (f"; {u['rows'] / u['seconds']:,.0f} rows/s, WAL {u['wal_gb']:.2f} GB, WAL files {u['segments']},"
                 f" checkpoints {u['checkpoints']}; waits " + ", ".join(f"{k} {v}" for k, v in w.waits.most_common(3)))
    return line


def pooled(name: str, windows: list[Window]) -> Window:
    return Window(name, [s for w in windows for s in w.samples], sum(w.seconds for w in windows),
                  (min(w.load[0] for w in windows), max(w.load[1] for w in windows)))


def report(args, where, code, load_start, seconds, windows: dict[str, Window],
           runs: dict[str, list[tuple[Window, Window]]], joins: list[dict], work: Workload, logs: Path) -> int:
    missed: list[str] = []
    defaults = {"rate": 200, "login_rate": 20, "idle_seconds": 60, "block_seconds": 15, "idle_before": 20,
                "runs": 3, "warmup": 5, "joiners": "1,2,4", "only": ",".join(SCENARIOS), "seed": 0}
    cmd = f"python bench/online.py --users {args.users}" + "".join(
        f" --{k.replace('_', '-')} {getattr(args, k):g}" if isinstance(v, int | float)
        else f" --{k.replace('_', '-')} {getattr(args, k)}" for k, v in defaults.items() if getattr(args, k) != v)
    out = [
        f"orgmig benchmark: revision {REVISION} beside the application's traffic",
        f"  server       {where}",
        f"  machine      {machine()}; load average {load_start:.2f} at the start, {load1():.2f} at the end",
        f"  command      {cmd}",
        f"  code         {code}",
        (f"  data         {args.users:,} legacy users; {len(work.migrated):,} migrated beforehand as at login;"
         f" the traffic picks from {len(work.legacy):,} legacy rows, those migrated users and"
         f" {len(work.new_logins):,} users not yet migrated"),
        (f"  traffic      {args.rate:g} tx/s open loop on {POOL} connections (latency from each transaction's"
         f" scheduled start, so stalls count for every transaction they delay): "
         + ", ".join(f"{w}% {k}" for k, w in MIX)
         + f"; plus {args.login_rate:g} migrate_user calls/s (half for users not yet migrated)"),
        f"  took         {seconds / 60:.1f} min; logs in {logs}",
    ]
    header = f"    {'':<48}{'n':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    during = {key: pooled(UPGRADES[key][0], [w for _, w in pairs]) for key, pairs in runs.items() if pairs}
    shown = ([("idle (capture-off blocks)", windows["off"])] if "off" in windows else []) + [
        (f"upgrade, {UPGRADES[key][0]} ({len(runs[key])} run{'s' if len(runs[key]) > 1 else ''})", w)
        for key, w in during.items()]
    if shown:
        out.append("  application transactions, all kinds")
        out.append(header + "   load average")
        for label, w in shown:
            out.append(row(label, stats(app_samples(w)), f"   {load_text(w.load)}"))
        out.append("    p99 ms by kind: " + "; ".join(
            f"{label.split(' (')[0]}: " + ", ".join(f"{k} {stats(app_samples(w, (k,)))['p99']:.1f}" for k in APP_KINDS)
            for label, w in shown))
    if runs:
        out.append("  each upgrade beside the traffic: p99 against the same copy's idle p99 just before it")
        out.append(f"    {'':<18}{'run':>4}{'idle p99':>10}{'p50':>7}{'p99':>8}{'max':>8}{'ratio':>7}{'rows/s':>8}"
                   f"{'WAL GB':>8}{'WAL files':>11}{'ckpts':>6}  load average   waits of the application")
        for key, pairs in runs.items():
            ratios = []
            for i, (idle, w) in enumerate(pairs, 1):
                a, b = stats(app_samples(idle)), stats(app_samples(w))
                ratios.append(b["p99"] / a["p99"])
                u = w.upgrade
                files = "-" if u["segments"][0] is None else f"{u['segments'][0]}->{u['segments'][1]}"
                waits = sum(w.waits.values())
                out.append(
                    f"    {UPGRADES[key][0]:<18}{i:>4}{a['p99']:>10.2f}{b['p50']:>7.2f}{b['p99']:>8.2f}{b['max']:>8.0f}"
                    f"{ratios[-1]:>7.2f}{u['rows'] / u['seconds']:>8,.0f}{u['wal_gb']:>8.2f}{files:>11}"
                    f"{u['checkpoints']:>6}  {load_text(w.load):<14} "
                    + ", ".join(f"{k} {v / waits:.0%}" for k, v in w.waits.most_common(3)))
                if u["status"] != "finished" or not u["capture_kept"]:
                    missed.append(f"the upgrade ({UPGRADES[key][0]}, run {i}) did not finish cleanly")
            ratio = statistics.median(ratios)
            ok = ratio <= TARGET_RATIO
            missed += [] if ok else [f"application p99 during the upgrade ({UPGRADES[key][0]})"]
            out.append(f"    {UPGRADES[key][0]}: median ratio {ratio:.2f} (target <= {TARGET_RATIO:g}): {verdict(ok)}")
    if "off" in windows:
        idle, on = windows["off"], windows["on"]
        out.append("  the live-write capture, idle (one copy, 15 s blocks without and with it in turn; no upgrade)")
        out.append(header + "   load average")
        for kinds, what in ((LEGACY_WRITES, "writes to user_settings"), (APP_KINDS, "all transactions")):
            s_off, s_on = stats(app_samples(idle, kinds)), stats(app_samples(on, kinds))
            out.append(row(f"{what}, capture off", s_off, f"   {load_text(idle.load)}"))
            out.append(row(f"{what}, capture on", s_on, f"   {load_text(on.load)}"))
            out.append(f"    {what}: p50 x{s_on['p50'] / s_off['p50']:.2f}, p99 x{s_on['p99'] / s_off['p99']:.2f}"
                       " with the capture")
    login_windows = ([("idle", windows["off"])] if "off" in windows else []) + [
        (f"upgrade, {UPGRADES[key][0]}", w) for key, w in during.items()]
    if login_windows:
        out.append("  migrate_user (latency from the scheduled call; the call alone in brackets)")
        out.append(header)
        for label, w in login_windows:
            for now, what in ((True, "migrated by the call"), (False, "already migrated")):
                st = stats(logins(w, now))
                ok = st["p99"] < TARGET_LOGIN_MS
                missed += [] if ok else [f"migrate_user p99, {label}, {what}"]
                out.append(row(f"{label}, {what}", st, f"  ({st['service_p99']:.2f})  target p99 < "
                                                       f"{TARGET_LOGIN_MS:g} ms: {verdict(ok)}"))
    for key, pairs in runs.items():
        rates = ", ".join(f"{w.upgrade['rows'] / w.upgrade['seconds']:,.0f}" for _, w in pairs)
        retries = sum(w.upgrade["retries"] for _, w in pairs)
        busy = statistics.median(w.cpu_busy for _, w in pairs)
        out.append(f"  upgrade      {UPGRADES[key][0]}, beside the traffic: {rates} rows/s"
                   f" (wall time of alembic, start-up included); {retries} batch retries in all;"
                   f" CPUs {busy:.0%} busy (median)")
    if joins:
        base_rate = joins[0]["rows"] / joins[0]["seconds"]
        out.append("  processes    alembic -x workers=1, with N orgmig work --workers 1 joining (no traffic)")
        out.append(f"    {'N':<4}{'rows/s':>9}{'x alone':>9}{'seconds':>9}{'rows/s in batches':>19}   load average"
                   "   batches by the joiners")
        for j in joins:
            rate = j["rows"] / j["seconds"]
            out.append(f"    {j['joiners']:<4}{rate:>9,.0f}{rate / base_rate:>9.2f}{j['seconds']:>9.1f}"
                       f"{j['rows'] / j['batch_seconds']:>19,.0f}   {load_text(j['load']):<14} "
                       + (", ".join(j["joined"]) or "-"))
            if j["status"] != "finished":
                missed.append(f"the upgrade with {j['joiners']} joiners did not finish")
    for m in missed:
        out.append(f"  MISSED       {m}")
    print("\n".join(out))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
