"""Matching old accounts (hash `users`) to app users (`"user"`) by email: trimmed, compared
case-insensitively (after Unicode NFC), on both sides with the same function. A match is made
only where exactly one old account and exactly one app user hold the address; anything else is
a reason, never a guess.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import redis
from sqlalchemy import Connection, text

from app.collections import legacy
from app.collections.store import KEYS, scan_hash
from app.collections.store import text as as_text

# Why an old account's collections cannot move (each reported with the old id in its detail).
MALFORMED_ACCOUNT = "malformed_user_json"
EMAIL_MISSING = "email_missing"
EMAIL_SHARED_BY_OLD_ACCOUNTS = "email_shared_by_old_accounts"
EMAIL_SHARED_BY_APP_USERS = "email_shared_by_app_users"
NO_APP_USER = "no_app_user"


@dataclass
class AppUsers:
    """App users by normalised email: every user holding it."""

    by_email: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def load(cls, conn: Connection) -> AppUsers:
        users = cls()
        for user_id, email in conn.execute(text('SELECT id, email FROM "user" WHERE email IS NOT NULL')):
            key = legacy.normalize_email(email)
            if key is not None:
                users.by_email[key].append(user_id)
        return users


def app_user(conn: Connection, user_id: int) -> tuple[bool, str | None]:
    """(whether app user `user_id` exists, its normalised email)."""
    row = conn.execute(text('SELECT email FROM "user" WHERE id = :id'), {"id": user_id}).first()
    return (row is not None, legacy.normalize_email(row[0]) if row is not None else None)


@dataclass
class OldAccounts:
    """Every entry of hash `users`: its normalised email, or why it has none usable."""

    email_of: dict[str, str | None] = field(default_factory=dict)
    by_email: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    malformed: dict[str, str] = field(default_factory=dict)  # old id -> what is wrong

    @classmethod
    def load(cls, client: redis.Redis) -> OldAccounts:
        accounts = cls()
        for raw_id, raw in scan_hash(client, KEYS.legacy_users, count=5_000):
            old_id = as_text(raw_id)
            if old_id in accounts.email_of or old_id in accounts.malformed:
                continue  # HSCAN may return a field twice
            try:
                email = legacy.read_account(old_id, raw).email
            except legacy.Malformed as exc:
                accounts.malformed[old_id] = str(exc)
                continue
            accounts.email_of[old_id] = email
            if email is not None:
                accounts.by_email[email].append(old_id)
        return accounts

    def __contains__(self, old_id: str) -> bool:
        return old_id in self.email_of or old_id in self.malformed


@dataclass(frozen=True)
class Match:
    old_id: str
    user_id: int | None
    email: str | None
    reason: str | None = None  # None: matched
    detail: dict = field(default_factory=dict)


def match(old_id: str, accounts: OldAccounts, users: AppUsers) -> Match:
    """The app user an old account's collections belong to, or the reason there is none."""
    if old_id in accounts.malformed:
        return Match(old_id, None, None, MALFORMED_ACCOUNT, {"problem": accounts.malformed[old_id]})
    email = accounts.email_of[old_id]
    if email is None:
        return Match(old_id, None, None, EMAIL_MISSING)
    olds = accounts.by_email[email]
    if len(olds) > 1:
        return Match(old_id, None, email, EMAIL_SHARED_BY_OLD_ACCOUNTS,
                     {"old_ids": sorted(o for o in olds if o != old_id)})
    ids = users.by_email.get(email, [])
    if len(ids) > 1:
        return Match(old_id, None, email, EMAIL_SHARED_BY_APP_USERS, {"user_ids": sorted(ids)})
    if not ids:
        return Match(old_id, None, email, NO_APP_USER)
    return Match(old_id, ids[0], email)
