"""The login path: migrate one user now, with the batch's own statement (upgrade.sql) over the
legacy rows of that keycloak_user_id.

    from app import migrate_user
    found = migrate_user(connection, "kc-123")   # MigratedUser(user_id, org_id, migrated_now) or None

Safe beside the bulk run and beside itself: calls for the same keycloak_user_id take a
transaction advisory lock, so they run one after the other; a row the bulk run inserts in between
makes the statement fail with a unique violation or a concurrent change, and the attempt is
rolled back to its savepoint and made again, which then finds the row and links to it. No
duplicate-key error reaches the caller, and neither does a deadlock or a lock timeout while
attempts remain (after the last one, LoginMigrationError: the caller's transaction is intact).
A migrated user is a no-op (one indexed read: no lock, no setting); an unmigratable one (a blank
id, a losing duplicate) gets the same reports as the batch gives it, and None. A user the call
migrates costs two statements (run.sql's login_start and the upgrade statement) and the commit:
each round trip is one more wait for the CPU on a busy host.

Inside the caller's transaction the work is a savepoint and the lock is held until the caller
commits; on a connection outside a transaction it commits itself.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection

from app import db
from app.batch import LAST_KEY, Attempts
from app.errors import OrgmigError
from app.steps.roles import ensure_roles
from app.steps.user_settings import ROLES, SQL, STEP

# Five attempts. Deadlocks and lock timeouts are retried after a short, jittered wait (whoever it
# waited on holds its locks a moment longer: not straight back into it); a unique violation or a
# concurrent change at once (the retry finds the row the other writer committed). A retry is
# logged at DEBUG: the caller sees only the last failure.
WAIT_BEFORE_RETRY = {"40P01", "55P03"}
RETRIES = Attempts(5, 0.05, 1.0, pause=lambda exc: db.sqlstate(exc) in WAIT_BEFORE_RETRY,
                   level=logging.DEBUG, logger=logging.getLogger("app.steps.user_settings"))
# What the batch sets for its transaction, set here for the statement; inside the caller's
# transaction put back after it (releasing a savepoint keeps SET LOCAL values, so the caller's
# transaction would keep them otherwise).
STATEMENT_SETTINGS = {"TimeZone": "UTC", "jit": "off"}
_NAMES = list(STATEMENT_SETTINGS)


@dataclass(frozen=True)
class MigratedUser:
    user_id: int
    org_id: uuid.UUID
    migrated_now: bool


class LoginMigrationError(OrgmigError):
    """The user could not be migrated now (the attempts ran out); the bulk run will."""


def start_params(keycloak_user_id: str) -> dict:
    """The parameters of run.sql's login_start for `keycloak_user_id`."""
    return {"k": keycloak_user_id, "roles": list(ROLES), "names": _NAMES, "values": list(STATEMENT_SETTINGS.values())}


def _attempt(conn: Connection, keycloak_user_id: str, own: bool) -> MigratedUser | None:
    """One attempt: for a migrated user one statement (login_start); for one not yet migrated
    two (login_start, the upgrade statement), and inside the caller's transaction a third that
    puts the settings back."""
    start = conn.execute(SQL("run.login_start"), start_params(keycloak_user_id)).one()
    if start.user_id is not None:  # already migrated (the common case at every later login)
        return MigratedUser(start.user_id, start.org_id, False)
    # In a transaction of its own the settings login_start set end with it; in the caller's they
    # are put back after success only: a failure aborts the attempt, and rolling back its
    # savepoint undoes them (restoring them in an aborted transaction would fail with 25P02 and
    # hide the error that decides the retry).
    restore = {} if own else {"names": _NAMES, "values": start.before}
    if not start.ids:
        if restore:
            conn.execute(SQL("run.settings"), restore)
        return None
    if not start.roles_exist:
        # The roles the personal orgs need (a role of another rank is left as it is; the bulk run warns).
        ensure_roles(conn, STEP.name, ROLES, warn=False)
    ids = list(start.ids)
    r = STEP.migrate(conn, min(ids), max(ids), LAST_KEY, None, start.user_id_sequence, ids=ids)
    if restore:
        conn.execute(SQL("run.settings"), restore)
    if r["winner_user_id"] is None:  # only rows that are reported
        return None
    return MigratedUser(r["winner_user_id"], r["winner_org_id"], r["linked"] > 0)


def migrate_user(conn: Connection, keycloak_user_id: str) -> MigratedUser | None:
    """Migrate the legacy rows of `keycloak_user_id` now (the highest id wins, the others are
    reported); return the user and its personal org, or None when nothing could be migrated
    (no legacy row, or only rows that are reported)."""
    own = not conn.in_transaction()

    def attempt(_: int) -> MigratedUser | None:
        # Inside the caller's transaction every attempt, its first read included, is a savepoint:
        # a deadlock or a lock timeout (the capture's removal taking user_settings and the link
        # table, say) rolls back to it and the attempt is made again, the caller's transaction
        # intact; in a transaction of its own the same read begins the transaction that migrates.
        with conn.begin() if own else conn.begin_nested():
            return _attempt(conn, keycloak_user_id, own)

    def final(what: str, exc: BaseException, attempts: int) -> None:
        if RETRIES.retryable(exc):
            raise LoginMigrationError(
                f"user {keycloak_user_id!r} could not be migrated now ({db.error_summary(exc)}"
                f" after {attempts} attempts); the bulk run migrates it") from None

    return RETRIES.call(f"migrating user {keycloak_user_id!r}", attempt, final=final)
