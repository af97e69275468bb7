"""The health signal the engine measures itself, on a plain single PostgreSQL: what a commit of
the application costs now, against what it cost before the run wrote anything.

- **The probe**: a dedicated connection commits a one-row UPDATE of the run's `orgmig_steer` row
  with `synchronous_commit = on`, every `probe_s`, and times it. Its commit waits for the WAL
  flush as the application's commits do, so it pays for the run's WAL ahead of it the same way
  (docs/architecture.md, "Steering"). A probe that stalls (a lock, a full I/O queue) counts once
  for every probe interval it covered, as the application's commits arriving meanwhile would
  have waited; one that times out counts as its timeout.
- **The guards**, every GUARD_EVERY probes: the share of the other active client backends
  waiting on the WAL flush (IO:WALSync, LWLock:WALWrite), /proc/pressure/cpu where the kernel
  has it, and autovacuum on the step's tables.
- **Alone**: the guards also count the other clients of the database (busy now, or within the
  last signal window; not the run's own sessions, not the alembic command running the revision,
  not `orgmig status`). When every guard sample of the last window saw none, the run is alone:
  there is no application to protect, and the controller sets no limit (app.batch.controller);
  the pacer then commits no probe, and only the guards run (Health.look).
- **The baseline**: BASELINE_PROBES probes (and guard samples) taken while the run writes
  nothing, before it starts and again during a long run (app.batch.pacer), folded in with
  weight 0.3 so a busier hour does not read as damage.

The signal is the 90th percentile of the probes of the last window (PROBES_PER_WINDOW probes);
its ratio to the baseline (never under FLOOR_MS) is what the controller reads.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Connection

from app import db
from app.batch.attempts import describe, unless_broken
from app.batch.controller import Decision, Reading
from app.batch.ledger import SQL

log = logging.getLogger("app.batch")

PROBES_PER_WINDOW = 25
BASELINE_PROBES = 15
GUARD_EVERY = 5
QUANTILE = 0.9
# A commit this fast is not worth a ratio: 0.3 ms against 0.1 ms is noise, not damage.
FLOOR_MS = 1.0
PROBE_TIMEOUT_MS = 5_000
# Guards, against their own baselines: WAL waits are a near breach when at least half the other
# active backends wait on the flush and twice the baseline share; CPU pressure holds raises when
# 20 points over its baseline.
WAL_WAIT_SHARE = 0.5
CPU_PRESSURE_POINTS = 20.0
PSI_CPU = Path("/proc/pressure/cpu")
# `orgmig status` names its sessions so; they are not an application (steer.guards is given it).
STATUS_APPLICATION = "orgmig status"
# Alone takes this many guard samples in a row, the whole last window, that saw no other client.
ALONE_SAMPLES = 3


def cpu_pressure(path: Path = PSI_CPU) -> float | None:
    """The share of time (percent, last 10 s) some task waited for a CPU; None where the kernel
    does not say (no PSI, not Linux)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith("some "):
                return float(dict(f.split("=") for f in line.split()[1:])["avg10"])
    except (OSError, ValueError, KeyError):
        return None
    return None


def weighted_quantile(samples: list[tuple[float, int]], q: float) -> float:
    """The q-quantile of (value, weight) pairs."""
    ordered = sorted(samples)
    total = sum(w for _, w in ordered)
    seen = 0
    for value, weight in ordered:
        seen += weight
        if seen >= q * total:
            return value
    return ordered[-1][0]


class Guard(NamedTuple):
    at: float
    wal_waiting: int
    active: int
    autovacuum: str | None
    cpu: float | None
    others: int  # other clients of the database, busy now or lately
    other: str | None  # the first of them, as a person can find it


@dataclass
class Baseline:
    ms: float
    wal_wait_share: float | None
    cpu_pressure: float | None


class Health:
    """The probe, the guards and the baseline of one process working on run `run_id`."""

    def __init__(self, connect: Callable[[], Connection], run_id: int, process: str,
                 tables: tuple[str, ...], probe_s: float) -> None:
        self.connect = connect
        self.ids = {"run_id": run_id, "process": process}
        self.tables = [t.split("(")[0].strip() for t in tables]
        self.probe_s = probe_s
        self.window_s = PROBES_PER_WINDOW * probe_s
        self.baseline: Baseline | None = None
        self._conn: Connection | None = None
        self._probes: deque[tuple[float, float, int]] = deque()  # (at, ms, weight)
        self._guards: deque[Guard] = deque()
        self.probes = 0

    # -- the connection ---------------------------------------------------------------------

    def _connection(self) -> Connection:
        self._conn = unless_broken(self._conn)
        if self._conn is None:
            conn = self.connect()
            conn.exec_driver_sql(
                f"SET synchronous_commit = on; SET lock_timeout = {PROBE_TIMEOUT_MS};"
                f" SET statement_timeout = {PROBE_TIMEOUT_MS}; SET application_name = 'orgmig health probe'")
            conn.commit()
            self._conn = conn
        return self._conn

    def _write(self, name: str, params: dict) -> None:
        """A bookkeeping write of the steering (not timed, not flushed at once)."""
        try:
            conn = self._connection()
            with db.transaction(conn, PROBE_TIMEOUT_MS, PROBE_TIMEOUT_MS, synchronous_commit="off"):
                conn.execute(SQL(name), {**self.ids, **params})
        except Exception as exc:  # noqa: BLE001 - what status shows must never stop the run
            self._conn = unless_broken(self._conn, exc)
            log.debug("steering: %s not written: %s", name, describe(exc))

    def _ask(self, name: str, what: str):
        """One value read on the probe's connection (None: no answer; the caller does not steer)."""
        try:
            found = self._connection().execute(SQL(name)).scalar_one()
            self._connection().commit()
            return found
        except Exception as exc:  # noqa: BLE001 - no answer: the caller does not steer
            self._conn = unless_broken(self._conn, exc)
            log.debug("steering: %s not read: %s", what, describe(exc))
            return None

    def has_tables(self) -> bool | None:
        """Whether the steering's tables exist (None: no answer)."""
        return self._ask("steer.has_tables", "its tables")

    def spare_connections(self) -> int | None:
        """Connections still free once the probe holds its own (None: no answer)."""
        return self._ask("server.free_connections", "free connections")

    def open(self, state: str, reason: str) -> None:
        self._write("steer.open_row", {"state": state, "reason": reason})

    def publish(self, **state) -> None:
        self._write("steer.publish", state)

    def record(self, decision: Decision, ratio: float | None) -> None:
        self._write("steer.record_decision", {"action": decision.action, "allowance": round(decision.allowance),
                                              "ratio": ratio, "reason": decision.reason})

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    # -- measuring --------------------------------------------------------------------------

    def probe(self) -> float | None:
        """One probe (and every GUARD_EVERY probes, the guards); its latency in ms, None when
        the database did not answer."""
        t0 = time.monotonic()
        try:
            conn = self._connection()
            conn.execute(SQL("steer.probe"), self.ids)
            conn.commit()
            ms = (time.monotonic() - t0) * 1000
        except Exception as exc:  # noqa: BLE001 - a stalled probe is a reading; a lost one is not
            self._conn = unless_broken(self._conn, exc)
            if db.sqlstate(exc) not in ("55P03", "57014"):
                log.debug("steering: probe failed: %s", describe(exc))
                return None
            with contextlib.suppress(Exception):
                self._conn.rollback()
            ms = (time.monotonic() - t0) * 1000
        now = time.monotonic()
        self._probes.append((now, ms, max(1, round(ms / 1000 / self.probe_s))))
        while self._probes and self._probes[0][0] < now - self.window_s:
            self._probes.popleft()
        self.probes += 1
        if self.probes % GUARD_EVERY == 0:
            self._guard()
        return ms

    def look(self) -> None:
        """A probe's turn while the run is alone: no commit timed, the guards every GUARD_EVERY
        turns as with probes (they tell when a client arrives)."""
        self.probes += 1
        if self.probes % GUARD_EVERY == 0:
            self._guard()

    def _guard(self) -> None:
        try:
            row = self._connection().execute(SQL("steer.guards"), {
                **self.ids, "tables": self.tables, "recent_s": self.window_s,
                "status_application": STATUS_APPLICATION}).one()
            self._connection().commit()
        except Exception as exc:  # noqa: BLE001 - a guard sample is optional
            self._conn = unless_broken(self._conn, exc)
            log.debug("steering: guards not read: %s", describe(exc))
            return
        now = time.monotonic()
        self._guards.append(Guard(now, row.wal_waiting, row.active, row.autovacuum, cpu_pressure(),
                                  row.others, row.other))
        while self._guards and self._guards[0].at < now - self.window_s:
            self._guards.popleft()

    def look_around(self, every_s: float = 0.1) -> bool | None:
        """Before the run starts: ALONE_SAMPLES guard samples `every_s` apart; whether the run
        is alone on the database (None: no answer). Each sample already looks back a window
        (clients busy within it count), so a few samples tell as much as a window of them."""
        self._guards.clear()
        for i in range(ALONE_SAMPLES):
            if i:
                time.sleep(every_s)
            self._guard()
        return self.alone()[0]

    def take_baseline(self, weight: float = 1.0, stop: Callable[[], bool] = lambda: False) -> Baseline | None:
        """BASELINE_PROBES probes while the run writes nothing, folded into the baseline with
        `weight` (1: the first one)."""
        self._probes.clear()
        self._guards.clear()
        samples = []
        for _ in range(BASELINE_PROBES):
            if stop():
                return self.baseline
            started = time.monotonic()
            ms = self.probe()
            if ms is not None:
                samples.append((ms, 1))
            time.sleep(max(0.0, self.probe_s - (time.monotonic() - started)))
        if not samples:
            return self.baseline
        fresh = Baseline(weighted_quantile(samples, QUANTILE), self._wal_wait_share(), self._cpu())
        old = self.baseline
        if old is None or weight >= 1:
            self.baseline = fresh
        else:
            self.baseline = Baseline(
                (1 - weight) * old.ms + weight * fresh.ms,
                _blend(old.wal_wait_share, fresh.wal_wait_share, weight),
                _blend(old.cpu_pressure, fresh.cpu_pressure, weight))
        self._probes.clear()
        return self.baseline

    def signal_ms(self) -> float | None:
        """The 90th percentile of the last window's probes (None before a third of a window)."""
        if sum(w for _, _, w in self._probes) < PROBES_PER_WINDOW // 3:
            return None
        return weighted_quantile([(ms, w) for _, ms, w in self._probes], QUANTILE)

    def _wal_wait_share(self) -> float | None:
        active = sum(g.active for g in self._guards)
        return None if active < 3 else sum(g.wal_waiting for g in self._guards) / active

    def _cpu(self) -> float | None:
        values = [g.cpu for g in self._guards if g.cpu is not None]
        return sum(values) / len(values) if values else None

    def alone(self) -> tuple[bool | None, str | None]:
        """Whether the run is alone on the database, and if not who keeps it company: alone when
        every guard sample of the last window (at least ALONE_SAMPLES) saw no other client;
        not alone when one of them saw one (the latest such, as a person can find it); None
        while too few samples tell."""
        seen = [g for g in self._guards if g.others]
        if seen:
            last = seen[-1]
            return False, last.other + (f" and {last.others - 1} more" if last.others > 1 else "")
        return (True, None) if len(self._guards) >= ALONE_SAMPLES else (None, None)

    def reading(self) -> Reading:
        """The signal against its baseline, and the guards against theirs."""
        signal, base = self.signal_ms(), self.baseline
        alone, company = self.alone()
        if signal is None or base is None:
            return Reading(None, alone=alone, company=company)
        ratio = signal / max(base.ms, FLOOR_MS)
        share, wal_waits = self._wal_wait_share(), None
        if share is not None and share >= WAL_WAIT_SHARE and share >= 2 * (base.wal_wait_share or 0):
            before = "too few active before the run to tell" if base.wal_wait_share is None \
                else f"baseline {base.wal_wait_share:.0%}"
            wal_waits = f"{share:.0%} of the other active backends wait on the WAL flush ({before})"
        hold = None
        vacuumed = self._guards[-1].autovacuum if self._guards else None
        cpu = self._cpu()
        if vacuumed:
            hold = f"autovacuum on {vacuumed}"
        elif cpu is not None and base.cpu_pressure is not None and cpu > base.cpu_pressure + CPU_PRESSURE_POINTS:
            hold = f"CPU pressure {cpu:.0f}% (baseline {base.cpu_pressure:.0f}%)"
        return Reading(ratio, wal_waits, hold, alone, company)

    def figures(self) -> dict:
        """What `orgmig status` shows of the signal."""
        base = self.baseline
        signal = self.signal_ms()
        return {"signal_ms": signal, "baseline_ms": base.ms if base else None,
                "ratio": signal / max(base.ms, FLOOR_MS) if signal is not None and base else None,
                "wal_wait_share": self._wal_wait_share(), "cpu_pressure": self._cpu()}


def _blend(old: float | None, new: float | None, weight: float) -> float | None:
    if old is None or new is None:
        return new if old is None else old
    return (1 - weight) * old + weight * new
