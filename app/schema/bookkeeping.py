"""Revision 0003: the batch engine's ledger, reported rows, and what the user_settings step
created (its link table was created by this revision, so it stays defined here)."""

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
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from app.schema.base import NOW, TSTZ, metadata

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

