"""Scenarios on copies of a template database: the traffic alone with the live-write capture off
and on in turn, an upgrade beside the traffic (its window the alembic process's life, sampled for
waits, CPU and WAL), an upgrade with `orgmig work` processes joining it."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.ops.databases import Server
from app.steps.user_settings import SQL

from . import ROOT, steering
from .latency import Window, within
from .report import load1, say
from .sampling import Waits, cpu_times, ledger, wait_for_run, wal_delta, wal_state
from .server import ALEMBIC, ORGMIG, child_env
from .traffic import Traffic, Workload

REVISION = "0004"
SETTLE_S = 1.0


@dataclass
class Scenarios:
    """The scenarios of bench/online.py, each on a fresh copy of `template`, dropped after; the
    traffic's first `warmup` seconds on a copy are not measured; `stop_after`: every upgrade
    beside the traffic stopped that many seconds in (None: run to its end)."""

    server: Server
    template: str
    work: Workload
    logs: Path
    warmup: float
    stop_after: float | None = None
    copies: int = 0

    def copy(self) -> tuple[str, URL]:
        self.copies += 1
        name = f"{self.template}_run{self.copies}"
        return name, self.server.create(name, template=self.template, replace=True)

    def traffic(self, url: URL, label: str, rate: float | None = None, warmup: bool = True, **more) -> Traffic:
        work = Workload(**{**self.work.__dict__, "url": url.render_as_string(hide_password=False),
                           "rate": rate or self.work.rate, **more})
        t = Traffic(work, self.logs / f"samples_{label}.tsv")
        if warmup:
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

    def upgrade(self, label: str, x_args: list[str], idle_before: float, rate: float | None = None,
                step_after: float | None = None) -> tuple[Window, Window]:
        """`idle_before` seconds of traffic alone (this run's idle reference), then `alembic upgrade
        0004` beside it; the upgrade's window is the alembic process's life. `rate`: the traffic's
        (0: none at all; default the workload's); `step_after`: that many seconds into the
        upgrade a second application process at the same rate joins (the rate doubles). With
        the scenarios' `stop_after`, the upgrade is stopped that many seconds in (SIGTERM,
        handled as Ctrl-C; the run left interrupted; upgrade["stopped"]). The steering's
        decisions and readings are kept (upgrade["steering"], on this clock)."""
        name, url = self.copy()
        extra: list[Traffic] = []
        step_at: list[float] = []

        def step() -> None:
            extra.append(self.traffic(url, f"{label}_step", rate, warmup=False, login_rate=0.0, new_logins=[],
                                      seed=self.work.seed + 1))
            step_at.append(time.monotonic())

        try:
            traffic = self.traffic(url, label, rate) if rate != 0 else None
            try:
                idle_load = load1()
                idle_start = time.monotonic()
                time.sleep(idle_before if traffic else 0)
                idle_end = time.monotonic()
                waits = Waits(url)
                before, cpu0, wal0 = load1(), cpu_times(), wal_state(url)
                waits.start()
                log = self.logs / f"upgrade_{label}_{self.copies}.log"
                timer = threading.Timer(step_after, step) if step_after is not None and traffic else None
                try:
                    start = time.monotonic()
                    if timer:
                        timer.start()
                    code, stopped = run_logged(alembic_cmd(x_args), url, log, self.stop_after)
                    end = time.monotonic()
                finally:
                    if timer:
                        timer.cancel()
                        timer.join()
                    counts = waits.stop()
            finally:
                samples = traffic.stop() if traffic else []
                for t in extra:
                    samples += t.stop()
            cpu1, after, wal1 = cpu_times(), load1(), wal_state(url)
            if code != (128 + signal.SIGTERM if stopped else 0):
                raise RuntimeError(f"alembic upgrade {REVISION} ({label}) exited with {code}: see {log}")
            upgrade = ledger(url) | {"seconds": end - start, **wal_delta(wal0, wal1), "start": start,
                                     "steering": steering.marks(url), "step_at": step_at[0] if step_at else None,
                                     "stopped": stopped}
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
                            [*ORGMIG, "work", "--workers", "1"], cwd=ROOT,
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


def run_logged(cmd: list[str], url: URL, log: Path, stop_after: float | None = None) -> tuple[int, bool]:
    """`cmd`'s exit code, and whether it was stopped after `stop_after` seconds (SIGTERM, which
    orgmig handles as Ctrl-C, and which a process started in the background does not ignore)."""
    with open(log, "w") as out:
        child = subprocess.Popen(cmd, cwd=ROOT, env=child_env(url), stdout=out, stderr=subprocess.STDOUT)
        try:
            return child.wait(stop_after), False
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGTERM)
            return child.wait(), True

