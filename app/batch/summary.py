"""What a run ended with (RunResult) and the summary a person reads: what moved, what was
reported, how fast. It renders whatever the step reports (`{label: count}`) and the step's
reported rows by reason."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from app.numbers import plural

log = logging.getLogger("app.summary")


@dataclass
class RunResult:
    run_id: int
    step: str
    direction: str
    rows_total: int
    rows_done: int
    batches: int
    retries: int
    seconds: float
    resumed: bool
    summary: dict[str, int] = field(default_factory=dict)
    reported: dict[str, int] = field(default_factory=dict)
    rows_done_now: int = 0  # rows this process did (a resumed run started with some done)

    @property
    def rate(self) -> float:
        return self.rows_done_now / self.seconds if self.seconds > 0 else 0.0


def format_summary(result: RunResult) -> str:
    lines = [
        f"{result.step} {result.direction} finished" + (" (resumed)" if result.resumed else "")
        + f": {plural(result.rows_done_now, 'row')} in {result.seconds:.1f}s"
        f" ({result.rate:,.0f} rows/s), {plural(result.batches, 'batch', 'batches')},"
        f" {plural(result.retries, 'retry', 'retries')}",
    ]
    if result.summary:
        # What the step reports is the state of its tables: after a downgrade, what is left.
        state = "after the downgrade: " if result.direction == "downgrade" else ""
        lines.append("  " + state + "; ".join(f"{label}: {n:,}" for label, n in result.summary.items()))
    if result.reported or result.direction == "upgrade":
        lines.append("  reported: " + (", ".join(f"{n:,} {reason}" for reason, n in result.reported.items())
                                       or "none"))
        lines.append(f"  details: orgmig status; rows: SELECT * FROM orgmig_report WHERE step = '{result.step}'")
    return "\n".join(lines)


def print_summary(result: RunResult) -> None:
    text = format_summary(result)
    for line in text.splitlines():
        log.info(line)
    if not logging.getLogger("app").isEnabledFor(logging.INFO):
        print(text, file=sys.stderr)
