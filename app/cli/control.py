"""`orgmig pause` and `orgmig resume`: stop a running data step between two batches, and let
the next `alembic upgrade`/`downgrade` carry on from where it stopped."""

from __future__ import annotations

import argparse

from app.batch import runs
from app.cli.common import add_database_option, connected
from app.errors import DatabaseError

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


def _flag(args: argparse.Namespace, pause: bool) -> list[dict]:
    """Ask for a pause (or clear it) on the runs it applies to (and --step); return them as they were."""
    with connected(args) as engine, engine.begin() as conn:
        if not runs.exists(conn):
            raise DatabaseError(MISSING_RUNS)
        return runs.flag_pause(conn, pause, args.step)


def handle_pause(args: argparse.Namespace) -> int:
    flagged = _flag(args, True)
    if not flagged:
        print("orgmig: no unfinished run to pause")
        return 1
    for r in flagged:
        print(f"pause requested: run {r['id']} {r['step']} {r['direction']} at key {r['cursor_key']}"
              f" ({r['rows_done']:,}/{r['total_rows']:,} rows); it stops after its current batch")
    return 0


def handle_resume(args: argparse.Namespace) -> int:
    flagged = _flag(args, False)
    if not flagged:
        print("orgmig: no paused run")
        return 1
    for r in flagged:
        verb = "upgrade head" if r["direction"] == "upgrade" else "downgrade <the same target>"
        print(f"resumed: run {r['id']} {r['step']} {r['direction']} ({r['rows_done']:,}/{r['total_rows']:,}"
              f" rows); " + ("it continues now" if r["status"] == "running"
                             else f"run `alembic {verb}` to continue"))
    return 0
