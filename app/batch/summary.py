"""What a run ended with (RunResult) and the summary a person reads: what moved, what was
reported, how fast. It renders whatever the step reports (`{label: count}`) and the step's
reported rows by reason.

The run's figures (rows, time, rate, batches, retried batches) are the ledger's, read by one
query (sql/summary.sql, `run_figures`) and written by the formatters below: the console summary
and `orgmig report` (its page and its JSON) show the same numbers for the same run."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from sqlalchemy import Connection

from app.batch.ledger import SQL
from app.numbers import plural

log = logging.getLogger("app.summary")


@dataclass(frozen=True)
class RunFigures:
    """One run as the ledger has it: rows done of the total, the seconds from its opening to its
    finish (to now while a live process works on it, else to its last update), batches that
    succeeded, batches that took more than one attempt and the attempts past the first."""

    rows_done: int
    total_rows: int
    seconds: float
    batches: int
    retried: int
    extra_attempts: int

    @property
    def rate(self) -> float | None:
        """Average rows per second over the run's time."""
        return self.rows_done / self.seconds if self.seconds > 0 else None


def run_figures(conn: Connection, run_id: int, live: bool = False) -> RunFigures:
    row = conn.execute(SQL("summary.run_figures"), {"run_id": run_id, "live": live}).mappings().one()
    return RunFigures(**{**row, "seconds": max(row["seconds"], 0.0)})


def fmt_duration(seconds: float) -> str:
    """`3.1 s`, `42 s`, `2 min 05 s`, `1 h 02 min`."""
    s = int(round(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s"


def fmt_rate(per_s: float | None) -> str:
    if per_s is None:
        return "—"
    return f"{per_s:,.1f} rows/s" if per_s < 10 else f"{per_s:,.0f} rows/s"


@dataclass
class RunResult:
    """What this process did (rows, batches, the retries it logged) and the run's figures as the
    ledger has them (None when they could not be read after the run finished)."""

    run_id: int
    step: str
    direction: str
    rows_total: int
    rows_done: int
    batches: int
    retries: int  # retries this process made (batches, claims, phases), as it logged them
    resumed: bool
    figures: RunFigures | None
    summary: dict[str, int] = field(default_factory=dict)
    reported: dict[str, int] = field(default_factory=dict)
    rows_done_now: int = 0  # rows this process did (a resumed run started with some done)


def format_summary(result: RunResult) -> str:
    f = result.figures
    head = f"{result.step} {result.direction} finished" + (" (resumed)" if result.resumed else "")
    if f is None:
        head += (f": {plural(result.rows_done, 'row')}; the run's figures could not be read"
                 f" (`orgmig report {result.run_id} --json` reads them)")
    else:
        head += (f": {plural(f.rows_done, 'row')} in {fmt_duration(f.seconds)} ({fmt_rate(f.rate)}),"
                 f" {plural(f.batches, 'batch', 'batches')}, {f.retried:,} retried")
    if result.resumed:
        head += f"; {plural(result.rows_done_now, 'row')} by this process"
    lines = [head]
    if result.summary:
        # What the step reports is the state of its tables: after a downgrade, what is left.
        state = "after the downgrade: " if result.direction == "downgrade" else ""
        lines.append("  " + state + "; ".join(f"{label}: {n:,}" for label, n in result.summary.items()))
    if result.reported or result.direction == "upgrade":
        lines.append("  reported: " + (", ".join(f"{n:,} {reason}" for reason, n in result.reported.items())
                                       or "none"))
        lines.append(f"  details: orgmig report {result.run_id} --html run-{result.run_id}.html; rows:"
                     f" SELECT * FROM orgmig_report WHERE step = '{result.step}'")
    return "\n".join(lines)


def print_summary(result: RunResult) -> None:
    text = format_summary(result)
    for line in text.splitlines():
        log.info(line)
    if not logging.getLogger("app").isEnabledFor(logging.INFO):
        print(text, file=sys.stderr)
