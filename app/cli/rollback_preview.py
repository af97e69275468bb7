"""`orgmig rollback-preview`: what `alembic downgrade 0003` would write back to user_settings before
removing revision 0004's rows (the lossless rollback), by kind. Writes nothing."""

from __future__ import annotations

import argparse

from sqlalchemy.pool import NullPool

from app import db
from app.cli.common import add_database_option, connected
from app.steps.user_settings import SQL


def register(sub) -> None:
    p = sub.add_parser("rollback-preview", help="what a downgrade of revision 0004 would write back to user_settings",
                       description=__doc__.split("\n\n")[0])
    add_database_option(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    with connected(args, poolclass=NullPool) as engine, engine.connect() as conn:
        with db.transaction(conn, statement_timeout_ms=0, rollback=True, TimeZone="UTC"):
            counts = dict(conn.execute(SQL("rollback.preview")).mappings().one())
    for kind, n in counts.items():
        print(f"{n:>10,}  {kind}")
    print("`alembic downgrade 0003` writes these back to user_settings, then removes revision 0004's rows")
    return 0
