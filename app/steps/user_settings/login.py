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
from app.steps.roles import ensure_roles
from app.steps.user_settings import ROLES, SQL, STEP

ATTEMPTS = 5
LAST_KEY = 2**31 - 1
# What the batch sets for its transaction, set here for the statement; inside the caller's
# transaction put back after it (releasing a savepoint keeps SET LOCAL values, so the caller's
# transaction would keep them otherwise).
STATEMENT_SETTINGS = {"TimeZone": "UTC", "jit": "off"}
_NAMES = tuple(STATEMENT_SETTINGS)
# One round trip: the current values (read first, in the subquery), then the new ones set.
SWAP_SETTINGS = text(
    f"SELECT o.*, {', '.join(f'set_config(:n{i}, :s{i}, true)' for i in range(len(_NAMES)))}"
    f" FROM (SELECT {', '.join(f'current_setting(:n{i})' for i in range(len(_NAMES)))} OFFSET 0) AS o")


@dataclass(frozen=True)
class MigratedUser:
    user_id: int
    org_id: uuid.UUID
    migrated_now: bool


class LoginMigrationError(OrgmigError):
    """The user could not be migrated now (the attempts ran out); the bulk run will."""


def _settings(conn: Connection, values: dict[str, str]) -> dict[str, str]:
    """Set `values` (STATEMENT_SETTINGS or what they replaced) for the transaction; return the
    values they replaced."""
    params = {**{f"n{i}": n for i, n in enumerate(_NAMES)}, **{f"s{i}": values[n] for i, n in enumerate(_NAMES)}}
    row = conn.execute(SWAP_SETTINGS, params).one()
    return dict(zip(_NAMES, row[:len(_NAMES)], strict=True))


def _attempt(conn: Connection, keycloak_user_id: str, own: bool) -> tuple[int | None, bool]:
    """One attempt; (the winner's legacy id or None, whether this attempt linked it)."""
    start = conn.execute(SQL("run.login_start"), {"k": keycloak_user_id}).one()
    ids = list(start.ids)
    if not ids:
        return None, False
    # The roles the personal orgs need (a role of another rank is left as it is; the bulk run warns).
    ensure_roles(conn, STEP.name, ROLES, warn=False)
    # In a transaction of its own the settings end with it; in the caller's they are put back
    # after success only: a failure aborts the attempt, and rolling back its savepoint undoes
    # them (restoring them in an aborted transaction would fail with 25P02 and hide the error
    # that decides the retry).
    before = _settings(conn, STATEMENT_SETTINGS)
    r = STEP.migrate(conn, min(ids), max(ids), LAST_KEY, None, start.user_id_sequence, ids=ids)
    if not own:
        _settings(conn, before)
    return max(ids), r["linked"] > 0


def migrate_user(conn: Connection, keycloak_user_id: str) -> MigratedUser | None:
    """Migrate the legacy rows of `keycloak_user_id` now (the highest id wins, the others are
    reported); return the user and its personal org, or None when nothing could be migrated
    (no legacy row, or only rows that are reported)."""
    own = not conn.in_transaction()
    if not own:
        # Already migrated (the common case at every later login): one indexed read, no lock.
        found = conn.execute(SQL("run.migrated"), {"k": keycloak_user_id}).first()
        if found is not None:
            return MigratedUser(found.user_id, found.org_id, False)
    for attempt in range(1, ATTEMPTS + 1):
        tx = conn.begin() if own else conn.begin_nested()
        try:
            if own:
                # The same read, first in the transaction that migrates otherwise (one round trip
                # to begin it and one to commit it, for either answer).
                found = conn.execute(SQL("run.migrated"), {"k": keycloak_user_id}).first()
                if found is not None:
                    tx.commit()
                    return MigratedUser(found.user_id, found.org_id, False)
            winner, linked = _attempt(conn, keycloak_user_id, own)
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
