"""The `orgmig` command: one module per verb, each exposing `register(subparsers)`.

Every verb returns an exit code; errors a person can act on print one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from app import __version__
from app.db import DatabaseError

# Verb modules, in the order `orgmig --help` lists them.
COMMAND_MODULES = (
    "app.cli.demo",
    "app.cli.status",
    "app.cli.verify",
    "app.cli.control",
    "app.cli.seed",
    "app.cli.export",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orgmig",
        description="Move users from user_settings and an identity provider into the org schema.",
    )
    parser.add_argument("--version", action="version", version=f"orgmig {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(message)s",
        datefmt="%H:%M:%S",
    )
    # Alembic's own chatter ("Context impl PostgresqlImpl") is noise for an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except DatabaseError as exc:
        print(f"orgmig: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("orgmig: interrupted", file=sys.stderr)
        return 130


