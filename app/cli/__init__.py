"""The `orgmig` command: one parser, one module per verb (each exposing `register(subparsers)`
and a handler that returns the exit code), and one map from errors to exit codes.

Errors a person can act on are `OrgmigError`s: they print as one line on stderr, never a
traceback, and end the command with their `exit_code` (2 for configuration and database errors).
SIGINT and SIGTERM end it the same way (app.interrupt): what is in flight is committed or rolled
back, one line, exit 130 or 143. Standard output whose reader has gone is dropped
(app.cli.output.PipeSafe), the exit code unchanged.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from app import __version__
from app.cli.output import PipeSafe
from app.config import get_settings
from app.errors import OrgmigError
from app.interrupt import exit_code, install, name

# Verb modules, in the order `orgmig --help` lists them, and the commands each registers. A
# command imports only its own module (the others pull in Redis, HTTP and web-server code that
# would add half a second to every command's start-up); `orgmig --help` imports them all.
VERBS = {
    "demo": ("demo",), "status": ("status",), "report": ("report",), "verify": ("verify",),
    "control": ("pause", "resume"), "work": ("work",), "seed": ("seed-legacy",), "export": ("export",),
    "sync": ("sync",), "reconcile": ("reconcile",), "writeback": ("writeback",),
    "migrate_user": ("migrate-user",), "finalize": ("finalize",), "rollback_preview": ("rollback-preview",),
    "serve": ("serve",),
    "collections": ("collections",),
}
MODULE_OF = {command: module for module, commands in VERBS.items() for command in commands}


def _command(argv: list[str]) -> str | None:
    """The command named on the line (the first word that is not an option), if it is one."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in MODULE_OF else None


def _add_verbose(parser: argparse.ArgumentParser, default=False) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="log debug detail")


class _Verbs(argparse._SubParsersAction):
    """Each verb's parser (and a verb's own sub-verbs: `collections plan`) takes `-v` too, so it
    may come before or after the verb; given nowhere, the top-level default stands."""

    def add_parser(self, name, **kwargs):
        parser = super().add_parser(name, **kwargs)
        _add_verbose(parser, default=argparse.SUPPRESS)
        return parser


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Verbs)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given the command line, with only the verb module it names when it names one."""
    parser = _Parser(
        prog="orgmig",
        description="Move users from user_settings and an identity provider into the org schema.",
    )
    parser.add_argument("--version", action="version", version=f"orgmig {__version__}")
    _add_verbose(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    command = _command(sys.argv[1:] if argv is None else argv)
    for module in [MODULE_OF[command]] if command else VERBS:
        importlib.import_module(f"app.cli.{module}").register(sub)
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
    install()
    # A reader that goes away (`orgmig verify | head`) changes nothing but what it reads: the
    # command ends with its own exit code, and no BrokenPipeError.
    stdout, sys.stdout = sys.stdout, PipeSafe(sys.stdout)
    try:
        return _run(argv)
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


def _run(argv: list[str] | None) -> int:
    try:
        args = build_parser(argv).parse_args(argv)
        _setup_logging(args.verbose)
        # The settings are validated first: a wrong ORGMIG_* value ends the command before any work.
        get_settings()
        return int(args.handler(args) or 0)
    except OrgmigError as exc:
        print(f"orgmig: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"orgmig: interrupted ({name()}); run the same command again to go on", file=sys.stderr)
        return exit_code()
