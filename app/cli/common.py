"""What every verb shares: the `--database-url` option, a connected engine, and whole-number
options checked the same way everywhere."""

from __future__ import annotations

import argparse
import contextlib
import functools
from collections.abc import Iterator

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from app import db
from app.errors import ConfigError


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="PostgreSQL URL (default: the DATABASE_URL environment variable)",
    )


def connect(args: argparse.Namespace, **engine_options) -> Engine:
    """An engine for `--database-url` (else DATABASE_URL) that has answered once."""
    engine = db.make_engine(args.database_url, **engine_options)
    db.check_connection(engine)
    return engine


@contextlib.contextmanager
def connected(args: argparse.Namespace, **engine_options) -> Iterator[Engine]:
    """`connect`, disposed of at the end of the block; a driver error inside the block becomes a
    one-line DatabaseError naming the URL without its password."""
    engine = connect(args, **engine_options)
    try:
        yield engine
    except DBAPIError as exc:
        raise db.explain(exc, engine.url) from None
    finally:
        engine.dispose()


class _WholeNumber(argparse.Action):
    """Stores a whole number from `minimum` to `maximum` (underscores allowed: 1_000_000)."""

    def __init__(self, option_strings, dest, *, minimum: int, maximum: int, **kwargs) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.minimum, self.maximum = minimum, maximum

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        try:
            value = int(values.replace("_", ""), 10)
        except ValueError:
            value = None
        if value is None or not self.minimum <= value <= self.maximum:
            # Raised past argparse (which handles only its own ArgumentError here), so `orgmig`
            # ends with this one line and exit 2 instead of a usage dump.
            raise ConfigError(f"{option_string or self.dest} must be a whole number from {self.minimum:,}"
                              f" to {self.maximum:,}, got {values!r}")
        setattr(namespace, self.dest, value)


def whole_number(minimum: int, maximum: int):
    """The argparse action for a whole-number option within [minimum, maximum]:
    `parser.add_argument("--users", action=whole_number(1, 1000))`."""
    return functools.partial(_WholeNumber, minimum=minimum, maximum=maximum)
