"""`migrate` (one app user, or every account) and `import_anonymous`: decide, move atomically,
purge when asked, record what was reported."""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import redis
from sqlalchemy import Engine, text

from app.collections import legacy, matching
from app.collections import report as reports
from app.collections.moves import Move, Mover, Outcome, malformed, raw
from app.collections.planner import Decision, Walker
from app.collections.report import CHANGED_AFTER_MIGRATION, Reported
from app.collections.store import KEYS, Scripts, explain
from app.errors import ConfigError, DatabaseError

log = logging.getLogger("orgmig.collections")
PROGRESS_EVERY_S = 5.0


@dataclass
class Result:
    """What a migrate or import did, by account."""

    counts: Counter = field(default_factory=Counter)
    reported: list[Reported] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def accounts(self) -> int:
        """Legacy fields looked at (moved, done, reported, anonymous, gone)."""
        return sum(v for k, v in self.counts.items() if k in ("moved", "done", "reported", "anonymous", "gone"))

    def reasons(self) -> dict[str, int]:
        return dict(sorted(Counter(r.reason for r in self.reported).items()))


class _Reporter:
    """Writes each batch's reports on one connection, a transaction per batch; deletes the stale
    not-migrated rows of accounts that moved, looking only where such rows exist. In the
    background (`migrate --all`), a thread of its own writes one batch while the next moves; a
    failed write ends the run at the next batch."""

    def __init__(self, engine: Engine, background: bool = False) -> None:
        reports.check_table(engine)
        self.conn = engine.connect()
        self.stale = set(self.conn.execute(text(
            "SELECT source_id FROM orgmig_report WHERE step = :step AND source_table = :t AND NOT migrated"),
            {"step": reports.STEP, "t": reports.SOURCE_TABLE}).scalars())
        self.conn.commit()
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="collections-report") if background else None
        self.writing: Future | None = None

    def __enter__(self) -> _Reporter:
        return self

    def __exit__(self, kind, *exc) -> None:
        try:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
                if kind is None and self.writing is not None:
                    self.writing.result()
        finally:
            self.conn.close()

    def write(self, reported: list[Reported], moved: list[str]) -> None:
        if self.pool is None:
            self._write(reported, moved)
            return
        if self.writing is not None:
            self.writing.result()
        self.writing = self.pool.submit(self._write, reported, moved)

    def _write(self, reported: list[Reported], moved: list[str]) -> None:
        cleared = [o for o in moved if reports.source_id(o) in self.stale] if self.stale else []
        if reported or cleared:
            reports.record(self.conn, reported, cleared)
            self.conn.commit()
            self.stale.difference_update(reports.source_id(o) for o in cleared)


def _purge(client: redis.Redis, old_ids: list[str]) -> tuple[Counter, list[Reported]]:
    """purge.lua for accounts already moved."""
    counts, reported = Counter(), []
    if not old_ids:
        return counts, reported
    script = Scripts(client).purge
    pipe = client.pipeline(transaction=False)
    for old_id in old_ids:
        script(keys=[KEYS.legacy, KEYS.marker, KEYS.digest], args=[raw(old_id)], client=pipe)
    try:
        answers = pipe.execute()
    except redis.RedisError as exc:
        raise DatabaseError(f"Redis failed during the purge: {explain(exc)}") from None
    for old_id, answer in zip(old_ids, answers, strict=True):
        kind = answer.decode()
        counts["purged" if kind == "purged" else f"purge_{kind}"] += 1
        if kind == "changed":
            reported.append(Reported(old_id, CHANGED_AFTER_MIGRATION, True, {"kept": True}))
    return counts, reported


def _apply(batch: list[Decision], walker: Walker, mover: Mover, purge: bool, reporter: _Reporter,
           result: Result) -> None:
    """Move, purge and report one batch of decisions."""
    outcomes = mover.run([d.move for d in batch if d.status == "move"], walker.reread)
    reported = [d.reported for d in batch if d.reported is not None]
    reported += [r for o in outcomes for r in o.reported]
    for d in batch:
        if d.status != "move":
            result.counts[d.status] += 1
    for o in outcomes:
        result.counts[o.status] += 1
        result.counts["collections_added"] += o.added
        result.counts["collections_already_there"] += o.same
        result.counts["id_clashes"] += len(o.clashes)
    if purge:
        counts, more = _purge(walker.client, [d.old_id for d in batch if d.status == "done"])
        result.counts.update(counts)
        result.counts["purged"] += sum(1 for o in outcomes if o.status == "moved")
        reported += more
    moved = [o.old_id for o in outcomes if o.status in ("moved", "done")]
    reporter.write(reported, moved + [d.old_id for d in batch if d.status == "done"])
    result.reported += reported


def migrate_all(client: redis.Redis, engine: Engine, *, purge: bool = False, chunk: int = 500) -> Result:
    """Every old account's collections to its app user: each account one atomic step. One
    thread reads and normalises the next batch while another moves the previous one (and a
    third records the reports of the one before)."""
    started = last = time.monotonic()
    result = Result()
    with _Reporter(engine, background=True) as reporter, \
            ThreadPoolExecutor(1, thread_name_prefix="collections-move") as pool, \
            _fewer_gc_passes():
        walker = Walker(client, engine)
        mover = Mover(client, purge=purge)
        moving: Future | None = None
        read, total = 0, client.hlen(KEYS.legacy)
        for batch in walker.walk(chunk):
            if moving is not None:
                moving.result()
            moving = pool.submit(_apply, batch, walker, mover, purge, reporter, result)
            read += len(batch)
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_S:
                last = now
                log.info("collections: %s of %s legacy fields read, %.0f/s", f"{read:,}", f"{total:,}",
                         read / (now - started))
        if moving is not None:
            moving.result()
    result.seconds = time.monotonic() - started
    return result


@contextlib.contextmanager
def _fewer_gc_passes() -> Iterator[None]:
    """Collect cyclic garbage less often during a run: every JSON value parsed is a container
    the collector would otherwise scan again and again (a third of the run's time), and a run
    makes next to no reference cycles. The process's thresholds are restored afterwards, and
    whatever cyclic garbage waited (the caller's too: a connection, say) is collected then."""
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.collect()


def migrate_user(client: redis.Redis, engine: Engine, user_id: int, *, purge: bool = False) -> Result:
    """The collections of the old account holding app user `user_id`'s email."""
    started = time.monotonic()
    with engine.connect() as conn:
        exists, email = matching.app_user(conn, user_id)
    if not exists:
        raise ConfigError(f"there is no app user with id {user_id}")
    result = Result()
    if email is None:
        result.counts["no_email"] += 1
        return result
    walker = Walker(client, engine)
    olds = sorted(walker.accounts.by_email.get(email, []))
    if not olds:
        result.counts["no_old_account"] += 1
    values = client.hmget(KEYS.legacy, [raw(o) for o in olds]) if olds else []
    batch = [walker.decide(o, v) if v is not None or o in walker.done else Decision(o, "gone", user_id)
             for o, v in zip(olds, values, strict=True)]
    with _Reporter(engine) as reporter:
        _apply(batch, walker, Mover(client, purge=purge), purge, reporter, result)
    result.seconds = time.monotonic() - started
    return result


def import_anonymous(client: redis.Redis, engine: Engine, anon_id: str, user_id: int, *,
                     purge: bool = False) -> Result:
    """Anonymous collections (a field of `collections` whose id is not in `users`) to app user
    `user_id`, as one atomic step; refused for a registered account's id; a repeat adds nothing."""
    with engine.connect() as conn:
        exists, _ = matching.app_user(conn, user_id)
    if not exists:
        raise ConfigError(f"there is no app user with id {user_id}")
    if client.hexists(KEYS.legacy_users, raw(anon_id)):
        raise ConfigError(f"{anon_id!r} is a registered account's id, not an anonymous one: refusing to import"
                          " its collections (`orgmig collections migrate` moves a registered account's)")
    with _Reporter(engine) as reporter:
        return _import(client, reporter, anon_id, user_id, purge)


def _import(client: redis.Redis, reporter: _Reporter, anon_id: str, user_id: int, purge: bool) -> Result:
    result = Result()
    done = client.hget(KEYS.marker, raw(anon_id))
    if done is not None:
        result.counts["done"] += 1
        result.outcomes.append(Outcome(anon_id, int(done), "done"))
        if purge:
            counts, more = _purge(client, [anon_id])
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
            raise ConfigError(f"{anon_id!r} became a registered account's id during the import: refusing")
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
