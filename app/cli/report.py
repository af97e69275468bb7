"""`orgmig report RUN_ID --html FILE`: one self-contained HTML page about one run of a data step
(settings, rate over time, batch durations, retries and failures, reported rows by reason with
sample ids, the last error), for a DBA to read or print; `--json`: the same figures on standard
output (docs/runbook.md, "A page about one run"). RUN_ID is the first column of `orgmig status`;
FILE is replaced whole, never left half-written.

Exit codes: 0 written, 2 configuration or connection (no such run, FILE not writable)."""

# app.ops.report gathers, app.ops.report_html draws, app.ops.report_json writes the JSON.

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from sqlalchemy.pool import NullPool

from app.cli.common import add_database_option, connected, whole_number
from app.errors import ConfigError
from app.ops import report, report_html, report_json

MAX_RUN_ID = 2**63 - 1


def register(sub) -> None:
    p = sub.add_parser("report", help="write one HTML page about a run: rate, batch durations, retries, reported rows",
                       description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n")[1])
    p.add_argument("run_id", metavar="RUN_ID", action=whole_number(1, MAX_RUN_ID),
                   help="the run's id (the first column of `orgmig status`)")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--html", metavar="FILE", help="where to write the page (replaced if it exists)")
    out.add_argument("--json", action="store_true", help="print the page's figures as JSON")
    add_database_option(p)
    p.set_defaults(handler=handle)


def _write(path: Path, page: str) -> None:
    """Written beside the target and renamed over it: a reader never sees half a page."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def handle(args: argparse.Namespace) -> int:
    path = None if args.json else Path(args.html)
    if path is not None and path.is_dir():
        raise ConfigError(f"--html {path} is a directory: give a file name, such as {path / 'run.html'}")
    with connected(args, poolclass=NullPool) as engine:
        data = report.collect(engine, args.run_id)
    if path is None:
        print(json.dumps(report_json.as_json(data), indent=2, ensure_ascii=False))
        return 0
    _write(path, report_html.render(data))
    run, t = data.run, data.totals
    print(f"run {run.id} ({run.step} {run.direction}, {run.state}, {t.rows_done:,}/{t.total_rows:,} rows):"
          f" report written to {path}")
    return 0
