"""The `orgmig` command: one parser, one module per verb (each exposing `register(subparsers)`
and a handler that returns the exit code), and one map from errors to exit codes.

Errors a person can act on are `OrgmigError`s: they print as one line on stderr, never a
traceback, and end the command with their `exit_code` (2 for configuration and database errors).
An interrupt ends it with 130.
"""

from __future__ import annotations

import argparse
import logging
import sys

from app import __version__
from app.cli import (
    collections,
    control,
    demo,
    export,
    migrate_user,
    reconcile,
    report,
    rollback_preview,
    seed,
    serve,
    status,
    sync,
    verify,
    work,
    writeback,
)
from app.config import get_settings
from app.errors import OrgmigError

# Verb modules, in the order `orgmig --help` lists them.
VERBS = (demo, status, report, verify, control, work, seed, export, sync, reconcile, writeback, migrate_user,
         rollback_preview, serve, collections)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orgmig",
        description="Move users from user_settings and an identity provider into the org schema.",
    )
    parser.add_argument("--version", action="version", version=f"orgmig {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for verb in VERBS:
        verb.register(sub)
    return parser


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-5s %(message)s",
        datefmt="%H:%M:%S",
    )
    # Alembic's own chatter ("Context impl PostgresqlImpl") is noise for an operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        _setup_logging(args.verbose)
        # The settings are validated first: a wrong ORGMIG_* value ends the command before any work.
        get_settings()
        return int(args.handler(args) or 0)
    except OrgmigError as exc:
        print(f"orgmig: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("orgmig: interrupted", file=sys.stderr)
        return 130
