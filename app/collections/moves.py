"""The atomic move: one run of move.lua per account (pipelined, a few hundred at a time, each
still its own atomic step), its answer read back, and a legacy value that changed between the
read and the move read again and moved as it now is."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from app.collections import legacy
from app.collections.reported import (
    ID_CLASH,
    LEGACY_CHANGING,
    MALFORMED_COLLECTIONS,
    TARGET_MALFORMED,
    UNPARSEABLE_TIMESTAMP,
    Reported,
)
from app.collections.store import CLASH_NAMESPACE, KEYS, Keys, Scripts, explain, failed

MOVE_FAILED = "move_failed"
ATTEMPTS = 5  # reads of a legacy value that keeps changing under the move
# Accounts per run of move.lua: fewer round trips through the client and the server; each run
# keeps Redis to itself for about a millisecond.
PER_SCRIPT = 40


def raw(name: str) -> bytes:
    """A hash field as Redis holds it (names were read as UTF-8 with surrogate escapes)."""
    return name.encode("utf-8", "surrogateescape")


@dataclass
class Move:
    """One account's collections, read and normalised, ready for move.lua."""

    old_id: str
    user_id: int
    value: bytes  # the legacy value as read: moved only while it is still the same
    sha1: str  # of that value, recorded for --purge-legacy
    collections: legacy.Collections

    @classmethod
    def read(cls, old_id: str, user_id: int, value: bytes) -> Move:
        """Raises legacy.Malformed."""
        return cls(old_id, user_id, value, hashlib.sha1(value).hexdigest(), legacy.read_collections(value))


def malformed(old_id: str, user_id: int | None, exc: legacy.Malformed) -> Reported:
    detail = {"problem": str(exc)} | ({"user_id": user_id} if user_id is not None else {})
    return Reported(old_id, MALFORMED_COLLECTIONS, False, detail)


@dataclass
class Outcome:
    old_id: str
    user_id: int | None
    status: str  # moved | done | gone | registered | reported
    added: int = 0
    same: int = 0
    clashes: list[tuple[str, str]] = field(default_factory=list)  # (id taken, id given)
    reported: list[Reported] = field(default_factory=list)


def _execute(pipe: redis.client.Pipeline) -> list:
    """Send the pipelined scripts (a function of its own: tests run other clients' writes here,
    between the read and the move)."""
    return pipe.execute(raise_on_error=False)


class Mover:
    """Runs move.lua for lists of `Move`s. `reread(old_id, user_id)` reads an account's legacy
    value again when it changed meanwhile: a new Move, a Reported, or None when it is gone."""

    def __init__(self, client: redis.Redis, *, purge: bool = False, anonymous: bool = False,
                 keys: Keys = KEYS) -> None:
        self.client, self.purge, self.anonymous, self.keys = client, purge, anonymous, keys
        self.scripts = Scripts(client)

    def run(self, moves: list[Move], reread: Callable[[str, int], Move | Reported | None]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for attempt in range(1, ATTEMPTS + 1):
            if not moves:
                break
            changed = []
            for move, answer in zip(moves, self._send(moves), strict=True):
                outcome = self._outcome(move, answer)
                if outcome is None:
                    changed.append(move)
                else:
                    outcomes.append(outcome)
            moves = []
            for move in changed:
                if attempt == ATTEMPTS:
                    outcomes.append(Outcome(move.old_id, move.user_id, "reported", reported=[Reported(
                        move.old_id, LEGACY_CHANGING, False, {"user_id": move.user_id, "attempts": ATTEMPTS})]))
                    continue
                again = reread(move.old_id, move.user_id)
                if isinstance(again, Move):
                    moves.append(again)
                elif isinstance(again, Reported):
                    outcomes.append(Outcome(move.old_id, move.user_id, "reported", reported=[again]))
                else:
                    outcomes.append(Outcome(move.old_id, move.user_id, "gone"))
        return outcomes

    def _send(self, moves: list[Move]) -> list:
        """One answer per move (an exception where the whole script run failed)."""
        k = self.keys
        keys = [k.legacy, k.target, k.marker, k.digest, k.legacy_users]
        flags = [b"1" if self.purge else b"0", b"1" if self.anonymous else b"0", CLASH_NAMESPACE.bytes]
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(moves), PER_SCRIPT):
            args = list(flags)
            for m in moves[start:start + PER_SCRIPT]:
                blob, index = m.collections.packed()
                ids = m.collections.items
                dup = b"1" if len({str(c.id) for c in ids}) < len(ids) else b"0"
                args += [raw(m.old_id), str(m.user_id), m.value, m.sha1, blob, index, len(ids), dup]
            self.scripts.move(keys=keys, args=args, client=pipe)
        try:
            runs = _execute(pipe)
        except redis.RedisError as exc:
            raise failed(self.client, "during the move", exc) from None
        answers = []
        for start, run in zip(range(0, len(moves), PER_SCRIPT), runs, strict=True):
            n = min(PER_SCRIPT, len(moves) - start)
            answers += [run] * n if isinstance(run, Exception) else run
        return answers

    def _outcome(self, move: Move, answer) -> Outcome | None:
        """What an answer of move.lua means (None: the legacy value changed, read it again)."""
        if isinstance(answer, redis.ConnectionError | redis.TimeoutError):
            raise failed(self.client, "during the move", answer)
        if isinstance(answer, Exception):
            return Outcome(move.old_id, move.user_id, "reported", reported=[Reported(
                move.old_id, MOVE_FAILED, False, {"user_id": move.user_id, "error": explain(answer)})])
        kind = answer[0].decode()
        if kind == "changed":
            return None
        if kind == "error":
            return Outcome(move.old_id, move.user_id, "reported", reported=[Reported(
                move.old_id, MOVE_FAILED, False, {"user_id": move.user_id, "error": explain(answer[1].decode())})])
        if kind == "done":
            return Outcome(move.old_id, int(answer[1]), "done")
        if kind in ("gone", "registered"):
            return Outcome(move.old_id, move.user_id, kind)
        if kind == "target_malformed":
            return Outcome(move.old_id, move.user_id, "reported", reported=[Reported(
                move.old_id, TARGET_MALFORMED, False, {"user_id": move.user_id, "key": self.keys.target})])
        added, same = int(answer[1]), int(answer[2])
        pairs = [(answer[i].decode(), answer[i + 1].decode()) for i in range(3, len(answer), 2)]
        outcome = Outcome(move.old_id, move.user_id, "moved", added, same, pairs)
        if pairs:
            outcome.reported.append(Reported(move.old_id, ID_CLASH, True, {
                "user_id": move.user_id, "clashes": [{"id": a, "moved_as": b} for a, b in pairs]}))
        bad = move.collections.bad_timestamps
        if bad:
            outcome.reported.append(Reported(move.old_id, UNPARSEABLE_TIMESTAMP, True, {
                "user_id": move.user_id,
                "timestamps": [{"collection": c, "field": f, "legacy": v} for c, f, v in bad]}))
        return outcome
