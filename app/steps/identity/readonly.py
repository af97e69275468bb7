"""What a sync would do, and how far the tables have drifted from the snapshot, without writing:
`--dry-run` runs the sync's own plan in a transaction it rolls back (orgs and facilities the
snapshot needs are created inside it, so the differences are exactly the ones a sync would
write); reconcile runs compare.sql's comparison read-only."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Engine

from app import db
from app.batch import migration_lock
from app.errors import ConfigError
from app.steps.identity import CHAIN_FROM_SNAPSHOT, COMPARE_WORK_MEM, SQL, IdentitySync


@dataclass
class Plan:
    provider: str
    export_id: int | None
    counts: dict[str, int] = field(default_factory=dict)
    reported: dict[str, int] = field(default_factory=dict)


@dataclass
class Drift:
    provider: str
    export_id: int
    users: list[dict] = field(default_factory=list)


def _no_export(provider: str) -> ConfigError:
    return ConfigError(f"{provider} has no finished export: run `orgmig export --provider {provider}` first")


def dry_run(engine: Engine, step: IdentitySync) -> Plan:
    """The counts a sync would write, and the reports it would make, by reason: the sync's own
    plan (compare_plan), in a transaction rolled back."""
    with engine.connect() as conn, db.transaction(conn, statement_timeout_ms=0, rollback=True):
        export = step.export(conn)
        if export is None:
            return Plan(step.provider, None)
        counts = step.compare_plan(conn, export, reports=True)
        reported = Counter(counts.pop("reported"))
        reported.update(dict(conn.execute(SQL("plan.reports_by_reason"), {"step": step.name}).all()))
        return Plan(step.provider, export.id, counts, dict(sorted(reported.items())))


def drift(engine: Engine, step: IdentitySync) -> Drift:
    """Per user, what differs between the tables and the latest finished snapshot: one read-only
    statement (compare.drift), in a read-only transaction, under the migration lock: a sync (or an
    alembic run) in flight is waited for (up to ORGMIG_MIGRATE_LOCK_WAIT_MS, then a line naming
    it), never reported as drift half-applied. One connection holds the lock (a session lock) and
    runs the comparison."""
    with engine.connect() as conn, migration_lock(conn), \
            db.transaction(conn, statement_timeout_ms=0, rollback=True, transaction_read_only="on",
                           work_mem=COMPARE_WORK_MEM):
        export = step.export(conn)
        if export is None:
            raise _no_export(step.provider)
        rows = conn.execute(SQL("compare.drift", chain=CHAIN_FROM_SNAPSHOT),
                            step._params(export_started=export.started_at)).mappings()
        users = [{k: v for k, v in row.items() if v is not None} for row in rows]
        return Drift(step.provider, export.id, users)

