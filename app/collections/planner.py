"""What would move where: every field of the legacy hash `collections` decided once, the same
way for `orgmig collections plan` (which writes nothing) and `migrate` (which then moves).

A field is
- `anonymous` when its id is not in `users` (moved only by `import-anonymous`);
- `done` when the marker says it moved already (a repeat changes nothing);
- `reported` when its account cannot be matched to exactly one app user, or its value is
  malformed (never guessed, never half-moved);
- `move` otherwise: its collections, normalised, for the app user with the same email.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import redis
from sqlalchemy import Engine

from app.collections import legacy, matching
from app.collections.moves import Move, malformed, raw
from app.collections.reported import Reported
from app.collections.store import KEYS, answering, scan_hash
from app.collections.store import text as as_text


@dataclass
class Decision:
    old_id: str
    status: str  # move | done | anonymous | reported
    user_id: int | None = None
    move: Move | None = None
    reported: Reported | None = None
    collections: int = 0
    members: int = 0
    bad_timestamps: int = 0
    existing: int | None = None  # plan only: collections already under the new key
    id_overlap: int = 0  # plan only: of those moving, how many ids the new key already holds

    def as_dict(self) -> dict:
        out: dict = {"old_id": self.old_id, "status": self.status}
        if self.user_id is not None:
            out["user_id"] = self.user_id
        if self.status in ("move", "anonymous"):
            out |= {"collections": self.collections, "members": self.members}
        if self.existing is not None:
            out |= {"already_there": self.existing, "id_overlap": self.id_overlap}
        if self.bad_timestamps:
            out["unparseable_timestamps"] = self.bad_timestamps
        if self.reported is not None:
            out["reason"] = self.reported.reason
            out |= {k: v for k, v in self.reported.detail.items() if k != "user_id"}
        return out


class Walker:
    """The state every decision reads: old accounts by email, app users by email, the marker.
    `load` reads all of it (a run over every account); the per-user path gives only what one
    address needs (app.collections.per_user)."""

    def __init__(self, client: redis.Redis, users: matching.AppUsers, accounts: matching.OldAccounts,
                 done: dict[str, int]) -> None:
        self.client, self.users, self.accounts, self.done = client, users, accounts, done

    @classmethod
    def load(cls, client: redis.Redis, engine: Engine) -> Walker:
        with engine.connect() as conn:
            users = matching.AppUsers.load(conn)
        accounts = matching.OldAccounts.load(client)
        return cls(client, users, accounts, {as_text(k): int(v) for k, v in client.hgetall(KEYS.marker).items()})

    def decide(self, old_id: str, value: bytes | None) -> Decision:
        if old_id in self.done:
            return Decision(old_id, "done", self.done[old_id])
        if old_id not in self.accounts:
            return self._anonymous(old_id, value)
        found = matching.match(old_id, self.accounts, self.users)
        if found.reason is not None:
            return Decision(old_id, "reported", reported=Reported(old_id, found.reason, False, found.detail))
        return self.read(old_id, found.user_id, value)

    def read(self, old_id: str, user_id: int, value: bytes | None) -> Decision:
        if value is None:
            return Decision(old_id, "gone", user_id)
        try:
            move = Move.read(old_id, user_id, value)
        except legacy.Malformed as exc:
            return Decision(old_id, "reported", user_id, reported=malformed(old_id, user_id, exc))
        return Decision(old_id, "move", user_id, move, collections=len(move.collections.items),
                        members=move.collections.members, bad_timestamps=len(move.collections.bad_timestamps))

    def reread(self, old_id: str, user_id: int) -> Move | Reported | None:
        """The account's legacy value read again (it changed under the move)."""
        d = self.read(old_id, user_id, self.client.hget(KEYS.legacy, raw(old_id)))
        return d.move or d.reported

    @staticmethod
    def _anonymous(old_id: str, value: bytes | None) -> Decision:
        try:
            items = orjson.loads(value) if value is not None else []
        except orjson.JSONDecodeError:
            items = []
        n = len(items) if isinstance(items, list) else 0
        members = sum(len(m) for c in items if isinstance(c, dict) and isinstance(m := c.get("members"), list)) \
            if n else 0
        return Decision(old_id, "anonymous", collections=n, members=members)

    def walk(self, chunk: int = 500) -> Iterator[list[Decision]]:
        """Every field of `collections`, decided, `chunk` at a time."""
        seen: set[str] = set()
        batch: list[Decision] = []
        for raw_id, value in scan_hash(self.client, KEYS.legacy, count=max(chunk, 1_000)):
            old_id = as_text(raw_id)
            if old_id in seen:
                continue
            seen.add(old_id)
            batch.append(self.decide(old_id, value))
            if len(batch) >= chunk:
                yield batch
                batch = []
        if batch:
            yield batch


@dataclass
class Plan:
    decisions: list[Decision] = field(default_factory=list)

    @property
    def counts(self) -> dict:
        c = Counter(d.status for d in self.decisions)
        moving = [d for d in self.decisions if d.status == "move"]
        return {"legacy_fields": len(self.decisions), "move": c["move"], "done": c["done"],
                "reported": c["reported"], "anonymous": c["anonymous"],
                "collections_to_move": sum(d.collections for d in moving),
                "members_to_move": sum(d.members for d in moving)}

    @property
    def reasons(self) -> dict[str, int]:
        return dict(sorted(Counter(d.reported.reason for d in self.decisions if d.reported).items()))

    def as_dict(self) -> dict:
        return {"counts": self.counts, "reasons": self.reasons,
                "accounts": [d.as_dict() for d in sorted(self.decisions, key=lambda d: (d.status, d.old_id))]}


def plan(client: redis.Redis, engine: Engine) -> Plan:
    """Every legacy field decided, and for those that would move, what their new key holds."""
    out = Plan()
    with answering(client, "while reading the old accounts and their collections", "nothing was written"):
        walker = Walker.load(client, engine)
        for batch in walker.walk():
            moving = [d for d in batch if d.status == "move"]
            if moving:
                for d, there in zip(moving, client.hmget(KEYS.target, [str(d.user_id) for d in moving]),
                                    strict=True):
                    _compare(d, there)
                    d.move = None  # what was read is not kept: the plan holds counts only
            out.decisions.extend(batch)
    return out


def _compare(d: Decision, there: bytes | None) -> None:
    try:
        items = orjson.loads(there) if there is not None else []
    except orjson.JSONDecodeError:
        items = None
    if not isinstance(items, list):
        d.existing = -1  # not a JSON list: the move will report target_malformed
        return
    ids = {str(c.get("id")) for c in items if isinstance(c, dict)}
    d.existing = len(items)
    d.id_overlap = sum(str(c.id) in ids for c in d.move.collections.items)
