"""`orgmig work [--step NAME] [--workers N]`: join a data revision that `alembic upgrade` (or
downgrade) is running, from this machine or another pointing at the same database, and take
batches beside it until none is left. The alembic process finishes the run.

Exit codes: 0 no range left to take, 1 a batch failed or the run was paused, 2 configuration (no
unfinished run, an unknown step)."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import text
from sqlalchemy.pool import NullPool

from app.batch import Options
from app.batch.runner import Runner
from app.cli.common import add_database_option, connected, whole_number
from app.config import get_settings
from app.errors import ConfigError
from app.numbers import plural
from app.ops.migrations import step_named


def register(sub) -> None:
    p = sub.add_parser("work", help="take batches of a running data revision beside the alembic process",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--step", help="the step to join (default: the oldest unfinished run that is running)")
    p.add_argument("--workers", action=whole_number(1, 32), metavar="N",
                   help="workers in this process (default ORGMIG_WORKERS)")
    add_database_option(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    settings = get_settings()
    with connected(args, poolclass=NullPool) as engine:
        with engine.connect() as conn:
            row = conn.execute(text(
                "SELECT step, direction FROM orgmig_run WHERE status = 'running'"
                " AND (CAST(:s AS text) IS NULL OR step = :s) ORDER BY id LIMIT 1"), {"s": args.step}).first()
        if row is None:
            raise ConfigError("no data revision is running" + (f" step {args.step}" if args.step else "")
                              + ": start `alembic upgrade head` first, then join it")
        step = step_named(row.step, settings)
        opts = Options.from_settings(settings)
        if args.workers:
            opts = Options(**{**opts.__dict__, "workers": args.workers})
        batches = Runner(engine, step, row.direction, opts, resume="`orgmig work`").join()
    print(f"{row.step} {row.direction}: {plural(batches, 'batch', 'batches')} done by this process; no range left"
          " to take",
          file=sys.stderr)
    return 0
