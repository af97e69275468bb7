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

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from app.idp.providers import PROVIDERS  # the registry: app.idp never imports app.schema
from app.schema.base import NOW, TSTZ, in_values, metadata

RUN_MODES = ("full", "incremental")
RUN_STATUSES = ("running", "failed", "finished", "abandoned")
GROUP_KINDS = ("group", "role", "organization")

EMPTY_OBJECT = text("'{}'::jsonb")


def _run_ref(name: str, nullable: bool = False) -> Column:
    return Column(name, BigInteger, ForeignKey("idp_export_run.id"), nullable=nullable, index=True)


idp_export_run = Table(
    "idp_export_run",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("provider", String, nullable=False),
    Column("mode", String, nullable=False),
    Column("since", TSTZ),
    Column("status", String, nullable=False, server_default=text("'running'")),
    Column("requests", BigInteger, nullable=False, server_default=text("0")),
    Column("users_count", BigInteger),
    Column("groups_count", BigInteger),
    Column("memberships_count", BigInteger),
    Column("last_error", Text),
    Column("started_at", TSTZ, nullable=False, server_default=NOW),
    Column("updated_at", TSTZ, nullable=False, server_default=NOW),
    Column("finished_at", TSTZ),
    CheckConstraint(in_values("provider", PROVIDERS), name="provider_valid"),
    CheckConstraint(in_values("mode", RUN_MODES), name="mode_valid"),
    CheckConstraint(in_values("status", RUN_STATUSES), name="status_valid"),
    CheckConstraint("(mode = 'incremental') = (since IS NOT NULL)", name="since_matches_mode"),
)
# At most one unfinished (running or failed) run per provider: the next export resumes it.
Index(
    "uq_idp_export_run_active",
    idp_export_run.c.provider,
    unique=True,
    postgresql_where=text("status IN ('running', 'failed')"),
)

idp_export_cursor = Table(
    "idp_export_cursor",
    metadata,
    Column("run_id", BigInteger, ForeignKey("idp_export_run.id", ondelete="CASCADE"), nullable=False),
    Column("stream", String, nullable=False),
    Column("cursor", Text),
    Column("done", Boolean, nullable=False, server_default=text("false")),
    Column("pages", Integer, nullable=False, server_default=text("0")),
    Column("items", BigInteger, nullable=False, server_default=text("0")),
    Column("updated_at", TSTZ, nullable=False, server_default=NOW),
    PrimaryKeyConstraint("run_id", "stream"),
)

idp_user = Table(
    "idp_user",
    metadata,
    Column("provider", String, nullable=False),
    Column("external_id", String, nullable=False),
    Column("login", String),
    Column("email", String),
    Column("email_verified", Boolean),
    Column("first_name", String),
    Column("last_name", String),
    Column("status", String, nullable=False),
    Column("idp_created_at", TSTZ),
    Column("idp_updated_at", TSTZ),
    Column("attributes", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    Column("raw", JSONB, nullable=False),
    _run_ref("first_seen_run_id"),
    _run_ref("last_seen_run_id"),
    PrimaryKeyConstraint("provider", "external_id"),
    CheckConstraint(in_values("provider", PROVIDERS), name="provider_valid"),
)

idp_group = Table(
    "idp_group",
    metadata,
    Column("provider", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("external_id", String, nullable=False),
    Column("name", String, nullable=False),
    Column("description", String),
    Column("group_type", String),
    Column("parent_external_id", String),
    Column("attributes", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    Column("raw", JSONB, nullable=False),
    _run_ref("first_seen_run_id"),
    _run_ref("last_seen_run_id"),
    PrimaryKeyConstraint("provider", "kind", "external_id"),
    CheckConstraint(in_values("provider", PROVIDERS), name="provider_valid"),
    CheckConstraint(in_values("kind", GROUP_KINDS), name="kind_valid"),
)

idp_membership = Table(
    "idp_membership",
    metadata,
    Column("provider", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("group_external_id", String, nullable=False),
    Column("user_external_id", String, nullable=False),
    Column("attributes", JSONB, nullable=False, server_default=EMPTY_OBJECT),
    _run_ref("first_seen_run_id"),
    _run_ref("last_seen_run_id"),
    PrimaryKeyConstraint("provider", "kind", "group_external_id", "user_external_id"),
    ForeignKeyConstraint(
        ["provider", "kind", "group_external_id"],
        ["idp_group.provider", "idp_group.kind", "idp_group.external_id"],
        name="fk_idp_membership_provider_idp_group",
        ondelete="CASCADE",
    ),
)
# Memberships of one user (the identity migration reads them user by user).
Index("ix_idp_membership_provider_user_external_id", idp_membership.c.provider, idp_membership.c.user_external_id)

SNAPSHOT_TABLES = (idp_export_run, idp_export_cursor, idp_user, idp_group, idp_membership)
