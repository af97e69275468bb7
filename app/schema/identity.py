"""Revision 0006: the identity provider's data in the org schema (user_identity, facility,
org_user_facility; the new columns of "user" and org_user are in app.schema.org) and the identity
step's bookkeeping (orgmig_identity_group, orgmig_identity_undo, as revision 0009 left it)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from app.provider_names import PROVIDERS
from app.schema.base import NOW, TSTZ, in_values, metadata, timestamps

MATCHED_BY = ("subject", "email", "created")
GROUP_MEANINGS = ("role", "facility", "site_admin", "organization", "ignored", "malformed_group_name",
                  "unknown_role", "invalid_facility_id", "facility_in_two_orgs")
UNDO_TABLES = ("org", "facility", "user", "user_identity", "org_user", "org_user_facility")

user_identity = sa.Table(
    "user_identity",
    metadata,
    sa.Column("provider", sa.String, nullable=False),
    sa.Column("external_id", sa.String, nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("matched_by", sa.String, nullable=False),
    *timestamps(),
    sa.PrimaryKeyConstraint("provider", "external_id"),
    sa.UniqueConstraint("provider", "user_id"),
    sa.CheckConstraint(in_values("provider", PROVIDERS), name="provider_valid"),
    sa.CheckConstraint(in_values("matched_by", MATCHED_BY), name="matched_by_valid"),
)

facility = sa.Table(
    "facility",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("org_id", UUID(as_uuid=True), sa.ForeignKey("org.id"), nullable=False, index=True),
    sa.Column("name", sa.String),
    *timestamps(),
    sa.UniqueConstraint("id", "org_id"),
)

org_user_facility = sa.Table(
    "org_user_facility",
    metadata,
    sa.Column("org_id", UUID(as_uuid=True), nullable=False),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("facility_id", UUID(as_uuid=True), nullable=False),
    sa.Column("created_at", TSTZ, nullable=False, server_default=NOW),
    sa.PrimaryKeyConstraint("org_id", "user_id", "facility_id"),
    sa.ForeignKeyConstraint(["org_id", "user_id"], ["org_user.org_id", "org_user.user_id"],
                            name="fk_org_user_facility_org_id_org_user", ondelete="CASCADE"),
    # the facility is one of that org's
    sa.ForeignKeyConstraint(["facility_id", "org_id"], ["facility.id", "facility.org_id"],
                            name="fk_org_user_facility_facility_id_facility"),
)
sa.Index("ix_org_user_facility_facility_id", org_user_facility.c.facility_id, org_user_facility.c.org_id)

# What each IdP group of a provider means, as the identity step read it from the snapshot.
orgmig_identity_group = sa.Table(
    "orgmig_identity_group",
    metadata,
    sa.Column("provider", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("external_id", sa.String, nullable=False),
    sa.Column("meaning", sa.String, nullable=False),
    sa.Column("org_external_id", sa.String),
    sa.Column("role_name", sa.String),
    sa.Column("facility_id", UUID(as_uuid=True)),
    sa.Column("run_id", sa.BigInteger),
    sa.PrimaryKeyConstraint("provider", "kind", "external_id"),
    sa.CheckConstraint(in_values("meaning", GROUP_MEANINGS), name="meaning_valid"),
)

# Every row the identity step created (before NULL), changed or removed (before = the row as it
# was, the first time the step touched it), and the updated_at it left, so a later sync knows its
# own writes from the application's edits and a downgrade restores exactly. Keyed by the row it
# records (revision 0009: the surrogate id and the index on user_id of revision 0006 are gone; the
# identity downgrade builds that index when it runs, app.steps.identity.USER_ID_INDEX).
orgmig_identity_undo = sa.Table(
    "orgmig_identity_undo",
    metadata,
    sa.Column("provider", sa.String, nullable=False),
    sa.Column("table_name", sa.String, nullable=False),
    sa.Column("row_key", sa.String, nullable=False),
    sa.Column("user_id", sa.Integer),
    sa.Column("before", JSONB),
    sa.Column("applied_updated_at", TSTZ),
    sa.Column("run_id", sa.BigInteger),
    sa.Column("created_at", TSTZ, nullable=False, server_default=NOW),
    sa.PrimaryKeyConstraint("table_name", "row_key"),
    sa.CheckConstraint(in_values("table_name", UNDO_TABLES), name="table_name_valid"),
)

# The IdP accounts a sync run has work for are the rows of its plan (orgmig_identity_plan, UNLOGGED,
# app/steps/identity/plan.sql): revision 0009 dropped revision 0006's logged work list.
