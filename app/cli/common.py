"""What every verb shares: the `--database-url` option and a connected engine."""

from __future__ import annotations

import argparse

from sqlalchemy import Engine

from app import db


def connect(args: argparse.Namespace) -> Engine:
    """An engine for `--database-url` (else DATABASE_URL) that has answered once."""
    engine = db.make_engine(args.database_url)
    db.check_connection(engine)
    return engine


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="PostgreSQL URL (default: the DATABASE_URL environment variable)",
    )
