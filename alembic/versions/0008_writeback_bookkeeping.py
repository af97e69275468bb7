"""Write-back bookkeeping: what `orgmig writeback` set on each identity-provider account.

`orgmig_writeback(provider, external_id, user_id, attribute, value, status, http_status, error,
updated_at)`: one row per linked account the write-back handled: the app user id it set, under
which attribute name, and how it ended (`written`, `present`: the account already held it,
`failed`: with the provider's HTTP status and one-line message). A rerun skips what is written or
present with the same value, so a crash or a partial failure resumes where it stopped. DDL only,
a new table of orgmig's own (no lock on any application table); its downgrade drops it (what the
providers hold stays there; a later write-back finds it through the next export).

Verification: alembic/verify/0008_writeback_bookkeeping.sql

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TSTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "orgmig_writeback",
        sa.Column("provider", sa.String, nullable=False),
        sa.Column("external_id", sa.String, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("attribute", sa.String, nullable=False),
        sa.Column("value", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("updated_at", TSTZ, nullable=False, server_default=sa.text("now()")),
        sa.PrimaryKeyConstraint("provider", "external_id", name="pk_orgmig_writeback"),
        sa.CheckConstraint("provider IN ('okta', 'keycloak', 'auth0')",
                           name=op.f("ck_orgmig_writeback_provider_valid")),
        sa.CheckConstraint("status IN ('written', 'present', 'failed')",
                           name=op.f("ck_orgmig_writeback_status_valid")),
        sa.CheckConstraint("(status = 'failed') = (error IS NOT NULL)",
                           name=op.f("ck_orgmig_writeback_error_when_failed")),
    )


def downgrade() -> None:
    op.drop_table("orgmig_writeback")
