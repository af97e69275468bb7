"""`orgmig report RUN_ID --json`: the figures of the page (app.ops.report_html), machine-readable.
The shape is documented in docs/runbook.md ("A page about one run"); times are ISO 8601 in UTC,
durations in seconds or milliseconds as their key says, absent values null."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from app.ops.report import RunReport, rate_buckets


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def as_json(r: RunReport) -> dict:
    run, t, f = r.run, r.totals, r.figures
    width, buckets = rate_buckets(r.timeline, t.seconds)
    return {
        "run": {
            "id": run.id, "step": run.step, "direction": run.direction, "status": run.status,
            "state": run.state, "live": run.live, "started_at": _when(run.started_at),
            "updated_at": _when(run.updated_at), "finished_at": _when(run.finished_at),
            "cursor_key": run.cursor_key, "max_key": run.max_key, "last_error": run.last_error,
        },
        "settings": run.settings,
        "rows_done": t.rows_done,
        "total_rows": t.total_rows,
        "seconds": t.seconds,
        "rows_per_second": t.rate,
        "batches": {
            "total": f.batches, "succeeded": t.batches, "failed": f.failed, "claimed": f.claimed,
            "retried": t.retried, "extra_attempts": t.extra_attempts, "last_size": run.batch_size,
            "median_ms": f.median_ms, "p95_ms": f.p95_ms, "max_ms": f.max_ms,
        },
        "rate_buckets": {
            "seconds": width,
            "buckets": [{"start_s": b.start_s, "rows": b.rows, "rows_per_second": b.rate} for b in buckets],
        },
        "problems": {
            "total": f.problems,
            "shown": [{**asdict(p), "finished_at": _when(p.finished_at)} for p in r.problems],
        },
        "reported": [asdict(x) for x in r.reasons],
        "steering": None if r.steering is None else asdict(r.steering),
        "database": r.database,
        "generated_at": _when(r.generated_at),
    }
