"""Data: apply the latest finished export of each identity provider to the org schema.

No DDL. For every provider with a finished export (`orgmig export`), the step `identity:<provider>`
(app/steps/identity) links IdP accounts to app users, creates the orgs, facilities and users the
IdP knows of, and writes roles, facility access, statuses, names and site admins, in resumable
batches; a provider without a finished export is left alone, and an installation without an
identity provider deploys exactly as before. `orgmig sync --provider P` applies a later export
with the same code. The downgrade puts back what the step wrote, keeps what the application
changed after a sync wrote it, and refuses, changing nothing (check_downgrade runs before any
revision's downgrade), when the application has built rows on rows it created or changed rows it
created, unless `-x allow_data_loss=true`.

Verification: alembic/verify/0007_apply_identity.sql

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import logging

from alembic import op
from app.batch.revision import allow_data_loss, ensure_finished, run_data_step, settings, stop_offline
from app.steps.identity import IDENTITY, drop_plan_tables, providers_applied, providers_with_export

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STEP = IDENTITY  # one step per provider: identity:<provider>
log = logging.getLogger("app")


def upgrade() -> None:
    if op.get_context().as_sql:
        stop_offline(IDENTITY.prefix, "upgrade")
        return
    # Keycloak accounts match the users revision 0004 created: its run must be complete.
    ensure_finished("user_settings_to_org")
    providers = providers_with_export(op.get_bind())
    if not providers:
        log.info("identity: no identity provider has a finished export: nothing to apply")
    for provider in providers:
        run_data_step(IDENTITY.step(provider, settings()), "upgrade")


def check_downgrade() -> None:
    """Run before any revision's downgrade (env.py): the refusal of each provider's downgrade."""
    bind = op.get_bind()
    for provider in providers_applied(bind):
        IDENTITY.step(provider, settings()).refuse_downgrade(bind, allow_data_loss())


def downgrade() -> None:
    if op.get_context().as_sql:
        stop_offline(IDENTITY.prefix, "downgrade")
        return
    for provider in providers_applied(op.get_bind()):
        run_data_step(IDENTITY.step(provider, settings()), "downgrade")
    drop_plan_tables(op.get_bind())
