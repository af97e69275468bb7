"""The runs the ledger records (`orgmig_run`), read and flagged from outside the engine's loop, in
one place: every statement is in sql/runs.sql. The engine's own statements are the ledger's
(app.batch.ledger, sql/ledger.sql).

    from app.batch import runs
    if runs.exists(conn):
        for run in runs.unfinished(conn): ...
"""

from __future__ import annotations

from sqlalchemy import Connection

from app.batch.ledger import SQL


def exists(conn: Connection) -> bool:
    """Whether the ledger is there (revision 0003 applied)."""
    return conn.execute(SQL("runs.exists")).scalar_one()


def recent(conn: Connection, limit: int = 20) -> list[dict]:
    """The newest runs, newest first, every column but `settings`."""
    return [dict(r) for r in conn.execute(SQL("runs.recent"), {"limit": limit}).mappings()]


def stats(conn: Connection, ids: list[int]) -> dict[int, dict]:
    """{run id: batches done, retries, rows done in the last minute and since when}."""
    return {s["run_id"]: dict(s) for s in conn.execute(SQL("runs.stats"), {"ids": ids}).mappings()}


def live_workers(conn: Connection) -> dict[int, int]:
    """{run id: workers on it now, of every process} for the runs a live process holds (their
    liveness lock); a `running` run missing here was interrupted: its processes died or lost
    their connections."""
    found: dict[int, int] = {}
    for run_id, _, worker in conn.execute(SQL("runs.live")).all():
        found[run_id] = found.get(run_id, 0) + int(worker)
    return found


def live_ids(conn: Connection) -> set[int]:
    return set(live_workers(conn))


def unfinished(conn: Connection) -> list[dict]:
    """Runs neither finished nor cancelled, oldest first, each with `live`."""
    live = live_ids(conn)
    return [{**row, "live": row["id"] in live} for row in conn.execute(SQL("runs.unfinished")).mappings()]


def one(conn: Connection, run_id: int) -> dict | None:
    """Run `run_id` and how it was run (`settings`, None where it was not recorded)."""
    row = conn.execute(SQL("runs.one"), {"run_id": run_id}).mappings().one_or_none()
    return None if row is None else dict(row)


def last_upgrade(conn: Connection, step: str) -> dict | None:
    """The latest upgrade run of `step` (id, status, rows_done, total_rows), None when none is recorded."""
    row = conn.execute(SQL("runs.last_upgrade"), {"step": step}).mappings().first()
    return None if row is None else dict(row)


def first_running(conn: Connection, step: str | None = None):
    """The oldest running run (of `step`, when given): a row of (step, direction), or None."""
    return conn.execute(SQL("runs.first_running"), {"step": step}).first()


def step_names(conn: Connection, prefix: str) -> set[str]:
    """The names of the steps starting with `prefix` that have a run recorded."""
    return set(conn.execute(SQL("runs.step_names"), {"prefix": prefix}).scalars())


def flag_pause(conn: Connection, pause: bool, step: str | None = None) -> list[dict]:
    """`pause`: ask the unfinished runs (of `step`, when given) to stop after their current batch;
    else clear the request where one was made. Returns those runs as they were, oldest first."""
    rows = conn.execute(SQL("runs.flag_pause"), {"pause": pause, "step": step}).mappings().all()
    return sorted((dict(r) for r in rows), key=lambda r: r["id"])


def reported(conn: Connection) -> list[dict]:
    """The steps' reported rows (orgmig_report) counted by step, reason and whether migrated."""
    return [dict(r) for r in conn.execute(SQL("runs.reported")).mappings()]


def steering(conn: Connection, ids: list[int]) -> dict[int, dict] | None:
    """{run id: its steering as its newest process last wrote it} (sql/steer.sql); None where the
    database has no steering tables (revision 0003 of an earlier orgmig)."""
    if not conn.execute(SQL("steer.has_tables")).scalar_one():
        return None
    return {s["run_id"]: dict(s) for s in conn.execute(SQL("steer.status"), {"ids": ids}).mappings()}
