"""`orgmig writeback --provider auth0|okta|keycloak [--dry-run] [--json] [--concurrency N]`: set the app's
user id on every linked identity-provider account that does not hold it yet (Auth0
app_metadata, an Okta custom profile attribute, a Keycloak user attribute), touching nothing else
on the account. Resumes where a crash or a failure stopped it; `--dry-run` counts, checks with a
read where the value lands (exit 2 with the fix when the real run would stop at once), and writes
nothing; `--json` prints the summary as one JSON object.

Exit codes: 0 done (every link holds its id, or its account is gone at the provider: deleted there,
reported once in orgmig_report with reason writeback_account_gone and not tried again); 1 some
accounts failed (each one line here and a row
in orgmig_report, step writeback:<provider>; running it again tries them again); 2 configuration
(a setting, the credentials, the attribute missing from Okta's user schema or dropped by
Keycloak's user profile, the database)."""

from __future__ import annotations

import argparse
import json
import sys

from sqlalchemy.pool import NullPool

from app import writeback
from app.cli.common import add_database_option, connected, whole_number
from app.config import Settings
from app.provider_names import PROVIDERS

CONCURRENCY = Settings.model_fields["writeback_concurrency"]


def register(sub) -> None:
    p = sub.add_parser("writeback", help="write the app's user ids into the identity provider's accounts",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--provider", required=True, choices=PROVIDERS)
    p.add_argument("--dry-run", action="store_true",
                   help="count what would be written and check where it lands (a read: Okta's user schema,"
                        " Keycloak's user profile); write nothing")
    p.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object (shape in docs/providers.md); errors stay on stderr")
    p.add_argument("--concurrency", metavar="N", action=whole_number(1, 75), default=None,
                   help=f"writes in flight at most (1-75, default {CONCURRENCY.validation_alias} or"
                        f" {CONCURRENCY.default})")
    add_database_option(p)
    p.set_defaults(handler=handle)


def as_json(result: writeback.Result) -> dict:
    """The summary as `--json` prints it (docs/providers.md, "orgmig writeback --json")."""
    out = {"provider": result.provider, "attribute": result.attribute, "target": result.target,
           "dry_run": result.dry_run, "links": result.links, "held_by_export": result.by_snapshot,
           "set_earlier": result.by_record, "gone_earlier": result.gone_before, "to_write": result.to_write,
           "requests": result.requests, "seconds": round(result.seconds, 3)}
    if result.dry_run:
        out["check"] = result.check
    else:
        out.update(written=result.written, found_set=result.present, failed=result.failed, gone=result.gone,
                   not_tried=result.not_tried, halted=result.halted, failures=result.failures)
    return out


def handle(args: argparse.Namespace) -> int:
    with connected(args, poolclass=NullPool) as engine:
        result = writeback.writeback(args.provider, engine, dry_run=args.dry_run, concurrency=args.concurrency)
    if args.json:
        print(json.dumps(as_json(result)))
    held = (f"{result.links:,} linked accounts; {result.by_snapshot:,} hold it already (latest export),"
            f" {result.by_record:,} were set by an earlier write-back")
    if result.gone_before:
        held += f", {result.gone_before:,} gone at the provider (found by an earlier write-back; not tried)"
    if result.dry_run:
        if not args.json:
            checked = f"; checked: {result.check}" if result.check else ""
            print(f"{result.provider} write-back of {result.target} (dry run, nothing written): {held};"
                  f" {result.to_write:,} to write{checked}")
        return 0
    for line in result.failures:
        print(f"orgmig writeback: {line}", file=sys.stderr)
    if result.failed > len(result.failures):
        more = result.failed - len(result.failures)
        print(f"orgmig writeback: ... and {more:,} more failed accounts", file=sys.stderr)
    if not args.json:
        print(f"{result.provider} write-back of {result.target}: {held}; {result.written:,} written,"
              f" {result.present:,} found set, {result.failed:,} failed, {result.gone:,} gone at the provider;"
              f" {result.requests:,} requests, {result.seconds:.1f}s")
    if result.gone:
        which = "1 account is" if result.gone == 1 else f"{result.gone:,} accounts are"
        print(f"orgmig writeback: {which} gone at the provider (404: the user does not exist; deleted since the"
              f" export): reported once, SELECT * FROM orgmig_report WHERE step = 'writeback:{result.provider}'"
              " AND reason = 'writeback_account_gone'; later runs skip them unless an export sees them again",
              file=sys.stderr)
    if result.halted:
        print(f"orgmig writeback: {result.halted}; {result.not_tried:,} accounts not tried", file=sys.stderr)
    if result.failed or result.not_tried:
        which = "1 account failed" if result.failed == 1 else f"{result.failed:,} accounts failed"
        print(f"orgmig writeback: {which}: SELECT * FROM orgmig_report WHERE step = 'writeback:{result.provider}'"
              f" AND reason = 'writeback_failed'; run it again to try {'it' if result.failed == 1 else 'them'} again",
              file=sys.stderr)
        return 1
    return 0
