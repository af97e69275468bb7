"""The pacer the workers call around and after each batch: it meters the run's WAL, holds the
workers to the controller's allowance, and runs the health monitor that feeds the controller.

    with r.tx(conn), crew.pacer.batch(conn):   # the batch's WAL, from pg_current_wal_insert_lsn()
        ...
    crew.pacer.after(rows)                      # after the batch: until the bucket has paid it off

How a run is steered (app.batch.health for the signal, app.batch.controller for the law):

1. ORGMIG_STEER=off: not at all (a maintenance window: nothing holds the run back).
2. A run of at most ROUNDS_TO_STEER rounds of batches is not steered either: it is over before
   a controller could see the effect of a change.
3. Otherwise, before any worker starts: a look at the database's other clients; with none
   (alone) the run starts with no limit and no baseline (7); else the baseline (the run writes
   nothing meanwhile).
4. The first UNPACED_BATCHES batches (at least a round) run unpaced, to measure the rate the run
   reaches unpaced (rows a second times WAL bytes per row, for each worker); the allowance
   starts at START_SHARE of it, in WAL bytes a second. While the allowance is below what the
   workers write unpaced, only as many batches as it keeps busy are in flight at once (one, at
   the start), and no batch is bigger than BATCH_WAL_SECONDS of the allowance: the run's WAL
   comes evenly, not in bursts of every worker's batch or of one batch too big for the
   allowance.
5. A monitor thread probes every `steer_probe_ms` and lets the controller decide; its state
   and every change are written to orgmig_steer / orgmig_steer_decision (`orgmig status`), and
   once a window what it read (action `reading`: the signal over time, `orgmig report`).
6. Every REFRESH_WINDOWS signal windows the workers stop at their next batch, the baseline is
   measured again with nothing of the run in flight, and folded in.
7. Alone on the database (app.batch.health), the run has no limit (state `alone`); when a client
   arrives it drops to a quarter of the rate it wrote alone, and the baseline is measured afresh
   (as in 6, replacing the one of the empty database).

A batch's WAL is the insert position's advance during its transaction, divided by the batches
this process had in flight meanwhile (each worker's delta also holds the others'), per row read.
A batch is charged its rows at the least of the last PER_ROW_BATCHES batches' bytes per row:
the insert position also moves with every other session's WAL (on a busy server one batch can
see megabytes that are not its own), and the least-swollen batch is the nearest to the run's
own. What is left of others' WAL in it is counted against the run: the meter errs on the side
of the application.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import threading
import time
from collections import deque

from sqlalchemy import Connection

from app.batch.context import RunContext
from app.batch.controller import ALONE_REASON, Bucket, Controller, Decision, Law, rate_text
from app.batch.health import PROBES_PER_WINDOW, Health
from app.batch.ledger import SQL, Run

log = logging.getLogger("app.batch")

ROUNDS_TO_STEER = 20
START_SHARE = 0.25
# The allowance never goes under FLOOR_SHARE of the rate the run wrote unpaced, nor under
# FLOOR_BYTES_PER_S: the run always moves. Breaches that go on while it writes almost nothing
# (the host, another database's load) would otherwise halve it window after window to a few rows a second, a
# rate that cannot hurt anyone and cannot finish; held at the floor, three cuts in a row have the
# baseline measured afresh and the raises start again from there.
FLOOR_SHARE = 0.01
FLOOR_BYTES_PER_S = 1024.0
REFRESH_WINDOWS = 120  # 10 minutes at the default 200 ms probe
QUIET_WAIT_S = 60.0  # how long a baseline refresh waits for the batches in flight
PUBLISH_EVERY_S = 1.0
PER_ROW_BATCHES = 20
UNPACED_BATCHES = 5
# While paced, one batch writes at most this many seconds of the allowance: a batch bigger than
# that lands as one burst of WAL that the application's commits flush, then the run sits out the
# bucket. Never fewer rows than LEAST_BATCH_ROWS (each batch has its bookkeeping).
BATCH_WAL_SECONDS = 1.0
LEAST_BATCH_ROWS = 10


def _least_per_row(values) -> float:
    """The least of the last batches' WAL per row: the one least swollen by other sessions' WAL
    written meanwhile."""
    return min(values)


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Pacer:
    def __init__(self, runner: RunContext, run: Run, refresh_windows: int = REFRESH_WINDOWS) -> None:
        self.runner = runner
        self.refresh_windows = refresh_windows
        self.run = run
        self.opts = runner.opts
        self.probe_s = self.opts.steer_probe_ms / 1000
        self.window_s = PROBES_PER_WINDOW * self.probe_s
        self.active = False
        self.controller: Controller | None = None
        self.health: Health | None = None
        self.state = "off"
        self.reason = ""
        self.bucket = Bucket(time.monotonic)
        self._workers = 1
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # in-flight and quiet changes
        self._in_flight = 0
        self._charged: deque[tuple[float, float]] = deque()  # (when, WAL bytes), the last window
        self._unpaced: list[tuple[int, float]] = []  # (rows, seconds) of the batches before the start
        self._per_row: deque[float] = deque(maxlen=PER_ROW_BATCHES)  # WAL bytes per row, last batches
        self._pending: list[tuple[Decision, float | None]] = []  # decisions the monitor writes
        self._rows = 0
        self._bytes = 0.0
        self._quiet = False  # while the baseline is measured again: no batch starts
        self._rebase: str | None = None  # why the baseline is measured afresh (a client arrived, ...)
        self._alone = False  # alone when the run started: no baseline taken
        self._per_worker = 0.0  # WAL bytes a second one worker wrote unpaced
        self._stop = threading.Event()
        self._local = threading.local()
        self._thread: threading.Thread | None = None

    # -- start and stop ---------------------------------------------------------------------

    def start(self, workers: int) -> None:
        """Before the workers start: decide whether to steer, and take the baseline."""
        r, self._workers = self.runner, max(1, workers)
        tables = (r.keys.table, *r.step.analyze_after)
        self.health = Health(r.connect, self.run.id, process_name(), tables, self.probe_s)
        left = max(self.run.total_rows - self.run.rows_done, 0)
        if not self.opts.steer:
            self._say("off", "steering off (ORGMIG_STEER=off): the run is not held back")
            return
        if left <= ROUNDS_TO_STEER * self.opts.batch_size * self._workers:
            self._say("not steered", f"{left:,} rows: at most {ROUNDS_TO_STEER} rounds of batches,"
                      " over before steering could act")
            return
        if self.health.has_tables() is False:
            self.state, self.reason = "not steered", ("orgmig_steer is missing (this database's revision 0003"
                                                      " came from an earlier orgmig): the run is not steered")
            self.health.close()
            log.info("%s: %s", self.runner.label, self.reason)
            return
        spare = self.health.spare_connections()
        if spare is None or spare < self._workers:
            # The workers were counted against the free connections before the probe took one;
            # each opens its own connection next.
            self._say("not steered", "no connection to spare for the health probe beside the"
                      f" {self._workers} workers: the run is not steered")
            return
        self._alone = self.health.look_around() is True
        if self._alone:  # nobody to measure a baseline for: it is taken when a client comes
            self._say("alone", "alone on the database: no baseline until a client comes, no limit")
        else:
            self._say("baseline", "measuring the baseline: the run writes nothing meanwhile")
            base = self.health.take_baseline()
            if base is None:
                self._say("not steered", "the health probe got no answer: the run is not steered")
                return
            log.info("%s: steering: commit baseline %.2f ms (probe every %d ms, breach above %.1fx)",
                     r.label, base.ms, self.opts.steer_probe_ms, self.opts.max_app_latency_ratio)
            self.state, self.reason = "measuring", "the first batches run unpaced, to measure the run's rate"
        self.active = True
        self._publish()
        self._thread = threading.Thread(target=self._monitor, name="orgmig-health", daemon=True)
        self._thread.start()

    def _say(self, state: str, reason: str) -> None:
        self.state, self.reason = state, reason
        self.health.open(state, reason)
        if state not in ("baseline", "alone"):
            self.health.close()  # no probe: its connection is not kept from the workers
            log.info("%s: %s", self.runner.label, reason)

    def close(self) -> None:
        self._stop.set()
        with self._idle:
            self._idle.notify_all()
        if self._thread is not None:
            self._thread.join()
        if self.health is not None:
            if self.active:
                self.state = "done"
                self._write_decisions()
                self._publish()
            self.health.close()

    # -- the workers' side ------------------------------------------------------------------

    @property
    def alone(self) -> bool:
        """Whether the run is alone on the database now (steered, and no other client seen over
        the last window; before the controller starts, as the look before the run found it): the
        crew's batches may grow (app.batch.crew.AloneSize)."""
        if not self.active:
            return False
        controller = self.controller
        return self._alone if controller is None else controller.alone

    @contextlib.contextmanager
    def batch(self, conn: Connection):
        """Around a batch, inside its transaction: the WAL inserted meanwhile, this process's
        batches in flight meanwhile, for after()."""
        if not self.active:
            yield
            return
        with self._idle:
            self._idle.wait_for(self._may_start)
            self._in_flight += 1
            began_with = self._in_flight
        t0 = time.monotonic()
        self._local.measured = None
        try:
            start = conn.execute(SQL("steer.wal_position")).scalar_one()
            yield
            end = conn.execute(SQL("steer.wal_position")).scalar_one()
        finally:
            with self._lock:
                ended_with = self._in_flight
                self._in_flight -= 1
                self._idle.notify_all()
        self._local.measured = (float(end - start) / max(1.0, (began_with + ended_with) / 2),
                                time.monotonic() - t0)

    def _charge(self, rows: int) -> float | None:
        """The batch just done, charged to the bucket at the run's WAL per row; the time until
        which its worker waits (None: no wait)."""
        measured, self._local.measured = getattr(self._local, "measured", None), None
        if measured is None:
            return None
        nbytes, seconds = measured
        now = time.monotonic()
        with self._lock:
            if rows > 0:
                self._per_row.append(nbytes / rows)
                nbytes = rows * _least_per_row(self._per_row)
            self._charged.append((now, nbytes))
            while self._charged and self._charged[0][0] < now - self.window_s:
                self._charged.popleft()
            self._rows += rows
            self._bytes += nbytes
            if self.controller is None:
                self._unpaced.append((rows, seconds))
                if len(self._unpaced) >= max(UNPACED_BATCHES, self._workers):
                    self._begin_steering()
                return None
            return self.bucket.charge(nbytes, self.controller.limit())

    def _begin_steering(self) -> None:
        rows = sum(n for n, _ in self._unpaced)
        seconds = sum(s for _, s in self._unpaced)
        unpaced = self._workers * rows / max(seconds, 1e-3) * _least_per_row(self._per_row or [0.0])
        self._per_worker = unpaced / self._workers
        start = max(START_SHARE * unpaced, 1024.0)
        self.controller = Controller(Law.paced_by(self.window_s, self.opts.max_app_latency_ratio),
                                     time.monotonic, start, max(FLOOR_BYTES_PER_S, FLOOR_SHARE * unpaced))
        self._decided(Decision(time.monotonic(), "start", start,
                               f"{START_SHARE:.0%} of the rate measured unpaced over the first"
                               f" {len(self._unpaced)} batches ({rate_text(unpaced)})"))
        if self._alone:  # as the monitor would decide at its next probe
            self.controller.alone = True
            self._decided(Decision(time.monotonic(), "alone", start, ALONE_REASON))

    def after(self, rows: int, stop: threading.Event | None = None) -> None:
        """After a batch of `rows` rows: wait until the bucket has paid off its WAL at the
        allowance (the allowance changing meanwhile rescales what is left), and while the
        baseline is measured again; `stop` set (the run interrupted) ends the wait."""
        if not self.active:
            return
        due = self._charge(rows)
        limit = self.controller.limit() if self.controller else None
        while due is not None and not self._stop.is_set() and not (stop is not None and stop.is_set()):
            now = time.monotonic()
            if now >= due:
                break
            (stop or self._stop).wait(min(0.25, due - now))
            new = self.controller.limit()
            if new is None:  # alone: no limit any more
                break
            if new != limit and limit:
                now = time.monotonic()
                due = now + max(0.0, due - now) * limit / new
                limit = new
        with self._idle:  # no batch of this worker starts while the baseline is measured
            self._idle.wait_for(self._may_start)

    def claim_size(self, size: int) -> int:
        """How many keys the next claim takes: `size`, unless one batch of it would write more
        than BATCH_WAL_SECONDS of the allowance at the run's WAL per row: then what that many
        seconds allow (at least LEAST_BATCH_ROWS). Unpaced, alone or not yet steered: `size`."""
        limit = self.controller.limit() if self.active and self.controller is not None else None
        with self._lock:
            per_row = _least_per_row(self._per_row) if self._per_row else 0.0
        if limit is None or per_row <= 0:
            return size
        return min(size, max(LEAST_BATCH_ROWS, int(limit * BATCH_WAL_SECONDS / per_row)))

    def _may_start(self) -> bool:
        return self._stop.is_set() or (not self._quiet and self._in_flight < self._concurrency())

    def _concurrency(self) -> int:
        """Batches this process may have in flight: all its workers, unless the allowance is
        below what they would write unpaced: then as many as the allowance keeps busy (at least
        one). More at once would only bunch their WAL into bursts that the application's commits
        flush, and then all wait out the bucket together."""
        limit = self.controller.limit() if self.controller is not None else None
        if limit is None or not self._per_worker:
            return self._workers
        return max(1, min(self._workers, math.ceil(limit / self._per_worker)))

    def used(self) -> float:
        """WAL bytes a second the run wrote over the last window."""
        now = time.monotonic()
        with self._lock:
            total = sum(b for at, b in self._charged if at >= now - self.window_s)
        return total / self.window_s

    # -- the monitor ------------------------------------------------------------------------

    def _monitor(self) -> None:
        refresh_every = self.refresh_windows * PROBES_PER_WINDOW
        published = 0.0
        since_refresh = 0
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                if self.alone:
                    # Nobody to protect: no commit timed (each one flushes the WAL the workers
                    # wrote, while they wait on the WAL buffers it holds), the guards only.
                    self.health.look()
                else:
                    self.health.probe()
                since_refresh += 1
                if self.controller is not None:
                    self._steer()
                    if since_refresh % PROBES_PER_WINDOW == 0:
                        self._note_reading()
                self._write_decisions()
                if self.controller is not None and (
                        self._rebase or (since_refresh >= refresh_every and not self.controller.alone)):
                    self._refresh(fresh=self._rebase)
                    since_refresh, self._rebase = 0, None
                if time.monotonic() - published >= PUBLISH_EVERY_S:
                    self._publish()
                    published = time.monotonic()
                self._stop.wait(max(0.0, self.probe_s - (time.monotonic() - started)))
        except Exception as exc:  # noqa: BLE001 - the run goes on unpaced rather than stopping
            log.warning("%s: steering stopped (%s): the run goes on at its last allowance",
                        self.runner.label, exc)

    def _steer(self) -> None:
        reading = self.health.reading()
        old = self.controller.limit()
        decision = self.controller.decide(reading, self.used())
        if decision is None:
            return
        if decision.allowance != old or decision.action in ("alone", "client"):
            with self._idle:
                self.bucket.rescale(old, self.controller.limit())
                self._idle.notify_all()  # the batches that may be in flight changed with it
        self.reason = decision.reason
        if decision.action != "hold":
            self._decided(decision, reading.ratio)
        if decision.action == "client":
            self._rebase = "a client arrived"
        elif decision.action == "cut" and self.controller.stuck():
            self._rebase = f"the breach outlasted {self.controller.law.cuts_to_rebase} cuts in a row"

    def _note_reading(self) -> None:
        """Once a window, what the controller read (action `reading`, not a change): the signal
        over time for `orgmig report`."""
        f = self.health.figures()
        if f["ratio"] is None:
            return
        self._pending.append((Decision(time.monotonic(), "reading", self.controller.allowance,
                                       f"signal {f['signal_ms']:.2f} ms, baseline {f['baseline_ms']:.2f} ms,"
                                       f" the run writing {rate_text(self.used())}"), f["ratio"]))

    def _decided(self, decision: Decision, ratio: float | None = None) -> None:
        """A change, logged now and written by the monitor thread (the probe's connection is
        its alone)."""
        self.state = "alone" if decision.action == "alone" else "steering"
        self.reason = decision.reason
        log.info("%s: steering: %s to %s: %s", self.runner.label, decision.action,
                 rate_text(None if decision.action == "alone" else decision.allowance), decision.reason)
        self._pending.append((decision, ratio))

    def _write_decisions(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for decision, ratio in pending:
            self.health.record(decision, ratio)

    def _refresh(self, fresh: str | None = None) -> None:
        """The baseline again, with nothing of this process's run in flight: no batch starts
        from the moment the refresh is asked for, and the ones in flight are waited for. Folded
        into the old one, or (`fresh`: why, a client arrived or the breach outlasted the cuts)
        replacing it."""
        with self._idle:
            self._quiet = True
            self.reason = "the workers stop while the baseline is measured " + ("afresh" if fresh else "again")
            if not self._idle.wait_for(lambda: self._in_flight == 0 or self._stop.is_set(), QUIET_WAIT_S):
                self._quiet = False
                self._idle.notify_all()
                return
            self.state = "refreshing baseline"
        try:
            self._publish()
            old = self.health.baseline.ms if self.health.baseline else None
            base = self.health.take_baseline(weight=1.0 if fresh else 0.3, stop=self._stop.is_set)
        finally:
            with self._idle:
                self.state = "steering"
                self._quiet = False
                self._idle.notify_all()
        if base is None:  # stopped, or no answer: nothing measured
            return
        if fresh:
            self.controller.rebased()
        self._decided(Decision(time.monotonic(), "baseline", self.controller.allowance,
                               f"baseline measured {f'afresh ({fresh})' if fresh else 'again'}:"
                               f" {'none' if old is None else f'{old:.2f} ms'} -> {base.ms:.2f} ms"))

    def _publish(self) -> None:
        limit = self.controller.limit() if self.controller else None
        with self._lock:
            per_row = self._bytes / self._rows if self._rows else None
        self.health.publish(state=self.state, allowance=round(limit) if limit else None, used=round(self.used()),
                            bytes_per_row=per_row, reason=self.reason, **self.health.figures())
