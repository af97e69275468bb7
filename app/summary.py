"""The end-of-run summary a person reads: what moved, what was reported, how fast."""

from __future__ import annotations

import logging
import sys

from app.engine import RunResult

log = logging.getLogger("app.summary")


def format_summary(result: RunResult) -> str:
    s = result.summary
    lines = [
        f"{result.step} {result.direction} finished"
        + (" (resumed)" if result.resumed else "")
        + f": {result.rows_done_now:,} rows in {result.seconds:.1f}s"
        f" ({result.rate:,.0f} rows/s), {result.batches:,} batches, {result.retries} retries",
    ]
    if result.direction == "upgrade" and s:
        lines.append(
            f"  legacy rows: {s['legacy_rows']:,}; migrated: {s['linked_total']:,}"
            f" ({s['users_created']:,} users created, {s['users_found']:,} found already migrated)"
        )
        reported = s.get("reported") or {}
        if reported:
            lines.append("  reported: " + ", ".join(f"{n:,} {reason}" for reason, n in reported.items()))
        else:
            lines.append("  reported: none")
        lines.append("  details: orgmig status; rows: SELECT * FROM orgmig_report")
    return "\n".join(lines)


def print_summary(result: RunResult) -> None:
    text = format_summary(result)
    for line in text.splitlines():
        log.info(line)
    if not logging.getLogger("app").isEnabledFor(logging.INFO):
        print(text, file=sys.stderr)
