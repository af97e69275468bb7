"""Identity-provider snapshot: export runs, per-stream checkpoints, users, groups, memberships.

`orgmig export --provider okta|keycloak|auth0` fills these tables from the provider's API, page by
page, each page committed with its checkpoint; the identity migration then reads them without
ever calling the network inside a transaction. DDL only.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TSTZ = sa.DateTime(timezone=True)
NOW = sa.text("now()")
EMPTY_OBJECT = sa.text("'{}'::jsonb")
PROVIDER_VALID = "provider IN ('okta', 'keycloak', 'auth0')"


def _run_refs(table: str) -> list:
    return [
        sa.Column("first_seen_run_id", sa.BigInteger, nullable=False),
        sa.Column("last_seen_run_id", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(["first_seen_run_id"], ["idp_export_run.id"],
                                name=f"fk_{table}_first_seen_run_id_idp_export_run"),
        sa.ForeignKeyConstraint(["last_seen_run_id"], ["idp_export_run.id"],
                                name=f"fk_{table}_last_seen_run_id_idp_export_run"),
    ]


def _run_ref_indexes(table: str) -> None:
    op.create_index(f"ix_{table}_first_seen_run_id", table, ["first_seen_run_id"])
    op.create_index(f"ix_{table}_last_seen_run_id", table, ["last_seen_run_id"])


def upgrade() -> None:
    op.create_table(
        "idp_export_run",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_idp_export_run"),
        sa.CheckConstraint(PROVIDER_VALID, name=op.f("ck_idp_export_run_provider_valid")),
        sa.CheckConstraint("mode IN ('full', 'incremental')", name=op.f("ck_idp_export_run_mode_valid")),
        sa.CheckConstraint("status IN ('running', 'failed', 'finished', 'abandoned')",
                           name=op.f("ck_idp_export_run_status_valid")),
        sa.CheckConstraint("(mode = 'incremental') = (since IS NOT NULL)",
                           name=op.f("ck_idp_export_run_since_matches_mode")),
    )
    op.create_index("uq_idp_export_run_active", "idp_export_run", ["provider"], unique=True,
                    postgresql_where=sa.text("status IN ('running', 'failed')"))

    op.create_table(
        "idp_export_cursor",
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.Column("stream", sa.String, nullable=False),
        sa.Column("cursor", sa.Text),
        sa.Column("done", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("pages", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("items", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("updated_at", TSTZ, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("run_id", "stream", name="pk_idp_export_cursor"),
        sa.ForeignKeyConstraint(["run_id"], ["idp_export_run.id"],
                                name="fk_idp_export_cursor_run_id_idp_export_run", ondelete="CASCADE"),
    )

    op.create_table(
        "idp_user",
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
        sa.Column("attributes", postgresql.JSONB, nullable=False, server_default=EMPTY_OBJECT),
        sa.Column("raw", postgresql.JSONB, nullable=False),
        *_run_refs("idp_user"),
        sa.PrimaryKeyConstraint("provider", "external_id", name="pk_idp_user"),
        sa.CheckConstraint(PROVIDER_VALID, name=op.f("ck_idp_user_provider_valid")),
    )
    _run_ref_indexes("idp_user")

    op.create_table(
        "idp_group",
        sa.Column("provider", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("external_id", sa.String, nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("description", sa.String),
        sa.Column("group_type", sa.String),
        sa.Column("parent_external_id", sa.String),
        sa.Column("attributes", postgresql.JSONB, nullable=False, server_default=EMPTY_OBJECT),
        sa.Column("raw", postgresql.JSONB, nullable=False),
        *_run_refs("idp_group"),
        sa.PrimaryKeyConstraint("provider", "kind", "external_id", name="pk_idp_group"),
        sa.CheckConstraint(PROVIDER_VALID, name=op.f("ck_idp_group_provider_valid")),
        sa.CheckConstraint("kind IN ('group', 'role', 'organization')", name=op.f("ck_idp_group_kind_valid")),
    )
    _run_ref_indexes("idp_group")

    op.create_table(
        "idp_membership",
        sa.Column("provider", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("group_external_id", sa.String, nullable=False),
        sa.Column("user_external_id", sa.String, nullable=False),
        sa.Column("attributes", postgresql.JSONB, nullable=False, server_default=EMPTY_OBJECT),
        *_run_refs("idp_membership"),
        sa.PrimaryKeyConstraint("provider", "kind", "group_external_id", "user_external_id",
                                name="pk_idp_membership"),
        sa.ForeignKeyConstraint(
            ["provider", "kind", "group_external_id"],
            ["idp_group.provider", "idp_group.kind", "idp_group.external_id"],
            name="fk_idp_membership_provider_idp_group",
            ondelete="CASCADE",
        ),
    )
    _run_ref_indexes("idp_membership")
    op.create_index("ix_idp_membership_provider_user_external_id", "idp_membership",
                    ["provider", "user_external_id"])


def downgrade() -> None:
    op.drop_table("idp_membership")
    op.drop_table("idp_group")
    op.drop_table("idp_user")
    op.drop_table("idp_export_cursor")
    op.drop_index("uq_idp_export_run_active", table_name="idp_export_run")
    op.drop_table("idp_export_run")
