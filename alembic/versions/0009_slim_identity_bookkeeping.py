"""Identity bookkeeping without what a sync does not read: less WAL per applied account.

Revision 0006 gave the identity step's undo log (`orgmig_identity_undo`) a surrogate `id` primary
key, an index on `user_id` and a logged work list (`orgmig_identity_todo`). A sync reads none of
them: it finds its own writes by the row they record (`(table_name, row_key)`, unique), only the
identity downgrade walks the log by `user_id`, and the keys a run walks are the accounts its plan
keeps in the UNLOGGED `orgmig_identity_plan` (one row per account with work). Each was WAL per
applied account (docs/performance.md, "WAL per migrated user"). This revision:

- drops `id` and its primary key; `(table_name, row_key)` becomes the primary key
  (`pk_orgmig_identity_undo`, the unique constraint it replaces gone: the same index, one key);
- drops `ix_orgmig_identity_undo_user_id` (the identity downgrade builds it where it is missing,
  app.steps.identity.USER_ID_INDEX, and keeps it for the revisions below this one);
- drops `orgmig_identity_todo` (a run walks its plan's rows; a server restart, which empties the
  plan, makes the run plan its remaining work again: docs/identity.md, "How a sync runs").

DDL on orgmig's own tables only (no lock on an application table); the primary key's index is
built once over the log. The downgrade restores revision 0006's shape exactly, so an older orgmig
runs after a rollback: the table rebuilt with `id` first and filled (ids in the order the rows
were recorded), its primary key, unique constraint and `user_id` index, and the work list, filled
from the plan's accounts of an unfinished run where there is one.

Verification: alembic/verify/0009_slim_identity_bookkeeping.sql

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TSTZ = sa.DateTime(timezone=True)
UNDO = "orgmig_identity_undo"
USER_ID_INDEX = "ix_orgmig_identity_undo_user_id"
UNDO_COLUMNS = "provider, table_name, row_key, user_id, before, applied_updated_at, run_id, created_at"

# The work list of an unfinished run, for an older orgmig that walks it: the accounts its plan
# keeps (the plan's tables exist once a sync planned; a DO block, so the offline script has it too).
FILL_WORK_LIST = """
DO $$ BEGIN
    IF to_regclass('orgmig_identity_plan') IS NOT NULL THEN
        INSERT INTO orgmig_identity_todo (provider, row_id) SELECT provider, row_id FROM orgmig_identity_plan;
    END IF;
END $$
"""


def upgrade() -> None:
    op.drop_index(USER_ID_INDEX, UNDO)
    op.drop_constraint("pk_orgmig_identity_undo", UNDO, type_="primary")
    op.drop_column(UNDO, "id")
    op.drop_constraint("uq_orgmig_identity_undo_table_name_row_key", UNDO, type_="unique")
    op.create_primary_key("pk_orgmig_identity_undo", UNDO, ["table_name", "row_key"])
    op.drop_table("orgmig_identity_todo")


def downgrade() -> None:
    # Revision 0006's table, columns in its order: the log moves into it, and the new table takes
    # the names back (the constraints are renamed first: index names are per schema).
    op.rename_table(UNDO, f"{UNDO}_0009")
    op.execute(f"ALTER TABLE {UNDO}_0009 RENAME CONSTRAINT pk_orgmig_identity_undo TO pk_{UNDO}_0009")
    op.create_table(
        UNDO,
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
        sa.Column("provider", sa.String, nullable=False),
        sa.Column("table_name", sa.String, nullable=False),
        sa.Column("row_key", sa.String, nullable=False),
        sa.Column("user_id", sa.Integer),
        sa.Column("before", postgresql.JSONB),
        sa.Column("applied_updated_at", TSTZ),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("created_at", TSTZ, nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("id", name="pk_orgmig_identity_undo"),
        sa.UniqueConstraint("table_name", "row_key", name="uq_orgmig_identity_undo_table_name_row_key"),
        sa.CheckConstraint("table_name IN ('org', 'facility', 'user', 'user_identity', 'org_user',"
                           " 'org_user_facility')", name=op.f("ck_orgmig_identity_undo_table_name_valid")),
    )
    op.execute(f"INSERT INTO {UNDO} ({UNDO_COLUMNS}) SELECT {UNDO_COLUMNS} FROM {UNDO}_0009"
               " ORDER BY created_at, table_name, row_key")
    op.drop_table(f"{UNDO}_0009")
    op.create_index(USER_ID_INDEX, UNDO, ["user_id"])
    op.create_table(
        "orgmig_identity_todo",
        sa.Column("provider", sa.String, nullable=False),
        sa.Column("row_id", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("provider", "row_id", name="pk_orgmig_identity_todo"),
    )
    op.execute(FILL_WORK_LIST)
