"""`orgmig seed-legacy`: fill user_settings with synthetic rows, awkward ones included."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.pool import NullPool

from app import db
from app.ops.seed import render, seed_legacy

MAX_USERS = 50_000_000


def register(sub) -> None:
    p = sub.add_parser(
        "seed-legacy",
        help="append synthetic legacy users (NULL/blank/duplicate ids, unicode, huge JSON, secrets) to user_settings",
    )
    from app.cli.common import add_database_option

    p.add_argument("--users", required=True, metavar="N", help="how many rows to add")
    p.add_argument("--seed", default="0", metavar="S", help="pseudo-random seed; the same seed gives the same rows (default 0)")
    add_database_option(p)
    p.set_defaults(handler=handle)


def _whole_number(name: str, raw: str, minimum: int, maximum: int) -> int | None:
    try:
        value = int(raw.replace("_", ""), 10)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum:
        print(f"orgmig: {name} must be a whole number from {minimum:,} to {maximum:,}, got {raw!r}", file=sys.stderr)
        return None
    return value


def handle(args: argparse.Namespace) -> int:
    users = _whole_number("--users", args.users, 1, MAX_USERS)
    seed = _whole_number("--seed", args.seed, -(2**63), 2**63 - 1)
    if users is None or seed is None:
        return 2
    engine = db.make_engine(args.database_url, poolclass=NullPool)
    try:
        db.check_connection(engine)
        try:
            summary = seed_legacy(engine, users, seed)
        except ValueError as exc:
            print(f"orgmig: {exc}", file=sys.stderr)
            return 2
    finally:
        engine.dispose()
    print(render(summary))
    return 0
