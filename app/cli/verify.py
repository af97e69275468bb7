"""`orgmig verify [--json] [--failed-only]`: run the verification SQL of every applied revision
(alembic/verify/NNNN_*.sql, the same files a DBA runs with psql) and print the failing checks
first, each with its detail, then the passing ones (not with --failed-only), then one line:
`180 checks: 179 passed, 1 failed`.

Exit codes: 0 every check passed, 1 a check failed (or a data revision is still in progress), 2
configuration or connection (no revision applied, a verification file that fails)."""

from __future__ import annotations

import argparse

from app import db
from app.cli.common import add_database_option, connected
from app.cli.output import console, plural
from app.ops import verify


def register(sub) -> None:
    p = sub.add_parser("verify", help="run the verification SQL of the applied revisions",
                       description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n")[1])
    add_database_option(p)
    p.add_argument("--json", action="store_true",
                   help='print {"ok": ..., "checks": [{revision, file, check_name, ok, detail}, ...]}')
    p.add_argument("--failed-only", action="store_true", help="list only the failing checks (and the summary)")
    p.set_defaults(handler=handle)


def summary(checks: list[verify.Check]) -> str:
    failed = sum(1 for c in checks if not c.ok)
    return f"{plural(len(checks), 'check')}: {len(checks) - failed:,} passed, {failed:,} failed"


def handle(args: argparse.Namespace) -> int:
    # A SQL error inside a verification file ends as one line naming the file (app.ops.verify);
    # any other driver error as one line naming the database (connected).
    with connected(args) as engine:
        checks = verify.run(engine)
    failed = [c for c in checks if not c.ok]
    if args.json:
        print(verify.as_json(checks))
        return 1 if failed else 0
    out = console()
    out.print(f"orgmig verify — {db.redact(engine.url)}")
    shown = failed if args.failed_only else failed + [c for c in checks if c.ok]
    if shown:
        from rich.table import Table
        table = Table(box=None, pad_edge=False)
        for column in ("rev", "check", "ok", "detail"):
            table.add_column(column, overflow="fold")
        for c in shown:
            table.add_row(c.revision, c.check_name, "ok" if c.ok else "[red]FAIL[/]", c.detail)
        out.print(table)
    out.print(summary(checks) if not failed else f"[red]{summary(checks)}[/]")
    return 1 if failed else 0
