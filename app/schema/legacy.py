"""Revision 0001: the legacy table, exactly as the legacy DDL (read, never written by an
upgrade), and the baseline row that says whether 0001 created it."""

from __future__ import annotations

import sqlalchemy as sa

from app.schema.base import NOW, TSTZ, metadata

user_settings = sa.Table(
    "user_settings",
    metadata,
    sa.Column("id", sa.Integer, sa.Identity(always=False), primary_key=True),
    sa.Column("keycloak_user_id", sa.String, index=True),
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
    sa.Column("accepted_tos", sa.DateTime(timezone=False)),
    sa.Column("mcp_config", sa.JSON),
    sa.Column("search_api_key", sa.String),
    sa.Column("sandbox_api_key", sa.String),
    sa.Column("max_budget_per_task", sa.Double),
    sa.Column("enable_solvability_analysis", sa.Boolean),
    sa.Column("email", sa.String),
    sa.Column("email_verified", sa.Boolean),
    sa.Column("git_user_name", sa.String),
    sa.Column("git_user_email", sa.String),
    sa.PrimaryKeyConstraint("id", name="user_settings_pkey"),
)
# The legacy index keeps the name the legacy DDL gave it.
next(iter(user_settings.indexes)).name = "ix_user_settings_keycloak_user_id"

# Written by revision 0001: whether it created user_settings (so its downgrade drops only that).
orgmig_baseline = sa.Table(
    "orgmig_baseline",
    metadata,
    sa.Column("id", sa.Boolean, primary_key=True, server_default=sa.text("true")),
    sa.Column("created_user_settings", sa.Boolean, nullable=False),
    sa.Column("recorded_at", TSTZ, nullable=False, server_default=NOW),
    sa.PrimaryKeyConstraint("id", name="orgmig_baseline_pkey"),
    sa.CheckConstraint("id", name="single_row"),
)

# Columns of user_settings that a settings row carries (all but id and keycloak_user_id),
# in table order. The data revision, its verification and its tests all read this list.
SETTINGS_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in user_settings.columns if c.name not in ("id", "keycloak_user_id")
)
# Legacy columns holding application-encrypted secrets: copied byte for byte, never printed.
SECRET_COLUMNS: frozenset[str] = frozenset(
    {"llm_api_key", "llm_api_key_for_byor", "search_api_key", "sandbox_api_key"}
)

