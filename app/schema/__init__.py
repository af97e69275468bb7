"""SQLAlchemy Core tables matching the DDL of the schema revisions exactly, one module per
revision group, all on one `metadata`.

A test runs Alembic's autogenerate comparison against a migrated database and expects no
differences, so any change here needs a revision and any revision needs a change here.
Revisions restate their DDL and never import this package (a revision is frozen once applied).
"""

from app.schema.base import NOW, TSTZ, metadata
from app.schema.bookkeeping import (
    orgmig_batch,
    orgmig_created_row,
    orgmig_report,
    orgmig_run,
    orgmig_steer,
    orgmig_steer_decision,
    orgmig_user_settings_link,
)
from app.schema.identity import (
    facility,
    org_user_facility,
    orgmig_identity_group,
    orgmig_identity_undo,
    user_identity,
)
from app.schema.idp_snapshot import (
    SNAPSHOT_TABLES,
    idp_export_cursor,
    idp_export_run,
    idp_group,
    idp_membership,
    idp_user,
)
from app.schema.legacy import SECRET_COLUMNS, SETTINGS_COLUMNS, orgmig_baseline, user_settings
from app.schema.org import org, org_user, role, settings, user
from app.schema.writeback import orgmig_writeback

# Not part of the model: alembic's version table, what revision 0004 installs to capture the
# application's writes to user_settings until `orgmig finalize` removes it (the change log and
# an index on the link table; app/steps/user_settings/capture.sql), and the UNLOGGED tables an
# identity sync's plan keeps its desired state in until revision 0007's downgrade drops them
# (app/steps/identity/plan.sql, plan_tables).
NOT_MODELLED = frozenset({"alembic_version", "orgmig_user_settings_change", "ix_orgmig_user_settings_link_user_id",
                          "orgmig_identity_plan", "orgmig_identity_plan_member", "orgmig_identity_plan_run"})


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's `include_object` for comparing this model with a database."""
    return not (reflected and compare_to is None and name in NOT_MODELLED)


__all__ = [
    "NOT_MODELLED", "NOW", "SECRET_COLUMNS", "SETTINGS_COLUMNS", "SNAPSHOT_TABLES", "TSTZ", "facility",
    "idp_export_cursor", "idp_export_run", "idp_group", "idp_membership", "idp_user", "include_object",
    "metadata",
    "org", "org_user", "org_user_facility", "orgmig_baseline", "orgmig_batch",
    "orgmig_created_row", "orgmig_identity_group", "orgmig_identity_undo", "orgmig_report",
    "orgmig_run", "orgmig_steer", "orgmig_steer_decision",
    "orgmig_writeback", "orgmig_user_settings_link", "role", "settings", "user", "user_identity",
    "user_settings",
]
