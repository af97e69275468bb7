"""`orgmig status`: current revision, pending revisions, batch runs and reported rows."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from app import db
from app.cli.common import add_database_option, connected
from app.ops import status


def register(sub) -> None:
    p = sub.add_parser("status", help="show the current revision and the migration bookkeeping")
    add_database_option(p)
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    with connected(args) as engine:
        st = status.collect(engine)
    if args.json:
        print(json.dumps(st.__dict__, default=str, indent=2))
        return 0
    console = Console()
    console.print(f"database: {db.redact(engine.url)}")
    console.print(f"current revision: {', '.join(st.current) or '(none)'}   head: {st.head}")
    console.print(f"pending revisions: {', '.join(st.pending) or 'none'}")
    if st.runs:
        t = Table(title="batch runs (newest first)")
        for col in ("id", "step", "direction", "status", "done/total", "cursor", "updated", "last error"):
            t.add_column(col)
        for r in st.runs:
            t.add_row(
                str(r["id"]), r["step"], r["direction"], r["state"],
                f"{r['rows_done']:,}/{r['total_rows']:,}", str(r["cursor_key"]),
                f"{r['updated_at']:%Y-%m-%d %H:%M:%S%z}", (r["last_error"] or "")[:80],
            )
        console.print(t)
        for r in st.runs:
            if r["state"] == "interrupted":
                console.print(f"run {r['id']} is interrupted: it is marked running, but no live process"
                              " holds it (killed, or its connection dropped); run the same alembic"
                              " command to resume it", soft_wrap=True)
    if st.reports:
        t = Table(title="reported rows")
        for col in ("step", "reason", "migrated", "rows"):
            t.add_column(col)
        for r in st.reports:
            t.add_row(r["step"], r["reason"], "yes" if r["migrated"] else "no", f"{r['rows']:,}")
        console.print(t)
    return 0
