"""`orgmig pause` and `orgmig resume`: stop a running data step between two batches, and let
the next `alembic upgrade`/`downgrade` carry on from where it stopped."""

from __future__ import annotations

import argparse

from sqlalchemy import ColumnElement, func, select, text, update

from app.cli.common import add_database_option, connected
from app.errors import DatabaseError
from app.schema import orgmig_run

MISSING_RUNS = "orgmig_run does not exist: run `alembic upgrade head` first"


def register(sub) -> None:
    p = sub.add_parser("pause", help="ask running data steps to stop after their current batch")
    add_database_option(p)
    p.add_argument("--step", help="only this step (default: every unfinished run)")
    p.set_defaults(handler=handle_pause)
    r = sub.add_parser("resume", help="clear a pause so the same alembic command continues the run")
    add_database_option(r)
    r.add_argument("--step", help="only this step (default: every paused run)")
    r.set_defaults(handler=handle_resume)


_RUN_COLUMNS = ("id", "step", "direction", "status", "rows_done", "total_rows", "cursor_key")


def _flag(args: argparse.Namespace, which: ColumnElement[bool], value: bool) -> list:
    """Set pause_requested on the runs matching `which` (and --step); return them as they were."""
    run = orgmig_run.c
    with connected(args) as engine, engine.begin() as conn:
        if conn.execute(text("SELECT to_regclass('orgmig_run')")).scalar() is None:
            raise DatabaseError(MISSING_RUNS)
        query = select(*(run[name] for name in _RUN_COLUMNS)).where(which).order_by(run.id)
        if args.step is not None:
            query = query.where(run.step == args.step)
        runs = conn.execute(query).mappings().all()
        if runs:
            conn.execute(update(orgmig_run).where(run.id.in_([r["id"] for r in runs]))
                         .values(pause_requested=value, updated_at=func.now()))
    return runs


def handle_pause(args: argparse.Namespace) -> int:
    runs = _flag(args, orgmig_run.c.status.in_(("running", "failed", "paused")), True)
    if not runs:
        print("orgmig: no unfinished run to pause")
        return 1
    for r in runs:
        print(f"pause requested: run {r['id']} {r['step']} {r['direction']} at key {r['cursor_key']}"
              f" ({r['rows_done']:,}/{r['total_rows']:,} rows); it stops after its current batch")
    return 0


def handle_resume(args: argparse.Namespace) -> int:
    runs = _flag(args, orgmig_run.c.pause_requested, False)
    if not runs:
        print("orgmig: no paused run")
        return 1
    for r in runs:
        verb = "upgrade head" if r["direction"] == "upgrade" else "downgrade <the same target>"
        print(f"resumed: run {r['id']} {r['step']} {r['direction']} ({r['rows_done']:,}/{r['total_rows']:,}"
              f" rows); " + ("it continues now" if r["status"] == "running"
                             else f"run `alembic {verb}` to continue"))
    return 0
