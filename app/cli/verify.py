"""`orgmig verify`: run the verification SQL of every applied revision."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from app import db
from app.cli.common import add_database_option, connected
from app.ops import verify


def register(sub) -> None:
    p = sub.add_parser("verify", help="run the verification SQL of the applied revisions")
    add_database_option(p)
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument("--failed-only", action="store_true", help="list only the failing checks")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    # A SQL error inside a verification file ends as one line naming the file (app.ops.verify);
    # any other driver error as one line naming the database (connected).
    with connected(args) as engine:
        checks = verify.run(engine)
    failed = [c for c in checks if not c.ok]
    if args.json:
        print(verify.as_json(checks))
        return 1 if failed else 0
    console = Console()
    table = Table(title=f"orgmig verify — {db.redact(engine.url)}")
    table.add_column("rev")
    table.add_column("check")
    table.add_column("ok")
    table.add_column("detail", overflow="fold")
    for c in failed if args.failed_only else checks:
        table.add_row(c.revision, c.check_name, "[green]ok[/]" if c.ok else "[red]FAIL[/]", c.detail)
    console.print(table)
    console.print(
        f"{len(checks) - len(failed)} of {len(checks)} checks passed"
        + (f"; [red]{len(failed)} failed[/]" if failed else "")
    )
    return 1 if failed else 0
