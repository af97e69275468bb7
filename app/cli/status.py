"""`orgmig status [--json] [--watch [SECONDS]]`: current revision, pending revisions, the runs of
the batch engine (state, rows done/total, the rate over the last minute, the time left at it,
batches, retries, the workers on it now, the last error) and reported rows. From any process
or machine: everything it shows is in the database."""

from __future__ import annotations

import argparse
import json
import sys
import time

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from app import db
from app.batch import STATUS_APPLICATION, rate_text
from app.cli.common import add_database_option, connected
from app.cli.output import console
from app.ops import status
from app.progress import eta


def register(sub) -> None:
    p = sub.add_parser("status", help="show the current revision and the migration bookkeeping")
    add_database_option(p)
    p.add_argument("--json", action="store_true", help="print the status as JSON (one object a line with --watch)")
    p.add_argument("--watch", nargs="?", const=2.0, type=float, metavar="SECONDS",
                   help="show it again every SECONDS (default 2) until Ctrl-C")
    p.set_defaults(handler=handle)


def steering_line(s: dict) -> str:
    """The run's steering in one line: the allowance and what it is used to, the health signal
    against its baseline, and the reason of the last decision."""
    parts = [f"steering: {s['state']}"]
    if s["allowance_bytes_per_s"] is not None:
        parts.append(f"allowance {rate_text(s['allowance_bytes_per_s'])}"
                     f" (using {rate_text(s['used_bytes_per_s'] or 0)})")
    if s["signal_ms"] is not None and s["baseline_ms"] is not None:
        parts.append(f"commit {s['signal_ms']:.2f} ms against {s['baseline_ms']:.2f} ms before the run"
                     f" ({s['ratio']:.1f}x)")
    return "; ".join(parts) + (f" - {s['reason']}" if s["reason"] else "")


def _render(st: status.Status, where: str) -> Group:
    parts = [Text(f"database: {where}"),
             Text(f"current revision: {', '.join(st.current) or '(none)'}   head: {st.head}"),
             Text(f"pending revisions: {', '.join(st.pending) or 'none'}")]
    if st.runs:
        t = Table(title="batch runs (newest first)")
        for col in ("id", "step", "direction", "state", "done/total", "rows/s (1 min)", "ETA", "batches",
                    "retries", "workers", "updated", "last error"):
            t.add_column(col)
        for r in st.runs:
            t.add_row(
                str(r["id"]), r["step"], r["direction"], r["state"],
                f"{r['rows_done']:,}/{r['total_rows']:,}",
                f"{r['rate_last_minute']:,.0f}" if r["rate_last_minute"] else "-",
                eta(r["eta_seconds"]) if r["eta_seconds"] is not None else "-",
                f"{r['batches']:,}", f"{r['retries']:,}", "-" if r["workers"] is None else str(r["workers"]),
                f"{r['updated_at']:%Y-%m-%d %H:%M:%S%z}", (r["last_error"] or "")[:80],
            )
        parts.append(t)
        for r in st.runs:
            if r.get("steering") and r["state"] in ("running", "paused", "interrupted"):
                parts.append(Text(f"run {r['id']} {steering_line(r['steering'])}"))
            if r["state"] == "interrupted":
                parts.append(Text(f"run {r['id']} is interrupted: it is marked running, but no live process"
                                  " holds it (killed, or its connection dropped); run the same alembic"
                                  " command to resume it"))
    if st.reports:
        t = Table(title="reported rows")
        for col in ("step", "reason", "migrated", "rows"):
            t.add_column(col)
        for r in st.reports:
            t.add_row(r["step"], r["reason"], "yes" if r["migrated"] else "no", f"{r['rows']:,}")
        parts.append(t)
    return Group(*parts)


def handle(args: argparse.Namespace) -> int:
    # Named, so a run's steering does not count this watcher as an application (app.batch.health).
    with connected(args, connect_args={"application_name": STATUS_APPLICATION}) as engine:
        where = db.redact(engine.url)
        out = console()

        def show() -> None:
            st = status.collect(engine)
            if args.json:
                print(json.dumps(st.__dict__, default=str, indent=None if args.watch else 2))
            else:
                out.print(_render(st, where))
            sys.stdout.flush()  # a watch into a pipe: each refresh as it comes

        if args.watch is None:
            show()
            return 0
        try:
            if args.json or not sys.stdout.isatty():
                # Into a pipe or a file, every refresh is printed in full, one after another.
                while True:
                    show()
                    time.sleep(args.watch)
            with Live(_render(status.collect(engine), where), console=out, refresh_per_second=4) as live:
                while True:
                    time.sleep(args.watch)
                    live.update(_render(status.collect(engine), where))
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: how a watch ends
            return 0
