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
    orgmig_identity_todo,
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

__all__ = [
    "NOW", "SECRET_COLUMNS", "SETTINGS_COLUMNS", "SNAPSHOT_TABLES", "TSTZ", "facility",
    "idp_export_cursor", "idp_export_run", "idp_group", "idp_membership", "idp_user", "metadata",
    "org", "org_user", "org_user_facility", "orgmig_baseline", "orgmig_batch",
    "orgmig_created_row", "orgmig_identity_group", "orgmig_identity_todo", "orgmig_identity_undo", "orgmig_report",
    "orgmig_run", "orgmig_steer", "orgmig_steer_decision",
    "orgmig_writeback", "orgmig_user_settings_link", "role", "settings", "user", "user_identity",
    "user_settings",
]
