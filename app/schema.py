"""SQLAlchemy Core tables matching the DDL of the schema revisions exactly.

A test runs Alembic's autogenerate comparison against a migrated database and expects no
differences, so any change here needs a revision and any revision needs a change here.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

NOW = text("now()")
TSTZ = DateTime(timezone=True)


def _timestamps() -> list[Column]:
    return [
        Column("created_at", TSTZ, nullable=False, server_default=NOW),
        Column("updated_at", TSTZ, nullable=False, server_default=NOW),
    ]


# --- 0001: the legacy table (read, never written by an upgrade) -------------------------------

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

# --- 0002: the organizational schema ----------------------------------------------------------

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
    *_timestamps(),
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
    *_timestamps(),
    UniqueConstraint("keycloak_user_id"),
    UniqueConstraint("legacy_user_settings_id"),
    CheckConstraint("btrim(keycloak_user_id) <> ''", name="keycloak_user_id_not_blank"),
    CheckConstraint(
        "status IN ('active', 'invited', 'pending', 'disabled')", name="status_valid"
    ),
)

org_user = Table(
    "org_user",
    metadata,
    Column("org_id", UUID(as_uuid=True), ForeignKey("org.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("user.id"), nullable=False, index=True),
    Column("role_id", Integer, ForeignKey("role.id"), nullable=False, index=True),
    Column("status", String, nullable=False, server_default=text("'active'")),
    *_timestamps(),
    PrimaryKeyConstraint("org_id", "user_id"),
    CheckConstraint(
        "status IN ('active', 'invited', 'pending', 'disabled')", name="status_valid"
    ),
)


def _settings_columns() -> list[Column]:
    """The settings payload: every legacy column but the keys, same name and type;
    the naive legacy timestamp becomes timestamptz (converted as UTC)."""
    cols = []
    for c in user_settings.columns:
        if c.name in ("id", "keycloak_user_id"):
            continue
        col_type = TSTZ if c.name == "accepted_tos" else c.type
        cols.append(
            Column(c.name, col_type, nullable=c.nullable, server_default=c.server_default.arg if c.server_default is not None else None)
        )
    return cols


settings = Table(
    "settings",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("org_id", UUID(as_uuid=True), ForeignKey("org.id")),
    Column("user_id", Integer, ForeignKey("user.id")),
    *_settings_columns(),
    *_timestamps(),
    CheckConstraint("num_nonnulls(org_id, user_id) = 1", name="one_owner"),
)
Index("uq_settings_org_id", settings.c.org_id, unique=True, postgresql_where=text("org_id IS NOT NULL"))
Index("uq_settings_user_id", settings.c.user_id, unique=True, postgresql_where=text("user_id IS NOT NULL"))

# --- 0003: migration bookkeeping --------------------------------------------------------------


orgmig_run = Table(
    "orgmig_run",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("step", String, nullable=False),
    Column("direction", String, nullable=False),
    Column("status", String, nullable=False, server_default=text("'running'")),
    Column("batch_size", Integer, nullable=False),
    Column("min_key", BigInteger),
    Column("max_key", BigInteger),
    Column("cursor_key", BigInteger),
    Column("total_rows", BigInteger, nullable=False, server_default=text("0")),
    Column("rows_done", BigInteger, nullable=False, server_default=text("0")),
    Column("pause_requested", Boolean, nullable=False, server_default=text("false")),
    Column("last_error", Text),
    Column("started_at", TSTZ, nullable=False, server_default=NOW),
    Column("updated_at", TSTZ, nullable=False, server_default=NOW),
    Column("finished_at", TSTZ),
    CheckConstraint("direction IN ('upgrade', 'downgrade')", name="direction_valid"),
    CheckConstraint("status IN ('running', 'paused', 'failed', 'finished', 'cancelled')", name="status_valid"),
    CheckConstraint("batch_size > 0", name="batch_size_positive"),
)
# At most one unfinished run per step and direction: a second `upgrade` resumes it.
Index(
    "uq_orgmig_run_active",
    orgmig_run.c.step,
    orgmig_run.c.direction,
    unique=True,
    postgresql_where=text("status NOT IN ('finished', 'cancelled')"),
)

orgmig_batch = Table(
    "orgmig_batch",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("run_id", BigInteger, ForeignKey("orgmig_run.id", ondelete="CASCADE"), nullable=False),
    Column("start_key", BigInteger, nullable=False),
    Column("end_key", BigInteger, nullable=False),
    Column("status", String, nullable=False),
    Column("rows_read", Integer, nullable=False, server_default=text("0")),
    Column("rows_written", Integer, nullable=False, server_default=text("0")),
    Column("attempts", Integer, nullable=False, server_default=text("1")),
    Column("duration_ms", Integer),
    Column("error", Text),
    Column("finished_at", TSTZ, nullable=False, server_default=NOW),
    UniqueConstraint("run_id", "start_key"),
    CheckConstraint("status IN ('claimed', 'succeeded', 'failed')", name="status_valid"),
    CheckConstraint("start_key <= end_key", name="range_ordered"),
)

orgmig_report = Table(
    "orgmig_report",
    metadata,
    Column("id", BigInteger, Identity(always=False), primary_key=True),
    Column("step", String, nullable=False),
    Column("source_table", String, nullable=False),
    Column("source_id", BigInteger, nullable=False),
    Column("reason", String, nullable=False),
    Column("migrated", Boolean, nullable=False),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("run_id", BigInteger, ForeignKey("orgmig_run.id", ondelete="SET NULL"), index=True),
    Column("created_at", TSTZ, nullable=False, server_default=NOW),
    UniqueConstraint("step", "source_table", "source_id", "reason"),
)

# Which target rows a migrated legacy row produced, and which of them the migration created
# (as opposed to found, written earlier by the application). A downgrade removes exactly these.
# No foreign keys: bookkeeping must never stop the application deleting its own rows.
orgmig_user_settings_link = Table(
    "orgmig_user_settings_link",
    metadata,
    Column("user_settings_id", Integer, primary_key=True, autoincrement=False),
    Column("user_id", Integer, nullable=False),
    Column("org_id", UUID(as_uuid=True), nullable=False),
    Column("created_user", Boolean, nullable=False),
    Column("created_org", Boolean, nullable=False),
    Column("created_org_user", Boolean, nullable=False),
    Column("created_settings", Boolean, nullable=False),
    Column("filled_user_columns", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("run_id", BigInteger),
    Column("migrated_at", TSTZ, nullable=False, server_default=NOW),
)

# Reference rows a step created (roles, for instance), so its downgrade removes only those.
orgmig_created_row = Table(
    "orgmig_created_row",
    metadata,
    Column("step", String, nullable=False),
    Column("table_name", String, nullable=False),
    Column("row_key", String, nullable=False),
    Column("created_at", TSTZ, nullable=False, server_default=NOW),
    PrimaryKeyConstraint("step", "table_name", "row_key"),
)

# --- 0005: identity-provider snapshot (defined beside the export code, on this metadata) -----

from app.idp import snapshot_schema as _idp_snapshot_schema  # noqa: E402,F401
