"""`orgmig seed-legacy --users N [--seed S]`: append synthetic rows to user_settings, awkward ones
included (NULL, blank and shared keycloak_user_ids, unicode, huge JSON, plaintext and ciphertext
secrets, awkward floats), and print how many of each kind the table now holds.

The table must exist: in a new database, run `alembic upgrade 0001` first (revision 0001 creates
it exactly as the legacy application did). The same seed and start id give the same rows.

Exit codes: 0 seeded, 2 configuration or connection (no user_settings, ids past the integer
limit)."""

from __future__ import annotations

import argparse

from sqlalchemy.pool import NullPool

from app.cli.common import add_database_option, connected, whole_number
from app.errors import ConfigError
from app.ops.seed import MAX_USERS, SEEDS, render, seed_legacy


def register(sub) -> None:
    p = sub.add_parser(
        "seed-legacy",
        help="append synthetic legacy users (NULL/blank/duplicate ids, unicode, huge JSON, secrets) to user_settings",
        description=__doc__.split("\n\n")[0], epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--users", required=True, metavar="N", action=whole_number(1, MAX_USERS),
                   help="how many rows to add")
    p.add_argument("--seed", default=0, metavar="S", action=whole_number(*SEEDS),
                   help="pseudo-random seed; the same seed gives the same rows (default 0)")
    add_database_option(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    with connected(args, poolclass=NullPool) as engine:
        try:
            summary = seed_legacy(engine, args.users, args.seed)
        except ValueError as exc:  # the ids would pass the integer limit
            raise ConfigError(str(exc)) from None
    print(render(summary))
    return 0
