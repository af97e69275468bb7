"""Revision 0003: the batch engine's ledger, reported rows, and what the user_settings step
created (its link table was created by this revision, so it stays defined here)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from app.schema.base import NOW, TSTZ, metadata

orgmig_run = sa.Table(
    "orgmig_run",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
    sa.Column("step", sa.String, nullable=False),
    sa.Column("direction", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False, server_default=sa.text("'running'")),
    sa.Column("batch_size", sa.Integer, nullable=False),
    sa.Column("min_key", sa.BigInteger),
    sa.Column("max_key", sa.BigInteger),
    sa.Column("cursor_key", sa.BigInteger),
    sa.Column("total_rows", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("rows_done", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("pause_requested", sa.Boolean, nullable=False, server_default=sa.text("false")),
    sa.Column("last_error", sa.Text),
    # How the process that started (or last resumed) the run ran it: workers, batch size,
    # throttle, timeouts (app.batch.ledger.RECORDED_SETTINGS), for `orgmig report`.
    sa.Column("settings", JSONB),
    sa.Column("started_at", TSTZ, nullable=False, server_default=NOW),
    sa.Column("updated_at", TSTZ, nullable=False, server_default=NOW),
    sa.Column("finished_at", TSTZ),
    sa.CheckConstraint("direction IN ('upgrade', 'downgrade')", name="direction_valid"),
    sa.CheckConstraint("status IN ('running', 'paused', 'failed', 'finished', 'cancelled')", name="status_valid"),
    sa.CheckConstraint("batch_size > 0", name="batch_size_positive"),
)
# At most one unfinished run per step and direction: a second `upgrade` resumes it.
sa.Index(
    "uq_orgmig_run_active",
    orgmig_run.c.step,
    orgmig_run.c.direction,
    unique=True,
    postgresql_where=sa.text("status NOT IN ('finished', 'cancelled')"),
)

orgmig_batch = sa.Table(
    "orgmig_batch",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
    sa.Column("run_id", sa.BigInteger, sa.ForeignKey("orgmig_run.id", ondelete="CASCADE"), nullable=False),
    sa.Column("start_key", sa.BigInteger, nullable=False),
    sa.Column("end_key", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("rows_read", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("rows_written", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("1")),
    sa.Column("duration_ms", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("finished_at", TSTZ, nullable=False, server_default=NOW),
    sa.UniqueConstraint("run_id", "start_key"),
    sa.CheckConstraint("status IN ('claimed', 'succeeded', 'failed')", name="status_valid"),
    sa.CheckConstraint("start_key <= end_key", name="range_ordered"),
)

orgmig_report = sa.Table(
    "orgmig_report",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
    sa.Column("step", sa.String, nullable=False),
    sa.Column("source_table", sa.String, nullable=False),
    sa.Column("source_id", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String, nullable=False),
    sa.Column("migrated", sa.Boolean, nullable=False),
    sa.Column("detail", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("run_id", sa.BigInteger, sa.ForeignKey("orgmig_run.id", ondelete="SET NULL"), index=True),
    sa.Column("created_at", TSTZ, nullable=False, server_default=NOW),
    sa.UniqueConstraint("step", "source_table", "source_id", "reason"),
)

# Which target rows a migrated legacy row produced, and which of them the migration created
# (as opposed to found, written earlier by the application). A downgrade removes exactly these.
# No foreign keys: bookkeeping must never stop the application deleting its own rows.
orgmig_user_settings_link = sa.Table(
    "orgmig_user_settings_link",
    metadata,
    sa.Column("user_settings_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("org_id", UUID(as_uuid=True), nullable=False),
    sa.Column("created_user", sa.Boolean, nullable=False),
    sa.Column("created_org", sa.Boolean, nullable=False),
    sa.Column("created_org_user", sa.Boolean, nullable=False),
    sa.Column("created_settings", sa.Boolean, nullable=False),
    sa.Column("filled_user_columns", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")),
    sa.Column("run_id", sa.BigInteger),
    sa.Column("migrated_at", TSTZ, nullable=False, server_default=NOW),
)

# Reference rows a step created (roles, for instance), so its downgrade removes only those.
orgmig_created_row = sa.Table(
    "orgmig_created_row",
    metadata,
    sa.Column("step", sa.String, nullable=False),
    sa.Column("table_name", sa.String, nullable=False),
    sa.Column("row_key", sa.String, nullable=False),
    sa.Column("created_at", TSTZ, nullable=False, server_default=NOW),
    sa.PrimaryKeyConstraint("step", "table_name", "row_key"),
)


# Steering (app.batch.pacer): one row per process working on a run, the row its health probe
# updates with a synchronous commit, and what `orgmig status` shows of its controller.
orgmig_steer = sa.Table(
    "orgmig_steer",
    metadata,
    sa.Column("run_id", sa.BigInteger, sa.ForeignKey("orgmig_run.id", ondelete="CASCADE"), nullable=False),
    sa.Column("process", sa.String, nullable=False),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("probes", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("probed_at", TSTZ),
    sa.Column("allowance_bytes_per_s", sa.BigInteger),
    sa.Column("used_bytes_per_s", sa.BigInteger),
    sa.Column("wal_bytes_per_row", sa.Float),
    sa.Column("signal_ms", sa.Float),
    sa.Column("baseline_ms", sa.Float),
    sa.Column("ratio", sa.Float),
    sa.Column("wal_wait_share", sa.Float),
    sa.Column("cpu_pressure", sa.Float),
    sa.Column("reason", sa.Text),
    sa.Column("updated_at", TSTZ, nullable=False, server_default=NOW),
    sa.PrimaryKeyConstraint("run_id", "process"),
)

# Each change the controller made (start, cut, ease, raise, baseline), with its reason.
orgmig_steer_decision = sa.Table(
    "orgmig_steer_decision",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
    sa.Column("run_id", sa.BigInteger, sa.ForeignKey("orgmig_run.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("process", sa.String, nullable=False),
    sa.Column("at", TSTZ, nullable=False, server_default=NOW),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("allowance_bytes_per_s", sa.BigInteger, nullable=False),
    sa.Column("ratio", sa.Float),
    sa.Column("reason", sa.Text, nullable=False),
)
