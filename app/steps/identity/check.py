"""What a sync would do, and how far the tables have drifted from the snapshot, without writing:
the step's own plan and state statements, in a transaction that is always rolled back (orgs and
facilities the snapshot needs are created inside it, so the differences are exactly the ones a
sync would write)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from app import db
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
    """The counts a sync would write, and the reports it would make, by reason."""
    with engine.connect() as conn, db.transaction(conn, statement_timeout_ms=0, rollback=True):
        export = step.export(conn)
        counts = step.build_plan(conn)
        if export is None or counts is None:
            return Plan(step.provider, None)
        reported = dict(conn.exec_driver_sql(
            "SELECT reason, count(*) FROM (SELECT reason FROM orgmig_report WHERE step = %(s)s"
            " UNION ALL SELECT problem FROM idb_user WHERE problem IS NOT NULL"
            " UNION ALL SELECT problem FROM (SELECT DISTINCT external_id, problem FROM idb_member"
            " WHERE problem IS NOT NULL) m"
            " UNION ALL SELECT 'app_edit_newer' FROM (SELECT user_id FROM idb_user_diff WHERE app_edit"
            " UNION SELECT user_id FROM idb_member_diff WHERE app_edit"
            " UNION SELECT user_id FROM idb_facility_diff WHERE app_edit) e"
            # what finish.report_app_users will find once the run has made its links
            " UNION ALL SELECT 'app_user_without_idp_account' FROM \"user\" u"
            " LEFT JOIN user_identity i ON i.provider = %(p)s AND i.user_id = u.id"
            " WHERE (i.user_id IS NULL OR NOT EXISTS (SELECT 1 FROM idp_user x"
            " WHERE x.provider = %(p)s AND x.external_id = i.external_id))"
            " AND NOT EXISTS (SELECT 1 FROM idb_user b WHERE b.new_link AND b.user_id = u.id)"
            ") r GROUP BY reason ORDER BY reason",
            {"s": step.name, "p": step.provider}).all())
        return Plan(step.provider, export.id, counts, reported)


def drift(engine: Engine, step: IdentitySync) -> Drift:
    """Per user, what differs between the tables and the latest finished snapshot: one read-only
    statement (compare.drift), in a read-only transaction."""
    with engine.connect() as conn, db.transaction(conn, statement_timeout_ms=0, rollback=True,
                                                  transaction_read_only="on", work_mem=COMPARE_WORK_MEM):
        export = step.export(conn)
        if export is None:
            raise _no_export(step.provider)
        rows = conn.execute(SQL("compare.drift", chain=CHAIN_FROM_SNAPSHOT),
                            step._params(export_started=export.started_at)).mappings()
        users = [{k: v for k, v in row.items() if v is not None} for row in rows]
        return Drift(step.provider, export.id, users)

