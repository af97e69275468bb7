"""`orgmig finalize`: end the capture of the application's writes to user_settings (the contract
step of revision 0004), once every application instance writes the new tables instead: the
captured changes are applied, then user_settings is taken for a moment, the last changes are
applied and the capture (trigger, change log, index) is removed. From then on, writes to
user_settings reach user_settings only.

Exit codes: 0 the capture ended (or there was none), 1 a run of revision 0004 is unfinished or the
tables could not be taken in time (run it again), 2 configuration or connection."""

from __future__ import annotations

import argparse

from sqlalchemy.pool import NullPool

from app.batch import Options
from app.cli.common import add_database_option, connected
from app.steps.user_settings.finalize import finalize


def register(sub) -> None:
    p = sub.add_parser("finalize", help="end the capture of user_settings writes (after the new app is out)",
                       description=__doc__.split("\n\n")[0])
    add_database_option(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    with connected(args, poolclass=NullPool) as engine:
        done = finalize(engine, Options.from_settings())
    if not done.ended:
        print("orgmig: nothing to finalize: the application's writes to user_settings are not captured"
              " (revision 0004 has not run, or was finalized already)")
        return 0
    print(f"finalized: {done.applied:,} captured changes applied; the capture of user_settings is removed,"
          " and writes to user_settings no longer reach the new tables")
    return 0
