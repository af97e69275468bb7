"""Revision 0008: what `orgmig writeback` set on each identity-provider account.

`orgmig_writeback`: one row per linked account (provider, external id) it handled, saying which
app user id it set under which attribute name and how it ended: `written` (this tool wrote it),
`present` (the account already held it: the live account or the latest export said so) or
`failed` (the provider's HTTP status and one-line message). A rerun skips what is written or
present with the same value and attribute, so it resumes where a crash or a failure stopped it.
No foreign keys: bookkeeping never stops the application deleting its own rows.
"""

from __future__ import annotations

import sqlalchemy as sa

from app.provider_names import PROVIDERS
from app.schema.base import NOW, TSTZ, in_values, metadata

WRITEBACK_STATUSES = ("written", "present", "failed")

orgmig_writeback = sa.Table(
    "orgmig_writeback",
    metadata,
    sa.Column("provider", sa.String, nullable=False),
    sa.Column("external_id", sa.String, nullable=False),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("attribute", sa.String, nullable=False),
    sa.Column("value", sa.String, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("http_status", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("updated_at", TSTZ, nullable=False, server_default=NOW),
    sa.PrimaryKeyConstraint("provider", "external_id"),
    sa.CheckConstraint(in_values("provider", PROVIDERS), name="provider_valid"),
    sa.CheckConstraint(in_values("status", WRITEBACK_STATUSES), name="status_valid"),
    sa.CheckConstraint("(status = 'failed') = (error IS NOT NULL)", name="error_when_failed"),
)
