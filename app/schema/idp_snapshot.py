"""Revision 0005: the identity-provider snapshot that `orgmig export` fills.

- `idp_export_run`: one export of one provider; at most one unfinished run per provider, which the
  next `orgmig export` resumes.
- `idp_export_cursor`: per run, one row per paged stream (users, groups, members of one group, ...)
  holding the cursor of the next page; written in the same transaction as that page's rows.
- `idp_user`, `idp_group`, `idp_membership`: the provider's current state, keyed by provider and
  external ids, each row tagged with the export run that first and last saw it. A `kind` tells
  groups, roles and organizations apart.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from app.provider_names import PROVIDERS
from app.schema.base import NOW, TSTZ, in_values, metadata

RUN_MODES = ("full", "incremental")
RUN_STATUSES = ("running", "failed", "finished", "abandoned")
GROUP_KINDS = ("group", "role", "organization")

EMPTY_OBJECT = sa.text("'{}'::jsonb")


def _run_ref(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.BigInteger, sa.ForeignKey("idp_export_run.id"), nullable=nullable, index=True)


idp_export_run = sa.Table(
    "idp_export_run",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
    sa.Column("provider", sa.String, nullable=False),
    sa.Column("mode", sa.String, nullable=False),
    sa.Column("since", TSTZ),
    sa.Column("status", sa.String, nullable=False, server_default=sa.text("'running'")),
    sa.Column("requests", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("users_count", sa.BigInteger),
    sa.Column("groups_count", sa.BigInteger),
    sa.Column("memberships_count", sa.BigInteger),
    sa.Column("last_error", sa.Text),
    sa.Column("started_at", TSTZ, nullable=False, server_default=NOW),
    sa.Column("updated_at", TSTZ, nullable=False, server_default=NOW),
    sa.Column("finished_at", TSTZ),
    sa.CheckConstraint(in_values("provider", PROVIDERS), name="provider_valid"),
    sa.CheckConstraint(in_values("mode", RUN_MODES), name="mode_valid"),
    sa.CheckConstraint(in_values("status", RUN_STATUSES), name="status_valid"),
    sa.CheckConstraint("(mode = 'incremental') = (since IS NOT NULL)", name="since_matches_mode"),
)
# At most one unfinished (running or failed) run per provider: the next export resumes it.
sa.Index(
    "uq_idp_export_run_active",
    idp_export_run.c.provider,
    unique=True,
    postgresql_where=sa.text("status IN ('running', 'failed')"),
)

idp_export_cursor = sa.Table(
    "idp_export_cursor",
    metadata,
    sa.Column("run_id", sa.BigInteger, sa.ForeignKey("idp_export_run.id", ondelete="CASCADE"), nullable=False),
    sa.Column("stream", sa.String, nullable=False),
    sa.Column("cursor", sa.Text),
    sa.Column("done", sa.Boolean, nullable=False, server_default=sa.text("false")),
    sa.Column("pages", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("items", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("updated_at", TSTZ, nullable=False, server_default=NOW),
    sa.PrimaryKeyConstraint("run_id", "stream"),
)

idp_user = sa.Table(
    "idp_user",
    metadata,
    sa.Column("provider", sa.String, nullable=False),
    sa.Column("external_id", sa.String, nullable=False),
    sa.Column("login", sa.String),
    sa.Column("email", sa.String),
    sa.Column("email_verified", sa.Boolean),
    sa.Column("first_name", sa.String),
    sa.Column("last_name", sa.String),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("idp_created_at", TSTZ),
    sa.Column("idp_updated_at", TSTZ),
    sa.Column("attributes", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("raw", JSONB, nullable=False),
    _run_ref("first_seen_run_id"),
    _run_ref("last_seen_run_id"),
    # 0006: the surrogate key the identity step walks
    sa.Column("row_id", sa.BigInteger, sa.Identity(always=False), nullable=False),
    sa.UniqueConstraint("row_id"),
    sa.PrimaryKeyConstraint("provider", "external_id"),
    sa.CheckConstraint(in_values("provider", PROVIDERS), name="provider_valid"),
)

idp_group = sa.Table(
    "idp_group",
    metadata,
    sa.Column("provider", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("external_id", sa.String, nullable=False),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("description", sa.String),
    sa.Column("group_type", sa.String),
    sa.Column("parent_external_id", sa.String),
    sa.Column("attributes", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    sa.Column("raw", JSONB, nullable=False),
    _run_ref("first_seen_run_id"),
    _run_ref("last_seen_run_id"),
    # 0006: the surrogate key the identity step walks
    sa.Column("row_id", sa.BigInteger, sa.Identity(always=False), nullable=False),
    sa.UniqueConstraint("row_id"),
    sa.PrimaryKeyConstraint("provider", "kind", "external_id"),
    sa.CheckConstraint(in_values("provider", PROVIDERS), name="provider_valid"),
    sa.CheckConstraint(in_values("kind", GROUP_KINDS), name="kind_valid"),
)

idp_membership = sa.Table(
    "idp_membership",
    metadata,
    sa.Column("provider", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("group_external_id", sa.String, nullable=False),
    sa.Column("user_external_id", sa.String, nullable=False),
    sa.Column("attributes", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    _run_ref("first_seen_run_id"),
    _run_ref("last_seen_run_id"),
    sa.PrimaryKeyConstraint("provider", "kind", "group_external_id", "user_external_id"),
    sa.ForeignKeyConstraint(
        ["provider", "kind", "group_external_id"],
        ["idp_group.provider", "idp_group.kind", "idp_group.external_id"],
        name="fk_idp_membership_provider_idp_group",
        ondelete="CASCADE",
    ),
)
# Memberships of one user (the identity migration reads them user by user).
sa.Index("ix_idp_membership_provider_user_external_id", idp_membership.c.provider, idp_membership.c.user_external_id)

# 0006: email matching compares the trimmed, lower-cased address.
sa.Index("ix_idp_user_email_normalized", idp_user.c.provider, sa.text("lower(btrim(email))"))

SNAPSHOT_TABLES = (idp_export_run, idp_export_cursor, idp_user, idp_group, idp_membership)
# What the identity step plans and compares from: analyzed as an export finishes (a fresh snapshot
# without planner statistics turns the comparison's joins into nested loops).
ACCOUNT_TABLES = (idp_user.name, idp_group.name, idp_membership.name)
