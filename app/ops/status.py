"""What `orgmig status` reports: revisions applied and pending, and the batch engine's state."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine

from app.batch.ledger import live_run_ids
from app.ops import migrations
from app.schema import orgmig_report, orgmig_run


@dataclass
class Status:
    current: tuple[str, ...]
    head: str | None
    pending: list[str]
    runs: list[dict] = field(default_factory=list)
    reports: list[dict] = field(default_factory=list)


def collect(engine: Engine) -> Status:
    script = migrations.script_directory()
    head = script.get_current_head()
    with engine.connect() as conn:
        current = migrations.current_heads(conn)
        applied = set(migrations.applied_revisions(conn))
        pending = [r.revision for r in reversed(list(script.walk_revisions())) if r.revision not in applied]
        status = Status(current=current, head=head, pending=pending)
        if inspect(conn).has_table("orgmig_run"):
            rows = conn.execute(
                select(orgmig_run).order_by(orgmig_run.c.id.desc()).limit(20)
            ).mappings()
            live = live_run_ids(conn)
            # A `running` run whose liveness lock nobody holds lost its process (killed, server
            # restarted): it is shown as interrupted, and the same alembic command resumes it.
            status.runs = [{**r, "live": r["id"] in live,
                            "state": r["status"] if r["id"] in live or r["status"] != "running"
                            else "interrupted"} for r in rows]
            reps = conn.execute(
                select(orgmig_report.c.step, orgmig_report.c.reason, orgmig_report.c.migrated,
                       func.count().label("rows"))
                .group_by(orgmig_report.c.step, orgmig_report.c.reason, orgmig_report.c.migrated)
                .order_by(orgmig_report.c.step, orgmig_report.c.reason)
            ).mappings()
            status.reports = [dict(r) for r in reps]
    return status
