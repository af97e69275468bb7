"""`orgmig pause` and `orgmig resume`: stop a running data step between two batches, and let
the next `alembic upgrade`/`downgrade` carry on from where it stopped."""

from __future__ import annotations

import argparse
from collections.abc import Callable

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


def _flag(args: argparse.Namespace, pause: bool, nothing: str, said: Callable[[dict], str]) -> int:
    """Ask for a pause (or clear it) on the runs it applies to (and --step); a line for each, as it was."""
    with connected(args) as engine, engine.begin() as conn:
        if not runs.exists(conn):
            raise DatabaseError(MISSING_RUNS)
        flagged = runs.flag_pause(conn, pause, args.step)
    if not flagged:
        print(f"orgmig: {nothing}")
        return 1
    for r in flagged:
        print(said(r))
    return 0


def handle_pause(args: argparse.Namespace) -> int:
    return _flag(args, True, "no unfinished run to pause", lambda r: (
        f"pause requested: run {r['id']} {r['step']} {r['direction']} at key {r['cursor_key']}"
        f" ({r['rows_done']:,}/{r['total_rows']:,} rows); it stops after its current batch"))


def handle_resume(args: argparse.Namespace) -> int:
    return _flag(args, False, "no paused run", _resumed)


def _resumed(r: dict) -> str:
    verb = "upgrade head" if r["direction"] == "upgrade" else "downgrade <the same target>"
    return (f"resumed: run {r['id']} {r['step']} {r['direction']} ({r['rows_done']:,}/{r['total_rows']:,}"
            f" rows); " + ("it continues now" if r["status"] == "running" else f"run `alembic {verb}` to continue"))
