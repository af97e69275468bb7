"""The database side of `orgmig writeback`: the links to set (one short read), what each write did
(short transactions, a few results at a time, retried when they time out or deadlock), the failures
reported in orgmig_report (step `writeback:<provider>`), and a lock so that two write-backs of one
provider never run side by side. Every method is synchronous and touches only the database: the
write loop calls them between requests, never around one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from app import db
from app.batch import Attempts, SqlFiles
from app.config import get_settings
from app.errors import ConfigError, DatabaseError
from app.idp import jsonfast
from app.provider_names import PROVIDERS

# the statements, with the rows of what some writes did (writeback.outcomes) expanded where they read them
SQL = SqlFiles(Path(__file__).parent, outcomes=SqlFiles(Path(__file__).parent).source("writeback.outcomes"))
TABLES = ("user_identity", "idp_user", "idp_export_run", "orgmig_report", "orgmig_writeback")
LOCK_CLASS = 0x6F726D67  # "ormg", as app.batch.revision's migration lock
LOCK_BASE = 0x7762_0000  # "wb" and the provider's place in the registry

log = logging.getLogger("app.writeback")


@dataclass(frozen=True)
class Link:
    external_id: str
    user_id: int
    snapshot_holds: bool  # the latest export saw the value on the account
    recorded_holds: bool  # the bookkeeping says it is set, and no later export says otherwise
    recorded_as_set: bool  # the bookkeeping says it is set, whatever an export says
    gone: bool = False  # a write-back found it deleted at the provider, and no export has seen it since

    @property
    def value(self) -> str:
        """The app's id as the provider gets it: `"user".id` in decimal."""
        return str(self.user_id)


@dataclass(frozen=True)
class Outcome:
    link: Link
    status: str  # written | present | failed | gone (deleted at the provider)
    http_status: int | None = None
    error: str | None = None

    def row(self) -> dict:
        return {"external_id": self.link.external_id, "user_id": self.link.user_id, "value": self.link.value,
                "status": self.status, "http_status": self.http_status, "error": self.error}


@dataclass
class Plan:
    links: int
    by_snapshot: list[Link]  # skipped: the snapshot says the account holds the value
    by_record: int  # skipped: an earlier write-back set it
    gone: int  # skipped: an earlier write-back found the account deleted at the provider
    todo: list[Link]


class Store:
    def __init__(self, engine: Engine, provider: str, attribute: str) -> None:
        self.engine = engine
        self.provider = provider
        self.attribute = attribute
        self.step = f"writeback:{provider}"

    def _params(self, **more) -> dict:
        return {"provider": self.provider, "attribute": self.attribute, "step": self.step, **more}

    def check_tables(self) -> None:
        missing = [name for name in TABLES if not inspect(self.engine).has_table(name)]
        if missing:
            raise DatabaseError(f"tables the write-back needs are missing ({', '.join(missing)}): run"
                                " `alembic upgrade head` first")

    def plan(self) -> Plan:
        """Every link of the provider, sorted into what is known to be set and what is left."""
        with self.engine.connect() as conn, db.transaction(conn, rollback=True):
            rows = conn.execute(SQL("writeback.links"), self._params()).all()
        links = [Link(r.external_id, r.user_id, r.snapshot_holds, r.recorded_holds, r.recorded_as_set, r.gone)
                 for r in rows]
        by_snapshot = [link for link in links if link.snapshot_holds]
        by_record = sum(1 for link in links if link.recorded_holds and not link.snapshot_holds)
        gone = sum(1 for link in links if link.gone and not (link.snapshot_holds or link.recorded_holds))
        todo = [link for link in links if not (link.snapshot_holds or link.recorded_holds or link.gone)]
        return Plan(len(links), by_snapshot, by_record, gone, todo)

    def record(self, outcomes: list[Outcome]) -> None:
        """What some writes did, and their reports, in one transaction (retried like a page of
        the export when it times out or loses a deadlock)."""
        if not outcomes:
            return
        params = self._params(rows=jsonfast.dumps([o.row() for o in outcomes]))

        def attempt(_: int) -> None:
            with self.engine.connect() as conn, db.transaction(conn):
                conn.execute(SQL("writeback.record"), params)
                conn.execute(SQL("writeback.report"), params)

        Attempts.of(get_settings(), retryable=db.is_retryable, level=logging.INFO, logger=log).call(
            f"recording {len(outcomes)} write-back results", attempt)

    def confirm(self, links: list[Link]) -> None:
        """Accounts the snapshot shows holding the value are recorded as such (`present`), so the
        bookkeeping answers for every link and their old failure reports go."""
        fresh = [link for link in links if not link.recorded_as_set]
        for start in range(0, len(fresh), 5000):
            self.record([Outcome(link, "present") for link in fresh[start:start + 5000]])

    def tidy(self) -> None:
        with self.engine.connect() as conn, db.transaction(conn):
            conn.execute(SQL("writeback.tidy"), self._params())

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One write-back per provider and database at a time: a session advisory lock, held on a
        connection that is otherwise idle (no transaction stays open while requests are out)."""
        key = {"k1": LOCK_CLASS, "k2": LOCK_BASE + PROVIDERS.index(self.provider)}
        with self.engine.connect() as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k1, :k2)"), key).scalar()
            conn.commit()
            if not got:
                raise ConfigError(f"another `orgmig writeback --provider {self.provider}` is running on this"
                                  " database: let it finish, or stop it, and run this again")
            try:
                yield
            finally:
                with contextlib.suppress(DBAPIError):
                    conn.execute(text("SELECT pg_advisory_unlock(:k1, :k2)"), key)
                    conn.commit()
