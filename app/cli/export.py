"""`orgmig export --provider okta|keycloak|auth0`: copy the identity provider's users, groups,
roles, organizations and memberships into the snapshot tables.

Exit codes: 0 finished; 2 configuration or usage error; 1 the export failed (the message names
the endpoint and the HTTP status). Running it again after a failure or a kill resumes the run
from its last committed page; `--restart` sets that run aside and starts a new full one (and
`--since` a new incremental one).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from app import idp
from app.cli.common import add_database_option, connect
from app.config import Settings
from app.errors import ConfigError, OrgmigError


def _bounds(field: str) -> tuple[int, int]:
    """The (ge, le) bounds of a Settings field, so a flag and its variable accept the same."""
    meta = Settings.model_fields[field].metadata
    return (next(m.ge for m in meta if hasattr(m, "ge")), next(m.le for m in meta if hasattr(m, "le")))


CONCURRENCY = Settings.model_fields["export_concurrency"]
CONCURRENCY_MIN, CONCURRENCY_MAX = _bounds("export_concurrency")


def register(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export users, groups and memberships from an identity provider into snapshot tables",
        description="Export users, groups, roles, organizations and memberships from Okta, Keycloak "
                    "or Auth0 into the idp_* snapshot tables. Resumes an interrupted export.",
    )
    p.add_argument("--provider", required=True, choices=idp.PROVIDERS, help="which identity provider to read")
    p.add_argument("--since", metavar="ISO",
                   help="incremental: only what changed since this time (ISO 8601; UTC when no offset given);"
                        " an unfinished run of another kind is set aside, not resumed")
    p.add_argument("--restart", action="store_true",
                   help="do not resume the provider's unfinished export run: set it aside (abandoned: its"
                        " checkpoints are dropped, the rows it read stay until this run replaces them) and"
                        " start a new one")
    p.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object (shape in docs/providers.md); errors stay on stderr")
    add_database_option(p)
    p.add_argument("--concurrency", metavar="N", type=int, default=None,
                   help=f"requests in flight at most ({CONCURRENCY_MIN}-{CONCURRENCY_MAX}, default "
                        f"{CONCURRENCY.validation_alias} or {CONCURRENCY.default}; Okta allows 75 per org)")
    p.set_defaults(handler=handle)


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
    # The errors are reported here, with this verb's prefix, and exit with their own code:
    # 2 configuration or database, 1 the export failed.
    try:
        if args.concurrency is not None and not CONCURRENCY_MIN <= args.concurrency <= CONCURRENCY_MAX:
            raise ConfigError(f"--concurrency must be between {CONCURRENCY_MIN} and {CONCURRENCY_MAX}")
        since = parse_since(args.since)
        settings = idp.load_settings(args.provider)
        engine = connect(args)
        try:
            result = idp.export(args.provider, engine, since=since, concurrency=args.concurrency,
                                settings=settings, restart=args.restart)
        finally:
            engine.dispose()
    except OrgmigError as exc:
        print(f"orgmig export: {exc}", file=sys.stderr)
        return exc.exit_code
    c = result.counts
    if args.json:
        print(json.dumps({"provider": result.provider, "run_id": result.run_id, "mode": result.mode,
                          "since": since.isoformat() if since else None, "resumed": result.resumed,
                          "abandoned_run_id": result.abandoned, "users": c.users,
                          "groups": c.groups, "memberships": c.memberships, "requests": result.requests,
                          "pages": result.pages, "seconds": round(result.seconds, 3)}))
        return 0
    set_aside = f", unfinished run {result.abandoned} abandoned" if result.abandoned is not None else ""
    print(f"{result.provider} export run {result.run_id} finished ({result.mode}"
          f"{', resumed' if result.resumed else ''}{set_aside}): {c.users} users, {c.groups} groups, "
          f"{c.memberships} memberships; {result.requests} requests, {result.seconds:.1f}s")
    return 0
