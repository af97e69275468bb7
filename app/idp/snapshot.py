"""Writes export pages into the snapshot tables, set-based, one transaction per page.

Each page's rows and its stream's checkpoint (the next cursor, pages and items so far) commit
together, so a killed export loses nothing and resumes from the page after the last one
committed. Every method here is synchronous and touches only the database: the export loop
fetches a page over the network first and only then calls `write_page` (in a worker thread),
so no network call ever happens while a transaction is open.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.engine import Connection

from app import db
from app.batch import Attempts, SqlFiles
from app.config import get_settings
from app.errors import DatabaseError
from app.idp import jsonfast
from app.idp.pages import Page
from app.schema.idp_snapshot import ACCOUNT_TABLES

# What revision 0005 creates and this module writes (app.schema.idp_snapshot defines them).
TABLES = ("idp_export_run", "idp_export_cursor", "idp_user", "idp_group", "idp_membership")

SQL = SqlFiles(Path(__file__).parent)  # snapshot.sql
log = logging.getLogger("app.idp")


@dataclass
class StreamState:
    cursor: str | None
    done: bool
    pages: int
    items: int


@dataclass
class RunInfo:
    id: int
    mode: str
    since: datetime | None
    resumed: bool
    requests: int
    streams: dict[str, StreamState]
    abandoned: int | None = None  # the unfinished run this one set aside (a new run only)


@dataclass
class Counts:
    users: int
    groups: int
    memberships: int


class SnapshotWriter:
    def __init__(self, engine: Engine, provider: str) -> None:
        self.engine = engine
        self.provider = provider

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Connection]:
        """One transaction with the settings' lock and statement timeouts."""
        with self.engine.connect() as conn, db.transaction(conn):
            yield conn

    def check_tables(self) -> None:
        """A DatabaseError saying what to run when the snapshot tables are not there."""
        missing = [name for name in TABLES if not inspect(self.engine).has_table(name)]
        if missing:
            raise DatabaseError(f"the snapshot tables are missing ({', '.join(missing)}): "
                                "run `alembic upgrade head` first")

    def open_run(self, mode: str, since: datetime | None, restart: bool = False) -> RunInfo:
        """Resume this provider's unfinished run when it asked for the same thing (and `restart`
        is not asked for); otherwise set it aside (status `abandoned`: its checkpoints are not
        used again, the rows it wrote stay until the new run replaces them) and start a new one."""
        with self._begin() as conn:
            row = conn.execute(SQL("snapshot.unfinished_run"), {"provider": self.provider}).first()
            if row is not None and row.mode == mode and row.since == since and not restart:
                conn.execute(SQL("snapshot.resume_run"), {"run_id": row.id})
                streams = {r.stream: StreamState(r.cursor, r.done, r.pages, r.items)
                           for r in conn.execute(SQL("snapshot.checkpoints"), {"run_id": row.id})}
                return RunInfo(row.id, mode, since, True, int(row.requests), streams)
            if row is not None:
                conn.execute(SQL("snapshot.abandon_run"), {"run_id": row.id})
            run_id = conn.execute(SQL("snapshot.new_run"),
                                  {"provider": self.provider, "mode": mode, "since": since}).scalar_one()
            return RunInfo(run_id, mode, since, False, 0, {}, abandoned=row.id if row is not None else None)

    def rewind(self, run_id: int, stream: str, cursor: str | None, items: int, stale: str | None) -> None:
        """When the checkpoint of an unfinished stream is `stale` (the next cursor its last page
        written gave, which leads nowhere), put it back to `cursor`, the one that fetched that page
        (`items` long): a resume reads the page again (its rows are upserted, the same) and goes
        on from what it says then. A checkpoint behind that page is left as it is."""
        with self._begin() as conn:
            conn.execute(SQL("snapshot.rewind"), {"run_id": run_id, "stream": stream, "cursor": cursor,
                                                  "items": items, "stale": stale})

    def restart_stream(self, run_id: int, stream: str, stale: str) -> None:
        """When the provider refuses the checkpoint cursor of an unfinished stream (`stale`, as it
        expired), put the stream back to its start: a resume reads it again from its first page
        (the rows it wrote are upserted again, the same; a full run's pruning and a group's member
        sweep go by the run's id, which they carry either way)."""
        with self._begin() as conn:
            conn.execute(SQL("snapshot.restart_stream"), {"run_id": run_id, "stream": stream, "stale": stale})

    def write_page(self, run_id: int, stream: str, page: Page, members_of: tuple[str, str] | None) -> None:
        """One page: its rows, the streams it discovered and its checkpoint, in one transaction.
        A transaction that timed out or lost a deadlock is rolled back whole and tried again
        after a backoff (ORGMIG_MAX_BATCH_ATTEMPTS times in all, ORGMIG_BACKOFF_* apart)."""
        Attempts.of(get_settings(), retryable=db.is_retryable, level=logging.INFO, logger=log).call(
            f"writing a page of {stream}", lambda _: self._write_page(run_id, stream, page, members_of))

    def _write_page(self, run_id: int, stream: str, page: Page, members_of: tuple[str, str] | None) -> None:
        params = {"provider": self.provider, "run_id": run_id}
        done = page.next_cursor is None
        with self._begin() as conn:
            for rows, upsert in ((page.users, SQL("snapshot.upsert_users")),
                                 (page.groups, SQL("snapshot.upsert_groups")),
                                 (page.members, SQL("snapshot.upsert_members"))):
                if rows:
                    conn.execute(upsert, {**params, "rows": jsonfast.dumps(rows)})
            if page.spawn:
                conn.execute(SQL("snapshot.spawn"), {"run_id": run_id, "streams": page.spawn})
            if done and members_of is not None:
                kind, group_id = members_of
                conn.execute(SQL("snapshot.sweep_group_members"), {**params, "kind": kind, "group_id": group_id})
            conn.execute(SQL("snapshot.checkpoint"), {"run_id": run_id, "stream": stream, "cursor": page.next_cursor,
                                                      "done": done, "items": page.count})

    def touch_run(self, run_id: int, requests: int) -> None:
        """Record the requests made so far (the export loop calls this every few seconds)."""
        with self._begin() as conn:
            conn.execute(SQL("snapshot.touch_run"), {"run_id": run_id, "requests": requests})

    def finish_run(self, run_id: int, mode: str, requests: int) -> Counts:
        """Close the run. A full export also removes what it did not see: the provider no longer
        has it. An incremental export leaves everything it did not fetch as it was."""
        params = {"provider": self.provider, "run_id": run_id}
        with self._begin() as conn:
            if mode == "full":
                conn.execute(SQL("snapshot.prune_members"), params)
                conn.execute(SQL("snapshot.prune_groups"), params)
                conn.execute(SQL("snapshot.prune_users"), params)
            counts = Counts(**conn.execute(SQL("snapshot.counts"), params).mappings().one())
            conn.execute(SQL("snapshot.finish_run"), {**params, "requests": requests, **vars(counts)})
            # The accounts' tables as the sync and reconcile will read them: planner statistics now,
            # not whenever autovacuum gets to them (without, a comparison of 20,000 accounts took
            # 137 s instead of 0.8 s). Where the snapshot barely changed, nothing is analyzed.
            db.analyze_stale(conn, ACCOUNT_TABLES)
        return counts

    def fail_run(self, run_id: int, error: str, requests: int) -> None:
        with self._begin() as conn:
            conn.execute(SQL("snapshot.fail_run"), {"run_id": run_id, "error": error[:2000], "requests": requests})
