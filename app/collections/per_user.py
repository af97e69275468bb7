"""GeneNetwork's login-time flow, one app user at a time (docs/collections.md, "The login-time
flow"): what the old account holding the user's email has (`legacy_offer`), moving it
(`migrate_for_user`), importing an anonymous session's collections (`import_anonymous`).
`orgmig collections migrate --user` and `import-anonymous` call these; so does the HTTP service.

Each takes the app database's Connection and a Redis client (`app.collections.connect`). The old
account is found by email through the index of email_index.py, never by reading every old
account; the decision (matching, marker, malformed values) and the move are those of the bulk
run (planner.Walker, moves.Mover, move.lua), so the two can run side by side: an account moves
once. Report rows are written in the caller's transaction: the caller commits.

Errors: `UnknownAppUser` (no "user" row with that id), `RegisteredAccount` (an anonymous import
of a registered account's id), both ConfigError (exit 2); `app.errors.DatabaseError` when Redis
stops answering (exit 2; a rerun resumes). Anything else is reported in the answer, not raised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis
from sqlalchemy import Connection, text

from app.collections import email_index, legacy, matching
from app.collections import reported as reports
from app.collections.moves import Move, Mover, Outcome, malformed, raw
from app.collections.planner import Decision, Walker
from app.collections.reported import Reported
from app.collections.run import Result, apply_batch, purge_moved
from app.collections.store import KEYS, answering
from app.errors import ConfigError

# Why nothing can move (Offer.reason), besides the report reasons of matching and report.py
# (email_shared_by_old_accounts, email_shared_by_app_users, malformed_collections_json).
UNKNOWN_APP_USER = "unknown_app_user"
APP_USER_EMAIL_MISSING = "app_user_email_missing"
NO_OLD_ACCOUNT = "no_old_account"
MIGRATED_ALREADY = "migrated_already"
NOTHING_TO_MOVE = "nothing_to_move"

# The app users holding an address: found with the index on lower(btrim(email)) (revision 0006),
# then compared with the matching function (legacy.normalize_email).
_APP_USERS = text('SELECT id, email FROM "user" WHERE lower(btrim(email)) IN (:key, lower(btrim(:raw)))')


class UnknownAppUser(ConfigError):
    """No app user has this id."""

    def __init__(self, app_user_id: int) -> None:
        super().__init__(f"there is no app user with id {app_user_id}")
        self.app_user_id = app_user_id


class RegisteredAccount(ConfigError):
    """An anonymous import of an id that is a registered old account's."""


@dataclass(frozen=True)
class Offer:
    """What moving app user `app_user_id`'s old collections would move: `reason` None and the
    collections' names (as they would move: trimmed, NFC), or why nothing can move."""

    app_user_id: int
    reason: str | None
    old_id: str | None = None
    names: tuple[str, ...] = ()
    members: int = 0
    moved_to: int | None = None  # migrated_already: the app user they went to
    old_ids: tuple[str, ...] = ()  # email_shared_by_old_accounts: every old account holding the address
    user_ids: tuple[int, ...] = ()  # email_shared_by_app_users: every app user holding it
    problem: str | None = None  # malformed_collections_json: what is wrong (never a value)

    @property
    def collections(self) -> int:
        return len(self.names)

    def to_json(self) -> dict:
        out: dict = {"app_user_id": self.app_user_id, "can_migrate": self.reason is None, "reason": self.reason,
                     "old_id": self.old_id, "collections": self.collections, "names": list(self.names),
                     "members": self.members}
        if self.moved_to is not None:
            out["moved_to"] = self.moved_to
        if self.old_ids:
            out["old_ids"] = list(self.old_ids)
        if self.user_ids:
            out["user_ids"] = list(self.user_ids)
        if self.problem is not None:
            out["problem"] = self.problem
        return out


@dataclass
class _Found:
    """An app user's address and what the old side holds for it."""

    exists: bool
    email: str | None = None
    walker: Walker | None = None
    batch: list[Decision] = field(default_factory=list)


def _find(conn: Connection, client: redis.Redis, app_user_id: int) -> _Found:
    row = conn.execute(text('SELECT email FROM "user" WHERE id = :id'), {"id": app_user_id}).first()
    if row is None:
        return _Found(False)
    email = legacy.normalize_email(row.email)
    if email is None:
        return _Found(True)
    users = matching.AppUsers()
    for user_id, other in conn.execute(_APP_USERS, {"key": email, "raw": row.email}):
        if legacy.normalize_email(other) == email:
            users.by_email[email].append(user_id)
    with answering(client, "while looking up the old account"):
        olds, (marks, values) = email_index.old_ids(client, email, KEYS.marker, KEYS.legacy)
    accounts = matching.OldAccounts()
    for old_id in olds:
        accounts.email_of[old_id] = email
    accounts.by_email[email] = olds
    walker = Walker(client, users, accounts, {o: int(m) for o, m in zip(olds, marks, strict=True) if m is not None})
    batch = [walker.decide(o, v) if v is not None or o in walker.done else Decision(o, "gone", app_user_id)
             for o, v in zip(olds, values, strict=True)]
    return _Found(True, email, walker, batch)


def legacy_offer(conn: Connection, client: redis.Redis, app_user_id: int) -> Offer:
    """What the old account holding app user `app_user_id`'s email has, or why nothing can move.
    Reads only: writes nothing to Redis (but the email index, when it is stale) or the database."""
    found = _find(conn, client, app_user_id)
    if not found.exists:
        return Offer(app_user_id, UNKNOWN_APP_USER)
    if found.email is None:
        return Offer(app_user_id, APP_USER_EMAIL_MISSING)
    if not found.batch:
        return Offer(app_user_id, NO_OLD_ACCOUNT)
    if len(found.batch) > 1:
        return Offer(app_user_id, matching.EMAIL_SHARED_BY_OLD_ACCOUNTS, old_ids=tuple(d.old_id for d in found.batch))
    (d,) = found.batch
    if d.status == "done":
        return Offer(app_user_id, MIGRATED_ALREADY, d.old_id, moved_to=d.user_id)
    if d.status == "reported":
        detail = d.reported.detail
        return Offer(app_user_id, d.reported.reason, d.old_id, old_ids=tuple(detail.get("old_ids", ())),
                     user_ids=tuple(detail.get("user_ids", ())), problem=detail.get("problem"))
    if d.status == "gone" or not d.move.collections.items:
        return Offer(app_user_id, NOTHING_TO_MOVE, d.old_id)
    items = d.move.collections.items
    return Offer(app_user_id, None, d.old_id, tuple(c.name for c in items), d.members)


class _InTransaction:
    """Report rows written on the caller's connection, in its transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def write(self, reported: list[Reported], moved: list[str]) -> None:
        if reported or moved:
            reports.record(self.conn, reported, moved)


def migrate_for_user(conn: Connection, client: redis.Redis, app_user_id: int, *, purge: bool = False) -> Result:
    """Move the collections of the old account holding app user `app_user_id`'s email, as
    `migrate --all` would move that account (a repeat, or a run beside the bulk one, moves
    nothing twice). `result.counts`: `moved`, `done` (moved before), `reported` (with
    `result.reported`), `gone`, or `no_email` / `no_old_account`; `result.outcomes` what moved.
    Raises UnknownAppUser."""
    started = time.monotonic()
    found = _find(conn, client, app_user_id)
    if not found.exists:
        raise UnknownAppUser(app_user_id)
    result = Result()
    if found.email is None:
        result.counts["no_email"] += 1
    elif not found.batch:
        result.counts["no_old_account"] += 1
    else:
        with answering(client, "while re-reading a legacy value"):
            result.outcomes += apply_batch(found.batch, found.walker, Mover(client, purge=purge), purge,
                                           _InTransaction(conn), result)
        result.outcomes += [Outcome(d.old_id, d.user_id, "done") for d in found.batch if d.status == "done"]
    result.seconds = time.monotonic() - started
    return result


def import_anonymous(conn: Connection, client: redis.Redis, app_user_id: int, anon_id: str, *,
                     purge: bool = False) -> Result:
    """Anonymous collections (a field of `collections` whose id is not in `users`) to app user
    `app_user_id`, as one atomic step; a repeat adds nothing (`counts["done"]`, and
    `outcomes[0].user_id` the user they went to). Raises UnknownAppUser, RegisteredAccount."""
    started = time.monotonic()
    if conn.execute(text('SELECT 1 FROM "user" WHERE id = :id'), {"id": app_user_id}).first() is None:
        raise UnknownAppUser(app_user_id)
    with answering(client, "during the import"):
        if client.hexists(KEYS.legacy_users, raw(anon_id)):
            raise RegisteredAccount(
                f"{anon_id!r} is a registered account's id, not an anonymous one: refusing to import its"
                " collections (`orgmig collections migrate` moves a registered account's)")
        result = _import(client, _InTransaction(conn), anon_id, app_user_id, purge)
    result.seconds = time.monotonic() - started
    return result


def _import(client: redis.Redis, reporter: _InTransaction, anon_id: str, user_id: int, purge: bool) -> Result:
    result = Result()
    done = client.hget(KEYS.marker, raw(anon_id))
    if done is not None:
        result.counts["done"] += 1
        result.outcomes.append(Outcome(anon_id, int(done), "done"))
        if purge:
            counts, more = purge_moved(client, [anon_id])
            result.counts.update(counts)
            reporter.write(more, [])
            result.reported += more
        return result
    value = client.hget(KEYS.legacy, raw(anon_id))
    if value is None:
        result.counts["gone"] += 1
        return result
    move = _read(anon_id, user_id, value)
    if isinstance(move, Reported):
        reporter.write([move], [])
        result.counts["reported"] += 1
        result.reported.append(move)
        return result

    def reread(old_id: str, uid: int) -> Move | Reported | None:
        again = client.hget(KEYS.legacy, raw(old_id))
        return None if again is None else _read(old_id, uid, again)

    outcomes = Mover(client, purge=purge, anonymous=True).run([move], reread)
    for o in outcomes:
        if o.status == "registered":
            raise RegisteredAccount(f"{anon_id!r} became a registered account's id during the import: refusing")
        result.counts[o.status] += 1
        result.counts["collections_added"] += o.added
        result.counts["collections_already_there"] += o.same
        result.counts["id_clashes"] += len(o.clashes)
        if o.status == "moved" and purge:
            result.counts["purged"] += 1
        result.reported += o.reported
    result.outcomes += outcomes
    reporter.write(result.reported, [o.old_id for o in outcomes if o.status == "moved"])
    return result


def _read(old_id: str, user_id: int, value: bytes) -> Move | Reported:
    try:
        return Move.read(old_id, user_id, value)
    except legacy.Malformed as exc:
        return malformed(old_id, user_id, exc)
