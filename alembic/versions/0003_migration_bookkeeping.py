"""Migration bookkeeping: runs, batches, reported rows, and the legacy-row link.

The batch engine checkpoints into `orgmig_run`/`orgmig_batch` in the same transaction as each
batch's writes; `orgmig_report` holds every source row a step did not migrate (or migrated with a
note), with a reason; `orgmig_user_settings_link` records which target rows each legacy row
produced and which of them the migration created (no foreign keys: bookkeeping never stops the
application from deleting its own rows; the verification SQL reports dangling links), and
`orgmig_created_row` the reference rows (roles) a step created, so a downgrade removes exactly
those. `orgmig_steer` is the row each process's health probe commits to and its controller's
state, `orgmig_steer_decision` the controller's changes (app.batch.pacer).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TSTZ = sa.DateTime(timezone=True)
NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "orgmig_run",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
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
        sa.Column("settings", postgresql.JSONB),
        sa.Column("started_at", TSTZ, nullable=False, server_default=NOW),
        sa.Column("updated_at", TSTZ, nullable=False, server_default=NOW),
        sa.Column("finished_at", TSTZ),
        sa.PrimaryKeyConstraint("id", name="pk_orgmig_run"),
        sa.CheckConstraint("direction IN ('upgrade', 'downgrade')", name=op.f("ck_orgmig_run_direction_valid")),
        sa.CheckConstraint(
            "status IN ('running', 'paused', 'failed', 'finished', 'cancelled')",
            name=op.f("ck_orgmig_run_status_valid"),
        ),
        sa.CheckConstraint("batch_size > 0", name=op.f("ck_orgmig_run_batch_size_positive")),
    )
    op.create_index(
        "uq_orgmig_run_active",
        "orgmig_run",
        ["step", "direction"],
        unique=True,
        postgresql_where=sa.text("status NOT IN ('finished', 'cancelled')"),
    )
    op.create_table(
        "orgmig_batch",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.Column("start_key", sa.BigInteger, nullable=False),
        sa.Column("end_key", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("rows_read", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("rows_written", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("duration_ms", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("finished_at", TSTZ, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_orgmig_batch"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["orgmig_run.id"], name="fk_orgmig_batch_run_id_orgmig_run", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("run_id", "start_key", name="uq_orgmig_batch_run_id_start_key"),
        sa.CheckConstraint("status IN ('claimed', 'succeeded', 'failed')", name=op.f("ck_orgmig_batch_status_valid")),
        sa.CheckConstraint("start_key <= end_key", name=op.f("ck_orgmig_batch_range_ordered")),
    )
    op.create_table(
        "orgmig_report",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
        sa.Column("step", sa.String, nullable=False),
        sa.Column("source_table", sa.String, nullable=False),
        sa.Column("source_id", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String, nullable=False),
        sa.Column("migrated", sa.Boolean, nullable=False),
        sa.Column("detail", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("created_at", TSTZ, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_orgmig_report"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["orgmig_run.id"], name="fk_orgmig_report_run_id_orgmig_run", ondelete="SET NULL"
        ),
        sa.UniqueConstraint(
            "step", "source_table", "source_id", "reason",
            name="uq_orgmig_report_step_source_table_source_id_reason",
        ),
    )
    op.create_index("ix_orgmig_report_run_id", "orgmig_report", ["run_id"])
    op.create_table(
        "orgmig_user_settings_link",
        sa.Column("user_settings_id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("org_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("created_user", sa.Boolean, nullable=False),
        sa.Column("created_org", sa.Boolean, nullable=False),
        sa.Column("created_org_user", sa.Boolean, nullable=False),
        sa.Column("created_settings", sa.Boolean, nullable=False),
        sa.Column(
            "filled_user_columns", postgresql.ARRAY(sa.Text), nullable=False,
            server_default=sa.text("'{}'::text[]"),
        ),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("migrated_at", TSTZ, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("user_settings_id", name="pk_orgmig_user_settings_link"),
    )
    op.create_table(
        "orgmig_created_row",
        sa.Column("step", sa.String, nullable=False),
        sa.Column("table_name", sa.String, nullable=False),
        sa.Column("row_key", sa.String, nullable=False),
        sa.Column("created_at", TSTZ, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("step", "table_name", "row_key", name="pk_orgmig_created_row"),
    )
    op.create_table(
        "orgmig_steer",
        sa.Column("run_id", sa.BigInteger, nullable=False),
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
        sa.PrimaryKeyConstraint("run_id", "process", name="pk_orgmig_steer"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["orgmig_run.id"], name="fk_orgmig_steer_run_id_orgmig_run", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "orgmig_steer_decision",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.Column("process", sa.String, nullable=False),
        sa.Column("at", TSTZ, nullable=False, server_default=NOW),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("allowance_bytes_per_s", sa.BigInteger, nullable=False),
        sa.Column("ratio", sa.Float),
        sa.Column("reason", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_orgmig_steer_decision"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["orgmig_run.id"], name="fk_orgmig_steer_decision_run_id_orgmig_run", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_orgmig_steer_decision_run_id", "orgmig_steer_decision", ["run_id"])


def downgrade() -> None:
    for table in ("orgmig_steer_decision", "orgmig_steer",
                  "orgmig_created_row", "orgmig_user_settings_link", "orgmig_report", "orgmig_batch", "orgmig_run"):
        op.drop_table(table)
