"""The login path: migrate one user now, with the batch's own statement (upgrade.sql) over the
legacy rows of that keycloak_user_id.

    from app import migrate_user
    found = migrate_user(connection, "kc-123")   # MigratedUser(user_id, org_id, migrated_now) or None

Safe beside the bulk run and beside itself: calls for the same keycloak_user_id take a
transaction advisory lock, so they run one after the other; a row the bulk run inserts in between
makes the statement fail with a unique violation or a concurrent change, and the attempt is
rolled back to its savepoint and made again, which then finds the row and links to it. No
duplicate-key error reaches the caller. A migrated user is a no-op; an unmigratable one (a
blank id, a losing duplicate) gets the same reports as the batch gives it, and None.

Inside the caller's transaction the work is a savepoint and the lock is held until the caller
commits; on a connection outside a transaction it commits itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, text

from app import db
from app.batch.attempts import retryable
from app.errors import OrgmigError
from app.steps.user_settings import SQL, STEP

ATTEMPTS = 5
LAST_KEY = 2**31 - 1
# What the batch sets for its transaction, set here for the statement and put back after it (a
# savepoint does not undo SET LOCAL, so the caller's transaction would keep them otherwise).
STATEMENT_SETTINGS = {"TimeZone": "UTC", "jit": "off"}


@dataclass(frozen=True)
class MigratedUser:
    user_id: int
    org_id: uuid.UUID
    migrated_now: bool


class LoginMigrationError(OrgmigError):
    """The user could not be migrated now (the attempts ran out); the bulk run will."""


def _settings(conn: Connection, values: dict[str, str]) -> dict[str, str]:
    """Set `values` for the transaction; return the values they replaced."""
    before = {name: conn.execute(text("SELECT current_setting(:n)"), {"n": name}).scalar_one() for name in values}
    for name, value in values.items():
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
    return before


def _attempt(conn: Connection, keycloak_user_id: str) -> tuple[int | None, bool]:
    """One attempt; (the winner's legacy id or None, whether this attempt linked it)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('orgmig:migrate_user:' || :k))"),
                 {"k": keycloak_user_id})
    ids = list(conn.execute(SQL("run.legacy_ids"), {"k": keycloak_user_id}).scalars())
    if not ids:
        return None, False
    # The roles the personal orgs need (a role of another rank is left as it is; the bulk run warns).
    conn.execute(SQL("run.default_roles"), {"step": STEP.name}).all()
    sequence = conn.execute(SQL("run.user_id_sequence")).scalar_one()
    before = _settings(conn, STATEMENT_SETTINGS)
    # Put back after success only: a failure aborts the attempt, and rolling back its transaction
    # or savepoint undoes the settings too (restoring them in an aborted transaction would fail
    # with 25P02 and hide the error that decides the retry).
    r = STEP.migrate(conn, min(ids), max(ids), LAST_KEY, None, sequence, ids=ids)
    _settings(conn, before)
    return max(ids), r["linked"] > 0


def migrate_user(conn: Connection, keycloak_user_id: str) -> MigratedUser | None:
    """Migrate the legacy rows of `keycloak_user_id` now (the highest id wins, the others are
    reported); return the user and its personal org, or None when nothing could be migrated
    (no legacy row, or only rows that are reported)."""
    own = not conn.in_transaction()
    # Already migrated (the common case at every later login): one indexed read, no lock.
    if own:
        with conn.begin():
            found = conn.execute(SQL("run.migrated"), {"k": keycloak_user_id}).first()
    else:
        found = conn.execute(SQL("run.migrated"), {"k": keycloak_user_id}).first()
    if found is not None:
        return MigratedUser(found.user_id, found.org_id, False)
    for attempt in range(1, ATTEMPTS + 1):
        tx = conn.begin() if own else conn.begin_nested()
        try:
            winner, linked = _attempt(conn, keycloak_user_id)
            found = conn.execute(SQL("run.link_of"), {"id": winner}).first() if winner else None
            tx.commit()
            return MigratedUser(found.user_id, found.org_id, linked) if found else None
        except Exception as exc:
            tx.rollback()
            if not retryable(exc) or attempt == ATTEMPTS:
                if retryable(exc):
                    raise LoginMigrationError(
                        f"user {keycloak_user_id!r} could not be migrated now ({db.error_summary(exc)}"
                        f" after {attempt} attempts); the bulk run migrates it") from None
                raise
    return None
