"""Where the time of one database's sessions goes while a bench times them: `pg_stat_activity`
sampled every few milliseconds from a connection of its own, and the CPU time of every backend,
of the server's WAL writer, checkpointer and background writer, of a client process and of the
host, read from /proc (the server runs on this host).

    waits = SessionWaits(server_url, "orgmig_bench_200000_run1", marker="WITH rng AS MATERIALIZED")
    waits.start(child_pid)            # sampling until stop(); child_pid: the client process, if any
    ...
    report = waits.stop()             # Sessions: shares by state and wait event, CPU seconds
    print("\\n".join(report.lines("upgrade run 1")))

A session is a *worker* when it ran a statement containing `marker` (the step's batch statement,
the floor's chain); the others are reported apart. Each sample counts, per session, one of: `CPU`
(active, no wait event), the wait event (`LWLock:WALInsert`, `IO:DataFileExtend`, `Lock:tuple`, ...;
a lock wait also names the statement waiting), `idle in transaction` (the server waits for the
client inside a transaction: the client's own time, its Python, its share of the host's CPUs) and
`idle` (between transactions: the client again, a claim's wait, a pacer's sleep). The host's
runnable threads (`procs_running` of /proc/stat, this sampler's included) are averaged over the
samples: above the CPU count, work queues for a CPU, which pg_stat_activity shows as `CPU`.

The sampler connects to the server's `postgres` database, so it is no client of the sampled
database (the steering's "alone" counts those). It costs a query every interval: its backend's
CPU time is reported beside the rest.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg
from sqlalchemy.engine import URL

from .sampling import cpu_times, pg

TICK = os.sysconf("SC_CLK_TCK")
BACKGROUND = ("walwriter", "checkpointer", "background writer")

QUERY = """
SELECT pid, backend_type, state, wait_event_type, wait_event, left(query, 80)
FROM pg_stat_activity
WHERE (datname = %(db)s AND backend_type = 'client backend' AND pid <> pg_backend_pid())
   OR backend_type = ANY (%(background)s)
"""


def proc_cpu(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` so far (None once it has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def procs_running() -> int:
    with open("/proc/stat") as f:
        for entry in f:
            if entry.startswith("procs_running"):
                return int(entry.split()[1])
    return 0


PREFIX = 40  # the characters of a statement's start that name it


def statement(query: str | None, names: dict[str, str]) -> str:
    """A statement's name in `names` (its text's first PREFIX characters, white space collapsed and
    bind parameters written :name -> its name), else those characters themselves."""
    flat = re.sub(r"%\((\w+)\)s", r":\1", query or "").replace("%%", "%")
    flat = re.sub(r"\s+", " ", flat).strip()[:PREFIX]
    return names.get(flat, flat)


def by_prefix(names: dict[str, str]) -> dict[str, str]:
    """{statement text: name} -> {its first PREFIX characters: name} (the first name wins)."""
    out: dict[str, str] = {}
    for text, name in names.items():
        out.setdefault(re.sub(r"\s+", " ", text).strip()[:PREFIX], name)
    return out


@dataclass
class Session:
    pid: int
    kind: str  # client backend, walwriter, ...
    states: Counter = field(default_factory=Counter)  # bucket -> samples
    active: Counter = field(default_factory=Counter)  # statement -> samples active
    cpu_first: float | None = None
    cpu_last: float | None = None
    worker: bool = False
    first: float | None = None  # seconds after the sampler started: the first sample running the marker
    last: float | None = None  # the last one

    @property
    def cpu(self) -> float:
        """CPU seconds while sampled; a client backend's since it started (a forked backend's
        counters start at zero)."""
        if self.cpu_last is None:
            return 0.0
        return self.cpu_last - ((self.cpu_first or 0.0) if self.kind in BACKGROUND else 0.0)


@dataclass
class Sessions:
    seconds: float
    samples: int
    interval_ms: float
    sessions: dict[int, Session]
    runnable: float  # mean procs_running over the samples
    host_busy: float  # CPU seconds the host's CPUs were busy meanwhile
    cpus: int
    sampler_cpu: float  # the sampler's own backend
    client_cpu: float | None = None  # the client process (set by the caller that knows it)
    client: str = "client process"

    def group(self, worker: bool) -> list[Session]:
        return [s for s in self.sessions.values() if s.kind == "client backend" and s.worker == worker]

    @staticmethod
    def shares(counts: Counter, top: int = 8) -> str:
        total = sum(counts.values())
        if not total:
            return "-"
        shown = [f"{name} {100 * n / total:.1f}%" for name, n in counts.most_common(top) if 100 * n / total >= 0.5]
        rest = total - sum(n for _, n in counts.most_common(top))
        return ", ".join(shown) + (f", other {100 * rest / total:.1f}%" if rest * 200 > total else "")

    def lines(self, what: str) -> list[str]:
        workers, others = self.group(True), self.group(False)
        out = [f"  waits        {what}: pg_stat_activity every {self.interval_ms:g} ms, {self.samples:,} samples"
               f" over {self.seconds:.1f} s"]
        spans = [(s.first, s.last) for s in workers if s.first is not None]
        if spans:
            first, last = min(a for a, _ in spans), max(b for _, b in spans)
            out.append(f"    timeline: {first:.2f} s before the first batch statement, {last - first:.2f} s from it to"
                       f" the end of the last, {self.seconds - last:.2f} s after")
        for label, group in (("workers", workers), ("other", others)):
            if not group:
                continue
            states = sum((s.states for s in group), Counter())
            active = sum((s.active for s in group), Counter())
            seen = sum(states.values()) * self.interval_ms / 1000
            out.append(f"    {label} ({len(group)} session{'s' if len(group) > 1 else ''}, {seen:.1f} session-s"
                       f" sampled): {self.shares(states)}")
            if label == "workers":
                kinds = Counter()
                for bucket, n in states.items():
                    kinds[bucket.split(":")[0] if ":" in bucket else bucket] += n
                out.append(f"    workers by kind: {self.shares(kinds, 10)}")
                out.append(f"    workers' active samples by statement: {self.shares(active, 5)}")
                on_cpu = states["CPU"] * self.interval_ms / 1000
                out.append(f"    workers on CPU at once, mean {on_cpu / self.seconds:.2f};"
                           f" host runnable threads, mean {self.runnable:.2f} on {self.cpus} CPUs")
        backend = sum(s.cpu for s in self.sessions.values() if s.kind == "client backend")
        worker_cpu = sum(s.cpu for s in workers)
        background = ", ".join(f"{s.kind} {s.cpu:.2f}" for s in self.sessions.values() if s.kind in BACKGROUND)
        client = "" if self.client_cpu is None else f"{self.client} {self.client_cpu:.2f} s; "
        accounted = backend + (self.client_cpu or 0.0) + self.sampler_cpu + sum(
            s.cpu for s in self.sessions.values() if s.kind in BACKGROUND)
        out.append(f"    CPU seconds: {client}backends {backend:.2f} (workers {worker_cpu:.2f}); {background};"
                   f" sampler {self.sampler_cpu:.2f}; host busy {self.host_busy:.2f} of"
                   f" {self.cpus * self.seconds:.2f} ({self.host_busy - accounted:.2f} not these)")
        return out


class SessionWaits(threading.Thread):
    """Samples the sessions of database `database` on the server of `url` until stop()."""

    def __init__(self, url: URL, database: str, marker: str, interval_ms: float = 10.0,
                 names: dict[str, str] | None = None) -> None:
        super().__init__(daemon=True)
        self.names = by_prefix(names or {})
        self.url = url
        self.database = database
        self.marker = marker
        self.interval = interval_ms / 1000
        self.sessions: dict[int, Session] = {}
        self.samples = 0
        self.runnable = 0
        self.halt = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.client_pid: int | None = None
        self._cpu0 = self._cpu1 = (0, 0)
        self._t0 = self._t1 = 0.0
        self._sampler_cpu = 0.0

    def start(self, client_pid: int | None = None) -> None:  # type: ignore[override]
        self.client_pid = client_pid
        super().start()
        self.ready.wait(10)

    def run(self) -> None:
        try:
            with psycopg.connect(pg(self.url.set(database="postgres")), autocommit=True) as conn:
                own = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
                params = {"db": self.database, "background": list(BACKGROUND)}
                conn.execute(QUERY, params, prepare=True)
                self._t0, self._cpu0 = time.perf_counter(), cpu_times()
                cpu_own0 = proc_cpu(own) or 0.0
                self.ready.set()
                due = time.perf_counter()
                while not self.halt.is_set():
                    rows = conn.execute(QUERY, params, prepare=True).fetchall()
                    self._sample(rows, time.perf_counter() - self._t0)
                    due += self.interval
                    pause = due - time.perf_counter()
                    if pause > 0:
                        self.halt.wait(pause)
                    else:
                        due = time.perf_counter()
                self._t1, self._cpu1 = time.perf_counter(), cpu_times()
                self._sampler_cpu = (proc_cpu(own) or cpu_own0) - cpu_own0
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc
            self.ready.set()

    def _sample(self, rows, at: float) -> None:
        self.samples += 1
        self.runnable += procs_running()
        for pid, kind, state, wtype, wevent, query in rows:
            s = self.sessions.get(pid)
            if s is None:
                s = self.sessions[pid] = Session(pid, kind)
                s.cpu_first = proc_cpu(pid)
            s.cpu_last = proc_cpu(pid) or s.cpu_last
            if kind != "client backend":
                continue
            what = statement(query, self.names)
            if query and self.marker in query:
                s.worker = True
                if state == "active":
                    s.first = at if s.first is None else s.first
                    s.last = at
            if state == "active":
                bucket = "CPU" if wtype is None else f"{wtype}:{wevent}"
                if wtype == "Lock":
                    bucket += f" ({what[:32]})"
                s.active[what] += 1
            else:
                bucket = state or "?"
            s.states[bucket] += 1

    def stop(self) -> Sessions:
        self.halt.set()
        self.join()
        if self.error is not None:
            raise RuntimeError(f"sampling pg_stat_activity failed: {self.error}")
        busy = (self._cpu1[0] - self._cpu0[0]) / TICK
        return Sessions(self._t1 - self._t0, self.samples, self.interval * 1000, self.sessions,
                        self.runnable / max(self.samples, 1), busy, os.cpu_count() or 1, self._sampler_cpu)


def sampled(url: URL, database: str, marker: str, interval_ms: float | None,
            names: dict[str, str] | None = None) -> SessionWaits | None:
    """A sampler for `database`, or None when `interval_ms` is None (not asked for)."""
    return None if interval_ms is None else SessionWaits(url, database, marker, interval_ms, names)
