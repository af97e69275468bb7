"""The application's traffic, open loop, in a process of its own: short transactions at a fixed
rate on POOL connections (threads), and `app.migrate_user` calls at their own rate. Transaction i
is due at t0 + i/rate whether or not the earlier ones finished, and its latency is measured from
that scheduled start to its commit, so a stall counts for every transaction it delays (no
coordinated omission)."""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, event

from app.steps.roles import SQL as ROLES_SQL
from app.steps.user_settings import SQL as STEP_SQL
from app.steps.user_settings.login import migrate_user

APP_NAME = "orgmig-bench-app"
POOL = 16
MIX = (("read_legacy", 40), ("update_legacy", 15), ("insert_legacy", 5), ("read_new", 30), ("update_new", 10))
APP_KINDS = tuple(k for k, _ in MIX)
LEGACY_WRITES = ("update_legacy", "insert_legacy")


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
    phases: str = ""    # migrate_user: ms per round trip, "name=ms,...", in order (the commit's last)


def _statement_names() -> dict[int, str]:
    """The login path's statements by the identity of their clause: the name of each in its .sql file."""
    return {id(files(n)): n for files in (STEP_SQL, ROLES_SQL) for n in files.names()}


def _time_round_trips(engine) -> None:
    """While a connection's info holds "phases" (a list), each statement it runs is appended to
    it as (name, ms), and the commit as ("commit", ms) from the moment it was asked for until
    the call returns (the caller adds that one)."""
    names = _statement_names()

    @event.listens_for(engine, "before_cursor_execute")
    def before(conn, cursor, statement, parameters, context, executemany):
        if "phases" in conn.info:
            conn.info["began"] = time.monotonic()

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn, cursor, statement, parameters, context, executemany):
        if "phases" in conn.info:
            clause = getattr(getattr(context, "compiled", None), "statement", None)
            conn.info["phases"].append((names.get(id(clause), "other"),
                                        (time.monotonic() - conn.info.pop("began")) * 1000))

    @event.listens_for(engine, "commit")
    def commit(conn):
        if "phases" in conn.info:
            conn.info["committing"] = time.monotonic()


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
        conn.info["phases"] = []
        found = migrate_user(conn, arg)
        if "committing" in conn.info:
            conn.info["phases"].append(("commit", (time.monotonic() - conn.info.pop("committing")) * 1000))
        return "none" if found is None else ("now" if found.migrated_now else "found")
    return ""


def run_traffic(work: Workload, out: str, ready, stop) -> None:
    """The application: POOL threads, each on its own connection, take transactions off a queue
    that a dispatcher fills at their due times; every transaction's latency goes to `out`."""
    engine = create_engine(work.url, pool_size=POOL, max_overflow=0,
                           connect_args={"application_name": APP_NAME})
    _time_round_trips(engine)
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
            phases = ",".join(f"{name}={ms:.3f}" for name, ms in conn.info.pop("phases", []))
            conn.info.pop("committing", None)
            with lock:
                samples.append(Sample(due, kind, (end - due) * 1000, (end - began) * 1000, ok, note, phases))
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
            f.write(f"{s.due!r}\t{s.kind}\t{s.latency_ms!r}\t{s.service_ms!r}\t{int(s.ok)}\t{s.note}\t{s.phases}\n")


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
            due, kind, lat, svc, ok, note, phases = line.split("\t")
            samples.append(Sample(float(due), kind, float(lat), float(svc), ok == "1", note, phases))
        return samples

