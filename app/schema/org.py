"""Revision 0002: the organizational schema."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from app.schema.base import TSTZ, metadata, status_check, timestamps
from app.schema.legacy import user_settings

role = sa.Table(
    "role",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(always=False), primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.UniqueConstraint("name"),
    sa.CheckConstraint("rank > 0", name="rank_positive"),
)

org = sa.Table(
    "org",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("external_id", sa.String),
    sa.Column("contact_name", sa.String),
    sa.Column("contact_email", sa.String),
    *timestamps(),
    sa.UniqueConstraint("name"),
    sa.CheckConstraint("btrim(name) <> ''", name="name_not_blank"),
)
# Partial unique indexes where most rows hold NULL: same uniqueness, one index write fewer a row.
sa.Index("uq_org_external_id", org.c.external_id, unique=True,
      postgresql_where=sa.text("external_id IS NOT NULL"))

user = sa.Table(
    "user",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(always=False), primary_key=True),
    sa.Column("keycloak_user_id", sa.String, nullable=False),
    sa.Column("legacy_user_settings_id", sa.Integer),
    sa.Column("current_org_id", UUID(as_uuid=True), sa.ForeignKey("org.id"), index=True),
    sa.Column("status", sa.String, nullable=False, server_default=sa.text("'active'")),
    sa.Column("email", sa.String),
    sa.Column("email_verified", sa.Boolean),
    sa.Column("first_name", sa.String),
    sa.Column("last_name", sa.String),
    sa.Column("accepted_tos", TSTZ),
    sa.Column("enable_sound_notifications", sa.Boolean),
    *timestamps(),
    sa.Column("is_site_admin", sa.Boolean, nullable=False, server_default=sa.false()),  # 0006
    sa.UniqueConstraint("keycloak_user_id"),
    sa.UniqueConstraint("legacy_user_settings_id"),
    sa.CheckConstraint("btrim(keycloak_user_id) <> ''", name="keycloak_user_id_not_blank"),
    status_check(),
)

org_user = sa.Table(
    "org_user",
    metadata,
    sa.Column("org_id", UUID(as_uuid=True), sa.ForeignKey("org.id"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("user.id"), nullable=False, index=True),
    sa.Column("role_id", sa.Integer, sa.ForeignKey("role.id"), nullable=False, index=True),
    sa.Column("status", sa.String, nullable=False, server_default=sa.text("'active'")),
    *timestamps(),
    sa.Column("all_facilities", sa.Boolean, nullable=False, server_default=sa.false()),  # 0006
    sa.PrimaryKeyConstraint("org_id", "user_id"),
    status_check(),
)

# 0006: email matching compares the trimmed, lower-cased address.
sa.Index("ix_user_email_normalized", sa.text("lower(btrim(email))"), _table=user)


def _settings_columns() -> list[sa.Column]:
    """The settings payload: every legacy column but the keys, same name and type;
    the naive legacy timestamp becomes timestamptz (converted as UTC)."""
    cols = []
    for c in user_settings.columns:
        if c.name in ("id", "keycloak_user_id"):
            continue
        col_type = TSTZ if c.name == "accepted_tos" else c.type
        default = c.server_default.arg if c.server_default is not None else None
        cols.append(sa.Column(c.name, col_type, nullable=c.nullable, server_default=default))
    return cols


settings = sa.Table(
    "settings",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
    sa.Column("org_id", UUID(as_uuid=True), sa.ForeignKey("org.id")),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("user.id")),
    *_settings_columns(),
    *timestamps(),
    sa.CheckConstraint("num_nonnulls(org_id, user_id) = 1", name="one_owner"),
)
sa.Index("uq_settings_org_id", settings.c.org_id, unique=True, postgresql_where=sa.text("org_id IS NOT NULL"))
sa.Index("uq_settings_user_id", settings.c.user_id, unique=True, postgresql_where=sa.text("user_id IS NOT NULL"))

