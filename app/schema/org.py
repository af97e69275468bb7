"""Revision 0002: the organizational schema."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from app.schema.base import TSTZ, metadata, status_check, timestamps
from app.schema.legacy import user_settings

role = Table(
    "role",
    metadata,
    Column("id", Integer, Identity(always=False), primary_key=True),
    Column("name", String, nullable=False),
    Column("rank", Integer, nullable=False),
    UniqueConstraint("name"),
    CheckConstraint("rank > 0", name="rank_positive"),
)

org = Table(
    "org",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("name", String, nullable=False),
    Column("external_id", String),
    Column("contact_name", String),
    Column("contact_email", String),
    *timestamps(),
    UniqueConstraint("name"),
    CheckConstraint("btrim(name) <> ''", name="name_not_blank"),
)
# Partial unique indexes where most rows hold NULL: same uniqueness, one index write fewer a row.
Index("uq_org_external_id", org.c.external_id, unique=True,
      postgresql_where=text("external_id IS NOT NULL"))

user = Table(
    "user",
    metadata,
    Column("id", Integer, Identity(always=False), primary_key=True),
    Column("keycloak_user_id", String, nullable=False),
    Column("legacy_user_settings_id", Integer),
    Column("current_org_id", UUID(as_uuid=True), ForeignKey("org.id"), index=True),
    Column("status", String, nullable=False, server_default=text("'active'")),
    Column("email", String),
    Column("email_verified", Boolean),
    Column("first_name", String),
    Column("last_name", String),
    Column("accepted_tos", TSTZ),
    Column("enable_sound_notifications", Boolean),
    *timestamps(),
    UniqueConstraint("keycloak_user_id"),
    UniqueConstraint("legacy_user_settings_id"),
    CheckConstraint("btrim(keycloak_user_id) <> ''", name="keycloak_user_id_not_blank"),
    status_check(),
)

org_user = Table(
    "org_user",
    metadata,
    Column("org_id", UUID(as_uuid=True), ForeignKey("org.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("user.id"), nullable=False, index=True),
    Column("role_id", Integer, ForeignKey("role.id"), nullable=False, index=True),
    Column("status", String, nullable=False, server_default=text("'active'")),
    *timestamps(),
    PrimaryKeyConstraint("org_id", "user_id"),
    status_check(),
)


def _settings_columns() -> list[Column]:
    """The settings payload: every legacy column but the keys, same name and type;
    the naive legacy timestamp becomes timestamptz (converted as UTC)."""
    cols = []
    for c in user_settings.columns:
        if c.name in ("id", "keycloak_user_id"):
            continue
        col_type = TSTZ if c.name == "accepted_tos" else c.type
        default = c.server_default.arg if c.server_default is not None else None
        cols.append(Column(c.name, col_type, nullable=c.nullable, server_default=default))
    return cols


settings = Table(
    "settings",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("org_id", UUID(as_uuid=True), ForeignKey("org.id")),
    Column("user_id", Integer, ForeignKey("user.id")),
    *_settings_columns(),
    *timestamps(),
    CheckConstraint("num_nonnulls(org_id, user_id) = 1", name="one_owner"),
)
Index("uq_settings_org_id", settings.c.org_id, unique=True, postgresql_where=text("org_id IS NOT NULL"))
Index("uq_settings_user_id", settings.c.user_id, unique=True, postgresql_where=text("user_id IS NOT NULL"))

