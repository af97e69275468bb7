"""Revision 0001: the legacy table, exactly as the legacy DDL (read, never written by an
upgrade), and the baseline row that says whether 0001 created it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    Identity,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    text,
)

from app.schema.base import NOW, TSTZ, metadata

user_settings = Table(
    "user_settings",
    metadata,
    Column("id", Integer, Identity(always=False), primary_key=True),
    Column("keycloak_user_id", String, index=True),
    Column("language", String),
    Column("agent", String),
    Column("max_iterations", Integer),
    Column("security_analyzer", String),
    Column("confirmation_mode", Boolean),
    Column("llm_model", String),
    Column("llm_api_key", String),
    Column("llm_api_key_for_byor", String),
    Column("llm_base_url", String),
    Column("remote_runtime_resource_factor", Integer),
    Column("enable_default_condenser", Boolean, nullable=False, server_default=text("true")),
    Column("condenser_max_size", Integer),
    Column("user_consents_to_analytics", Boolean),
    Column("billing_margin", Double),
    Column("enable_sound_notifications", Boolean, server_default=text("false")),
    Column("enable_proactive_conversation_starters", Boolean, nullable=False, server_default=text("true")),
    Column("sandbox_base_container_image", String),
    Column("sandbox_runtime_container_image", String),
    Column("user_version", Integer, nullable=False, server_default=text("0")),
    Column("accepted_tos", DateTime(timezone=False)),
    Column("mcp_config", JSON),
    Column("search_api_key", String),
    Column("sandbox_api_key", String),
    Column("max_budget_per_task", Double),
    Column("enable_solvability_analysis", Boolean),
    Column("email", String),
    Column("email_verified", Boolean),
    Column("git_user_name", String),
    Column("git_user_email", String),
    PrimaryKeyConstraint("id", name="user_settings_pkey"),
)
# The legacy index keeps the name the legacy DDL gave it.
next(iter(user_settings.indexes)).name = "ix_user_settings_keycloak_user_id"

# Written by revision 0001: whether it created user_settings (so its downgrade drops only that).
orgmig_baseline = Table(
    "orgmig_baseline",
    metadata,
    Column("id", Boolean, primary_key=True, server_default=text("true")),
    Column("created_user_settings", Boolean, nullable=False),
    Column("recorded_at", TSTZ, nullable=False, server_default=NOW),
    PrimaryKeyConstraint("id", name="orgmig_baseline_pkey"),
    CheckConstraint("id", name="single_row"),
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

