"""`orgmig work [--step NAME] [--workers N] [--follow S]`: join a data revision that `alembic upgrade` (or
downgrade) is running, from this machine or another pointing at the same database, and take
batches beside it until none is left. The alembic process finishes the run. With no run
running, it applies the application's writes to user_settings captured since revision 0004 ran
(until `orgmig finalize` ends the capture), once, or with `--follow S` every S seconds until
`orgmig finalize` has ended the capture.

Exit codes: 0 no range left to take (or the captured writes applied), 1 a batch failed or the run
was paused, 2 configuration (nothing to do: no unfinished run and no capture, an unknown step)."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.pool import NullPool

from app.batch import Options, join_step, runs
from app.cli.common import add_database_option, connected, whole_number
from app.config import get_settings
from app.errors import ConfigError
from app.numbers import plural
from app.ops.migrations import step_named
from app.steps.user_settings import SQL, STEP
from app.steps.user_settings.finalize import apply_captured, can_apply_now, follow_captured


def register(sub) -> None:
    p = sub.add_parser("work", help="take batches of a running data revision beside the alembic process",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--step", help="the step to join (default: the oldest unfinished run that is running)")
    p.add_argument("--workers", action=whole_number(1, 32), metavar="N",
                   help="workers in this process (default ORGMIG_WORKERS)")
    p.add_argument("--follow", action=whole_number(1, 3600), metavar="S",
                   help="with no run running: apply the captured writes to user_settings every S seconds"
                        " until `orgmig finalize` ends the capture")
    add_database_option(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    settings = get_settings()
    with connected(args, poolclass=NullPool) as engine:
        with engine.connect() as conn:
            row = runs.first_running(conn, args.step)
        if row is None and args.step in (None, STEP.name):
            opts = Options.from_settings(settings)
            if args.follow and _capture_in_force(engine):
                applied = follow_captured(engine, opts, args.follow)
                print(f"{STEP.name}: {applied:,} captured writes to user_settings applied; the capture has"
                      " ended (`orgmig finalize`)", file=sys.stderr)
                return 0
            if _can_apply_now(engine):
                applied = apply_captured(engine, opts)
                print(f"{STEP.name}: {applied:,} captured writes to user_settings applied; the capture"
                      " stays until `orgmig finalize`", file=sys.stderr)
                return 0
        if row is None:
            raise ConfigError("no data revision is running" + (f" step {args.step}" if args.step else "")
                              + ": start `alembic upgrade head` first, then join it")
        step = step_named(row.step, settings)
        opts = Options.from_settings(settings)
        if args.workers:
            opts = Options(**{**opts.__dict__, "workers": args.workers})
        batches = join_step(engine, step, row.direction, opts, resume="`orgmig work`")
    print(f"{row.step} {row.direction}: {plural(batches, 'batch', 'batches')} done by this process; no range left"
          " to take",
          file=sys.stderr)
    return 0


def _capture_in_force(engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(SQL("capture.installed")).scalar_one()


def _can_apply_now(engine) -> bool:
    with engine.connect() as conn:
        return can_apply_now(conn)
