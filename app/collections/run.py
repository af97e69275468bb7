"""`migrate --all`, and what the per-user path (per_user.py) shares with it: decide, move
atomically, purge when asked, record what was reported."""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import redis
from sqlalchemy import Engine, text

from app.collections import reported as reports
from app.collections.moves import Mover, Outcome, raw
from app.collections.planner import Decision, Walker
from app.collections.reported import CHANGED_AFTER_MIGRATION, Reported
from app.collections.store import KEYS, Scripts, answering

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

    def to_json(self) -> dict:
        """The counts, each account's outcome (`moved`: collections added, already there, clashes
        with the id each moved under), and the reports."""
        return {"counts": dict(sorted(self.counts.items())),
                "accounts": [{"old_id": o.old_id, "user_id": o.user_id, "status": o.status, "added": o.added,
                              "already_there": o.same, "clashes": [{"id": a, "moved_as": b} for a, b in o.clashes]}
                             for o in self.outcomes],
                "reported": [r.as_dict() for r in self.reported]}


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


def purge_moved(client: redis.Redis, old_ids: list[str]) -> tuple[Counter, list[Reported]]:
    """purge.lua for accounts already moved."""
    counts, reported = Counter(), []
    if not old_ids:
        return counts, reported
    script = Scripts(client).purge
    pipe = client.pipeline(transaction=False)
    for old_id in old_ids:
        script(keys=[KEYS.legacy, KEYS.marker, KEYS.digest], args=[raw(old_id)], client=pipe)
    with answering(client, "during the purge"):
        answers = pipe.execute()
    for old_id, answer in zip(old_ids, answers, strict=True):
        kind = answer.decode()
        counts["purged" if kind == "purged" else f"purge_{kind}"] += 1
        if kind == "changed":
            reported.append(Reported(old_id, CHANGED_AFTER_MIGRATION, True, {"kept": True}))
    return counts, reported


class Writer(Protocol):
    """Where a batch's reports go: `_Reporter` (its own connection) or the caller's transaction."""

    def write(self, reported: list[Reported], moved: list[str]) -> None: ...


def apply_batch(batch: list[Decision], walker: Walker, mover: Mover, purge: bool, reporter: Writer,
                result: Result) -> list[Outcome]:
    """Move, purge and report one batch of decisions; the outcomes of the moves."""
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
        counts, more = purge_moved(walker.client, [d.old_id for d in batch if d.status == "done"])
        result.counts.update(counts)
        result.counts["purged"] += sum(1 for o in outcomes if o.status == "moved")
        reported += more
    moved = [o.old_id for o in outcomes if o.status in ("moved", "done")]
    reporter.write(reported, moved + [d.old_id for d in batch if d.status == "done"])
    result.reported += reported
    return outcomes


def migrate_all(client: redis.Redis, engine: Engine, *, purge: bool = False, chunk: int = 500) -> Result:
    """Every old account's collections to its app user: each account one atomic step. One
    thread reads and normalises the next batch while another moves the previous one (and a
    third records the reports of the one before)."""
    started = last = time.monotonic()
    result = Result()
    with _Reporter(engine, background=True) as reporter, \
            ThreadPoolExecutor(1, thread_name_prefix="collections-move") as pool, \
            _fewer_gc_passes():
        with answering(client, "while reading the old accounts (hash users)"):
            walker = Walker.load(client, engine)
            total = client.hlen(KEYS.legacy)
        mover = Mover(client, purge=purge)
        moving: Future | None = None
        read = 0
        # A legacy value read again under the move (in the move thread) is a read too.
        with answering(client, "while reading the legacy collections"):
            for batch in walker.walk(chunk):
                if moving is not None:
                    moving.result()
                moving = pool.submit(apply_batch, batch, walker, mover, purge, reporter, result)
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
