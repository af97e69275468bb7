"""Identity schema: user identities, facilities, site admins, updated_at kept current, bookkeeping.

What the identity provider's data needs in the org schema, and the identity step's bookkeeping.
DDL only; revision 0007 fills it.

- `user_identity(provider, external_id, user_id, matched_by)`: which IdP account is which app user.
- `"user".is_site_admin`, `org_user.all_facilities`.
- `facility(id, org_id, name)` and `org_user_facility(org_id, user_id, facility_id)`: a member's
  access to single facilities of an org, the facility always one of that org's.
- `updated_at` kept current on every UPDATE of org, "user", org_user, settings and facility (a
  trigger; a writer that sets updated_at itself keeps its value): the identity step compares it
  with the time an export started, so an edit made in the app is never overwritten.
- An index on the normalised email of "user" (`lower(btrim(email))`), for matching by email.
- `idp_user.row_id`, `idp_group.row_id`: surrogate bigint keys (the engine walks integer keys),
  and an index on the snapshot's normalised emails.
- `orgmig_identity_group`: what each IdP group means (role, facility access, site admin, or a
  reason it means nothing), `orgmig_identity_undo`: every row the identity step created,
  changed or removed, with the values it had before, for an exact downgrade, and
  `orgmig_identity_todo`: the IdP accounts a sync run has work for.

The downgrade refuses, dropping nothing, while facility, org_user_facility or user_identity hold
rows, or users or memberships carry a site-admin or all-facilities flag, that revision 0007's
downgrade did not take away (the application's), unless `-x allow_data_loss=true`; the same check
runs before any revision's downgrade (check_downgrade), counting what 0007's will leave.

Verification: alembic/verify/0006_identity_schema.sql

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op
from app.batch.revision import refuse_to_drop_rows
from app.config import get_settings
from app.steps.identity import schema_rows_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TSTZ = sa.DateTime(timezone=True)
NOW = sa.text("now()")
PROVIDER_VALID = "provider IN ('okta', 'keycloak', 'auth0')"
TOUCHED = ("org", "user", "org_user", "settings", "facility")

TOUCH_UPDATED_AT = """
CREATE FUNCTION orgmig_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A row that changed gets updated_at = now(), unless the writer set updated_at itself.
    IF NEW IS DISTINCT FROM OLD AND NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$
"""


INVALID_EMAIL_INDEX = ("SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('ix_user_email_normalized')"
                       " AND NOT indisvalid")


def _drop_invalid_email_index() -> None:
    """A build that failed (a lock timeout, a kill) left an invalid index: dropped before building
    it again. Online CONCURRENTLY, so that the drop does not lock "user" against the application
    while it waits for the transactions using the table (a revision run again after a lock
    timeout does this); a DO block cannot run that, so the offline script checks in one and drops
    it the plain way."""
    if op.get_context().as_sql:
        op.execute(f"DO $$ BEGIN IF EXISTS ({INVALID_EMAIL_INDEX}) THEN DROP INDEX ix_user_email_normalized;"
                   " END IF; END $$")
    elif op.get_bind().exec_driver_sql(INVALID_EMAIL_INDEX).first() is not None:
        op.execute("DROP INDEX CONCURRENTLY ix_user_email_normalized")


def _timestamps() -> list:
    return [sa.Column("created_at", TSTZ, nullable=False, server_default=NOW),
            sa.Column("updated_at", TSTZ, nullable=False, server_default=NOW)]


def upgrade() -> None:
    # The one index on a table the application writes, built first and without blocking it
    # (CONCURRENTLY, outside the revision's transaction; a failed earlier build left an invalid
    # index, dropped first). The migration lock is a session lock: it outlives the commit.
    with op.get_context().autocommit_block():
        op.execute("SET statement_timeout = 0")
        _drop_invalid_email_index()
        op.execute('CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_user_email_normalized ON "user" (lower(btrim(email)))')
        op.execute(f"SET statement_timeout = '{get_settings().statement_timeout_ms}ms'")

    # orgmig's own tables: the snapshot's surrogate keys (a rewrite of idp_user and idp_group,
    # which only `orgmig export`, `sync` and `reconcile` use) and the identity step's bookkeeping.
    for table in ("idp_user", "idp_group"):
        op.add_column(table, sa.Column("row_id", sa.BigInteger, sa.Identity(always=False), nullable=False))
        op.create_unique_constraint(f"uq_{table}_row_id", table, ["row_id"])
    op.create_index("ix_idp_user_email_normalized", "idp_user", ["provider", sa.text("lower(btrim(email))")])
    op.create_table(
        "orgmig_identity_group",
        sa.Column("provider", sa.String, nullable=False),
        sa.Column("kind", sa.String, nullable=False),
        sa.Column("external_id", sa.String, nullable=False),
        sa.Column("meaning", sa.String, nullable=False),
        sa.Column("org_external_id", sa.String),
        sa.Column("role_name", sa.String),
        sa.Column("facility_id", postgresql.UUID(as_uuid=True)),
        sa.Column("run_id", sa.BigInteger),
        sa.PrimaryKeyConstraint("provider", "kind", "external_id", name="pk_orgmig_identity_group"),
        sa.CheckConstraint("meaning IN ('role', 'facility', 'site_admin', 'organization', 'ignored',"
                           " 'malformed_group_name', 'unknown_role', 'invalid_facility_id',"
                           " 'facility_in_two_orgs')", name=op.f("ck_orgmig_identity_group_meaning_valid")),
    )
    op.create_table(
        "orgmig_identity_undo",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
        sa.Column("provider", sa.String, nullable=False),
        sa.Column("table_name", sa.String, nullable=False),
        sa.Column("row_key", sa.String, nullable=False),
        sa.Column("user_id", sa.Integer),
        sa.Column("before", postgresql.JSONB),
        sa.Column("applied_updated_at", TSTZ),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("created_at", TSTZ, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_orgmig_identity_undo"),
        sa.UniqueConstraint("table_name", "row_key", name="uq_orgmig_identity_undo_table_name_row_key"),
        sa.CheckConstraint("table_name IN ('org', 'facility', 'user', 'user_identity', 'org_user',"
                           " 'org_user_facility')", name=op.f("ck_orgmig_identity_undo_table_name_valid")),
    )
    op.create_index("ix_orgmig_identity_undo_user_id", "orgmig_identity_undo", ["user_id"])
    op.create_table(
        "orgmig_identity_todo",
        sa.Column("provider", sa.String, nullable=False),
        sa.Column("row_id", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("provider", "row_id", name="pk_orgmig_identity_todo"),
    )

    # New tables next to the application's (their foreign keys take brief locks on org, "user"
    # and org_user), and last the changes to the application's tables themselves, so the locks
    # they take are held only for the few statements before the revision commits: two columns
    # with constant defaults (no rewrite on PostgreSQL 11+) and the updated_at triggers.
    op.create_table(
        "user_identity",
        sa.Column("provider", sa.String, nullable=False),
        sa.Column("external_id", sa.String, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("matched_by", sa.String, nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("provider", "external_id", name="pk_user_identity"),
        sa.UniqueConstraint("provider", "user_id", name="uq_user_identity_provider_user_id"),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name="fk_user_identity_user_id_user", ondelete="CASCADE"),
        sa.CheckConstraint(PROVIDER_VALID, name=op.f("ck_user_identity_provider_valid")),
        sa.CheckConstraint("matched_by IN ('subject', 'email', 'created')",
                           name=op.f("ck_user_identity_matched_by_valid")),
    )
    op.create_index("ix_user_identity_user_id", "user_identity", ["user_id"])
    op.create_table(
        "facility",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("org_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_facility"),
        sa.UniqueConstraint("id", "org_id", name="uq_facility_id_org_id"),
        sa.ForeignKeyConstraint(["org_id"], ["org.id"], name="fk_facility_org_id_org"),
    )
    op.create_index("ix_facility_org_id", "facility", ["org_id"])
    op.create_table(
        "org_user_facility",
        sa.Column("org_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("facility_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", TSTZ, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("org_id", "user_id", "facility_id", name="pk_org_user_facility"),
        sa.ForeignKeyConstraint(["org_id", "user_id"], ["org_user.org_id", "org_user.user_id"],
                                name="fk_org_user_facility_org_id_org_user", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["facility_id", "org_id"], ["facility.id", "facility.org_id"],
                                name="fk_org_user_facility_facility_id_facility"),
    )
    op.create_index("ix_org_user_facility_facility_id", "org_user_facility", ["facility_id", "org_id"])

    op.add_column("user", sa.Column("is_site_admin", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("org_user", sa.Column("all_facilities", sa.Boolean, nullable=False, server_default=sa.false()))
    op.execute(TOUCH_UPDATED_AT)
    for table in TOUCHED:
        op.execute(f'CREATE TRIGGER trg_{table}_updated_at BEFORE UPDATE ON "{table}"'
                   " FOR EACH ROW EXECUTE FUNCTION orgmig_touch_updated_at()")


APP_ROWS = ["facility", "org_user_facility", "user_identity", '"user" WHERE is_site_admin',
            "org_user WHERE all_facilities"]


def check_downgrade() -> None:
    """Run before any revision's downgrade (env.py), and again below: the rows and flags of the
    application's these tables will hold once revision 0007's downgrade has undone the syncs."""
    refuse_to_drop_rows("0006", APP_ROWS, counts=schema_rows_sql())


def downgrade() -> None:
    if op.get_context().as_sql:
        refuse_to_drop_rows("0006", APP_ROWS)
    else:
        check_downgrade()  # revision 0007's downgrade has removed what it wrote: the undo log is empty
    op.drop_table("orgmig_identity_todo")
    op.drop_table("orgmig_identity_undo")
    op.drop_table("orgmig_identity_group")
    op.drop_index("ix_idp_user_email_normalized", "idp_user")
    for table in ("idp_group", "idp_user"):
        op.drop_constraint(f"uq_{table}_row_id", table)
        op.drop_column(table, "row_id")
    for table in TOUCHED:
        op.execute(f'DROP TRIGGER trg_{table}_updated_at ON "{table}"')
    op.execute("DROP FUNCTION orgmig_touch_updated_at()")
    op.drop_table("org_user_facility")
    op.drop_table("facility")
    op.drop_table("user_identity")
    op.drop_column("org_user", "all_facilities")
    op.drop_column("user", "is_site_admin")
    # Not blocking the application's writes to "user" on the way back either.
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_user_email_normalized")
