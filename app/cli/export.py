"""`orgmig export --provider okta|keycloak|auth0`: copy the identity provider's users, groups,
roles, organizations and memberships into the snapshot tables.

Exit codes: 0 finished; 2 configuration or usage error; 1 the export failed (the message names
the endpoint and the HTTP status). Running it again after a failure or a kill resumes the run
from its last committed page.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import UTC, datetime

from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError, OperationalError

from app import db
from app.idp.config import PROVIDERS, ConfigError, load, load_tuning
from app.idp.errors import IdpError, redact
from app.idp.export import Exporter
from app.idp.http import RetryPolicy
from app.schema.idp_snapshot import SNAPSHOT_TABLES

log = logging.getLogger("app.idp")


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export users, groups and memberships from an identity provider into snapshot tables",
        description="Export users, groups, roles, organizations and memberships from Okta, Keycloak "
                    "or Auth0 into the idp_* snapshot tables. Resumes an interrupted export.",
    )
    add_arguments(p)
    p.set_defaults(handler=handle)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", required=True, choices=PROVIDERS, help="which identity provider to read")
    p.add_argument("--since", metavar="ISO",
                   help="incremental: only what changed since this time (ISO 8601; UTC when no offset given)")
    p.add_argument("--database-url", metavar="URL",
                   help="PostgreSQL URL (default: the DATABASE_URL environment variable)")
    p.add_argument("--concurrency", metavar="N", type=int, default=8,
                   help="requests in flight at most (1-75, default 8; Okta allows 75 per org)")


class _RedactingFilter(logging.Filter):
    """Last line of defence: a log record never carries a registered secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def _quiet_http_logs() -> None:
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    flt = _RedactingFilter()
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--since {value!r} is not an ISO 8601 time (e.g. 2025-01-31T00:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def handle(args: argparse.Namespace) -> int:
    _quiet_http_logs()
    try:
        if not 1 <= args.concurrency <= 75:
            raise ConfigError("--concurrency must be between 1 and 75")
        since = parse_since(args.since)
        settings = load(args.provider)
        tuning = load_tuning()
        retry = RetryPolicy(attempts=tuning.retry_attempts, max_delay=tuning.backoff_max_seconds,
                            request_timeout=tuning.request_timeout_seconds,
                            deadline=max(90.0, 3 * tuning.request_timeout_seconds))
        engine = db.make_engine(args.database_url, pool_size=min(args.concurrency, 20) + 2)
    except (ConfigError, db.DatabaseError) as exc:
        print(f"orgmig export: {exc}", file=sys.stderr)
        return 2
    try:
        db.check_connection(engine)
        missing = [t.name for t in SNAPSHOT_TABLES if not inspect(engine).has_table(t.name)]
        if missing:
            print(f"orgmig export: the snapshot tables are missing ({', '.join(missing)}): "
                  "run `alembic upgrade head` first", file=sys.stderr)
            return 2
        exporter = Exporter(args.provider, settings, engine, since=since, concurrency=args.concurrency,
                            retry=retry)
        result = asyncio.run(exporter.run())
    except ConfigError as exc:
        print(f"orgmig export: {exc}", file=sys.stderr)
        return 2
    except db.DatabaseError as exc:
        print(f"orgmig export: {exc}", file=sys.stderr)
        return 2
    except IdpError as exc:
        print(f"orgmig export: {exc}", file=sys.stderr)
        return 1
    except (OperationalError, DBAPIError) as exc:
        print(f"orgmig export: {redact(str(db.explain(exc, engine.url)))}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    c = result.counts
    print(f"{result.provider} export run {result.run_id} finished ({result.mode}"
          f"{', resumed' if result.resumed else ''}): {c.users} users, {c.groups} groups, "
          f"{c.memberships} memberships; {result.requests} requests, {result.seconds:.1f}s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m app.cli_export ...`: the same command without the other verbs."""
    parser = argparse.ArgumentParser(prog="orgmig export", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)-5s %(message)s", datefmt="%H:%M:%S")
    try:
        return handle(args)
    except KeyboardInterrupt:
        print("orgmig export: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
