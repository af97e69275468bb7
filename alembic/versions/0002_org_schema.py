"""Organizational schema: role, org, "user", org_user, settings.

New tables only, so no lock is taken on an existing table. Every foreign key has an index behind
it (the org_user primary key covers org_id); `settings` belongs to exactly one org or one user.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op
from app.batch.revision import refuse_to_drop_rows

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATUS_CHECK = "status IN ('active', 'invited', 'pending', 'disabled')"


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    ]


def upgrade() -> None:
    op.create_table(
        "role",
        sa.Column("id", sa.Integer, sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_role"),
        sa.UniqueConstraint("name", name="uq_role_name"),
        sa.CheckConstraint("rank > 0", name=op.f("ck_role_rank_positive")),
    )
    op.create_table(
        "org",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False, server_default=sa.text("gen_random_uuid()")),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("external_id", sa.String),
        sa.Column("contact_name", sa.String),
        sa.Column("contact_email", sa.String),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_org"),
        sa.UniqueConstraint("name", name="uq_org_name"),
        sa.CheckConstraint("btrim(name) <> ''", name=op.f("ck_org_name_not_blank")),
    )
    # Partial unique indexes where most rows hold NULL (personal orgs have no external id; a
    # settings row belongs to an org or a user): same uniqueness, one index write fewer per row.
    op.create_index("uq_org_external_id", "org", ["external_id"], unique=True,
                    postgresql_where=sa.text("external_id IS NOT NULL"))
    op.create_table(
        "user",
        sa.Column("id", sa.Integer, sa.Identity(always=False), nullable=False),
        sa.Column("keycloak_user_id", sa.String, nullable=False),
        sa.Column("legacy_user_settings_id", sa.Integer),
        sa.Column("current_org_id", postgresql.UUID(as_uuid=True)),
        sa.Column("status", sa.String, nullable=False, server_default=sa.text("'active'")),
        sa.Column("email", sa.String),
        sa.Column("email_verified", sa.Boolean),
        sa.Column("first_name", sa.String),
        sa.Column("last_name", sa.String),
        sa.Column("accepted_tos", sa.DateTime(timezone=True)),
        sa.Column("enable_sound_notifications", sa.Boolean),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_user"),
        sa.ForeignKeyConstraint(["current_org_id"], ["org.id"], name="fk_user_current_org_id_org"),
        sa.UniqueConstraint("keycloak_user_id", name="uq_user_keycloak_user_id"),
        sa.UniqueConstraint("legacy_user_settings_id", name="uq_user_legacy_user_settings_id"),
        sa.CheckConstraint("btrim(keycloak_user_id) <> ''", name=op.f("ck_user_keycloak_user_id_not_blank")),
        sa.CheckConstraint(STATUS_CHECK, name=op.f("ck_user_status_valid")),
    )
    op.create_index("ix_user_current_org_id", "user", ["current_org_id"])
    op.create_table(
        "org_user",
        sa.Column("org_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("role_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String, nullable=False, server_default=sa.text("'active'")),
        *_timestamps(),
        sa.PrimaryKeyConstraint("org_id", "user_id", name="pk_org_user"),
        sa.ForeignKeyConstraint(["org_id"], ["org.id"], name="fk_org_user_org_id_org"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name="fk_org_user_user_id_user"),
        sa.ForeignKeyConstraint(["role_id"], ["role.id"], name="fk_org_user_role_id_role"),
        sa.CheckConstraint(STATUS_CHECK, name=op.f("ck_org_user_status_valid")),
    )
    op.create_index("ix_org_user_user_id", "org_user", ["user_id"])
    op.create_index("ix_org_user_role_id", "org_user", ["role_id"])
    op.create_table(
        "settings",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
        sa.Column("org_id", postgresql.UUID(as_uuid=True)),
        sa.Column("user_id", sa.Integer),
        sa.Column("language", sa.String),
        sa.Column("agent", sa.String),
        sa.Column("max_iterations", sa.Integer),
        sa.Column("security_analyzer", sa.String),
        sa.Column("confirmation_mode", sa.Boolean),
        sa.Column("llm_model", sa.String),
        sa.Column("llm_api_key", sa.String),
        sa.Column("llm_api_key_for_byor", sa.String),
        sa.Column("llm_base_url", sa.String),
        sa.Column("remote_runtime_resource_factor", sa.Integer),
        sa.Column("enable_default_condenser", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("condenser_max_size", sa.Integer),
        sa.Column("user_consents_to_analytics", sa.Boolean),
        sa.Column("billing_margin", sa.Double),
        sa.Column("enable_sound_notifications", sa.Boolean, server_default=sa.text("false")),
        sa.Column("enable_proactive_conversation_starters", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("sandbox_base_container_image", sa.String),
        sa.Column("sandbox_runtime_container_image", sa.String),
        sa.Column("user_version", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("accepted_tos", sa.DateTime(timezone=True)),
        sa.Column("mcp_config", sa.JSON),
        sa.Column("search_api_key", sa.String),
        sa.Column("sandbox_api_key", sa.String),
        sa.Column("max_budget_per_task", sa.Double),
        sa.Column("enable_solvability_analysis", sa.Boolean),
        sa.Column("email", sa.String),
        sa.Column("email_verified", sa.Boolean),
        sa.Column("git_user_name", sa.String),
        sa.Column("git_user_email", sa.String),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_settings"),
        sa.ForeignKeyConstraint(["org_id"], ["org.id"], name="fk_settings_org_id_org"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name="fk_settings_user_id_user"),
        sa.CheckConstraint("num_nonnulls(org_id, user_id) = 1", name=op.f("ck_settings_one_owner")),
    )
    op.create_index("uq_settings_org_id", "settings", ["org_id"], unique=True,
                    postgresql_where=sa.text("org_id IS NOT NULL"))
    op.create_index("uq_settings_user_id", "settings", ["user_id"], unique=True,
                    postgresql_where=sa.text("user_id IS NOT NULL"))


def downgrade() -> None:
    # By now revision 0004's downgrade removed the rows it created: any row left is the
    # application's, and dropping it needs -x allow_data_loss=true.
    refuse_to_drop_rows("0002", ["role", "org", '"user"', "org_user", "settings"])
    for table in ("settings", "org_user", "user", "org", "role"):
        op.drop_table(table)
