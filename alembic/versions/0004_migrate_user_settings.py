"""Data: move every user_settings row into the org structure, in resumable batches.

No DDL. Runs the step `user_settings_to_org` (app/steps/user_settings.py) through the batch
engine: `alembic -x batch_size=N upgrade head` (or ORGMIG_BATCH_SIZE) sets the batch size; a
killed upgrade resumes at the next batch when run again. The downgrade removes exactly the rows
this revision created and refuses, deleting nothing, when the application created rows that
depend on them, unless `-x allow_data_loss=true`. An empty user_settings beside application
tables that hold rows is a warning, or an error with ORGMIG_REQUIRE_LEGACY_ROWS=true
(app.ops.wrong_database).

Verification: alembic/verify/0004_migrate_user_settings.sql

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from app.batch.revision import run_data_step
from app.ops import wrong_database
from app.steps.user_settings import STEP

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    wrong_database.in_revision(wrong_database.before_migrating)
    run_data_step(STEP, "upgrade")


def downgrade() -> None:
    run_data_step(STEP, "downgrade")
