"""What the host, the server and the application's backends do while a bench measures: CPU time,
the waits of the application's backends, the WAL written and the checkpoints, the ledger of the
run an upgrade made."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter

import psycopg
from sqlalchemy.engine import URL

from .traffic import APP_NAME


def pg(url: URL) -> str:
    """`url` as psycopg connects to it."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Waits(threading.Thread):
    """Every 200 ms, what the application's active backends wait for (pg_stat_activity), and for
    a lock wait, which statements wait behind whose. From the server's `postgres` database
    (pg_stat_activity is the whole server's), so the sampler is no client of the migrated
    database: the steering would count it as an application (app.batch.health, "alone")."""

    def __init__(self, url: URL) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.counts: Counter = Counter()
        self.blocked: Counter = Counter()
        self.halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(pg(self.url.set(database="postgres")), autocommit=True) as conn:
            while not self.halt.wait(0.2):
                for wtype, wevent, query, blockers in conn.execute(
                        "SELECT a.wait_event_type, a.wait_event, left(a.query, 40),"
                        " (SELECT string_agg(DISTINCT coalesce(nullif(b.application_name, ''), b.backend_type)"
                        "   || ': ' || left(b.query, 40), ' | ') FROM pg_stat_activity b"
                        "  WHERE b.pid = ANY (pg_blocking_pids(a.pid)))"
                        " FROM pg_stat_activity a WHERE a.application_name = %s AND a.state = 'active'"
                        " AND a.datname = %s", (APP_NAME, self.url.database)):
                    self.counts["on CPU" if wtype is None else f"{wtype}:{wevent}"] += 1
                    if wtype == "Lock":
                        self.blocked[(" ".join(query.split()), " ".join((blockers or "?").split()))] += 1

    def stop(self) -> Counter:
        self.halt.set()
        self.join()
        return self.counts


def wait_for_run(url: URL, alembic: subprocess.Popen) -> bool:
    """Until the upgrade's run is open (`orgmig work` joins a running run); False when alembic ended first."""
    with psycopg.connect(pg(url), autocommit=True) as conn:
        while alembic.poll() is None:
            if conn.execute("SELECT 1 FROM orgmig_run WHERE status = 'running'").fetchone():
                return True
            time.sleep(0.02)
    return False


def ledger(url: URL) -> dict:
    """The run as its ledger has it (rows: of a run stopped before its end, those its batches read),
    and whether the capture is in force (until `orgmig finalize`)."""
    with psycopg.connect(pg(url)) as conn:
        row = conn.execute(
            "SELECT r.status, r.total_rows, extract(epoch FROM (SELECT max(finished_at) FROM orgmig_batch b"
            "   WHERE b.run_id = r.id) - r.started_at),"
            " (SELECT count(*) FROM orgmig_batch b WHERE b.run_id = r.id AND b.status = 'succeeded'),"
            " (SELECT coalesce(sum(attempts - 1), 0) FROM orgmig_batch b WHERE b.run_id = r.id),"
            " to_regclass('orgmig_user_settings_change') IS NOT NULL,"
            " (SELECT coalesce(sum(rows_read), 0) FROM orgmig_batch b WHERE b.run_id = r.id AND b.status = 'succeeded')"
            " FROM orgmig_run r WHERE r.step = 'user_settings_to_org' ORDER BY r.id DESC LIMIT 1").fetchone()
    status, rows, batch_seconds, batches, retries, capture_kept, done = row
    return {"status": status, "rows": rows if status == "finished" else done,
            "batch_seconds": float(batch_seconds or 0), "batches": batches, "retries": retries,
            "capture_kept": capture_kept}


def wal_state(url: URL) -> dict:
    """WAL written so far, WAL segment files, checkpoints (all of the server: other sessions'
    checkpoints show here too, CREATE DATABASE asks for one)."""
    with psycopg.connect(pg(url), autocommit=True) as conn:
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

