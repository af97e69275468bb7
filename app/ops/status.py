"""What `orgmig status` reports: revisions applied and pending, and the batch engine's state."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from app.batch import runs
from app.ops import migrations


@dataclass
class Status:
    current: tuple[str, ...]
    head: str | None
    pending: list[str]
    runs: list[dict] = field(default_factory=list)
    reports: list[dict] = field(default_factory=list)


def collect(engine: Engine) -> Status:
    script = migrations.script_directory()
    head = script.get_current_head()
    with engine.connect() as conn:
        current = migrations.current_heads(conn)
        applied = set(migrations.applied_revisions(conn))
        pending = [r.revision for r in reversed(list(script.walk_revisions())) if r.revision not in applied]
        status = Status(current=current, head=head, pending=pending)
        if runs.exists(conn):
            rows = runs.recent(conn)
            workers = runs.live_workers(conn)
            stats = runs.stats(conn, [r["id"] for r in rows])
            # A `running` run whose liveness lock nobody holds lost its process (killed, server
            # restarted): it is shown as interrupted, and the same alembic command resumes it.
            status.runs = [_with_stats(r, stats.get(r["id"]), workers.get(r["id"])) for r in rows]
            steering = runs.steering(conn, [r["id"] for r in rows])
            if steering is not None:
                for r in status.runs:
                    r["steering"] = _steering(steering.get(r["id"]))
            status.reports = runs.reported(conn)
    return status


def _steering(row) -> dict | None:
    """The run's steering as its newest process last wrote it: state, the WAL allowance, the
    health signal against its baseline and why the allowance last changed (or holds)."""
    if row is None:
        return None
    return {k: row[k] for k in ("state", "allowance_bytes_per_s", "used_bytes_per_s", "wal_bytes_per_row",
                                "signal_ms", "baseline_ms", "ratio", "wal_wait_share", "cpu_pressure",
                                "reason", "decisions", "last_change", "process", "updated_at")}


def _with_stats(run: dict, stats: dict | None, workers: int | None) -> dict:
    """The run with what a person watching it wants: live or interrupted, the workers on it now
    (None when no process holds it: a run does not record how many it had), batches, retries,
    the rate over the last minute and the time left at that rate."""
    live = workers is not None
    rate = 0.0
    if stats and stats["rows_last_minute"] and run["status"] == "running":
        rate = stats["rows_last_minute"] / 60.0
    left = max(run["total_rows"] - run["rows_done"], 0)
    return {
        **run,
        "live": live,
        "state": run["status"] if live or run["status"] != "running" else "interrupted",
        "workers": workers,
        "batches": stats["batches"] if stats else 0,
        "retries": stats["retries"] if stats else 0,
        "rate_last_minute": round(rate, 1),
        "eta_seconds": round(left / rate) if rate > 0 else None,
    }
