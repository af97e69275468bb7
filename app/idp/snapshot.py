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

from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection

from app import db
from app.batch import Attempts
from app.config import get_settings
from app.errors import DatabaseError
from app.idp import jsonfast
from app.idp.pages import Page

# What revision 0005 creates and this module writes (app.schema.idp_snapshot defines them).
TABLES = ("idp_export_run", "idp_export_cursor", "idp_user", "idp_group", "idp_membership")

USER_COLUMNS = (
    "external_id text, login text, email text, email_verified boolean, first_name text, "
    "last_name text, status text, idp_created_at timestamptz, idp_updated_at timestamptz, "
    "attributes jsonb, raw jsonb"
)
GROUP_COLUMNS = (
    "kind text, external_id text, name text, description text, group_type text, "
    "parent_external_id text, attributes jsonb, raw jsonb"
)
MEMBER_COLUMNS = "kind text, group_external_id text, user_external_id text, attributes jsonb"

UPSERT_USERS = text(f"""
INSERT INTO idp_user (provider, external_id, login, email, email_verified, first_name, last_name,
                      status, idp_created_at, idp_updated_at, attributes, raw,
                      first_seen_run_id, last_seen_run_id)
SELECT DISTINCT ON (r.external_id)
       :provider, r.external_id, r.login, r.email, r.email_verified, r.first_name, r.last_name,
       r.status, r.idp_created_at, r.idp_updated_at, coalesce(r.attributes, '{{}}'::jsonb), r.raw,
       :run_id, :run_id
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({USER_COLUMNS})
ORDER BY r.external_id
ON CONFLICT (provider, external_id) DO UPDATE SET
    login = EXCLUDED.login, email = EXCLUDED.email, email_verified = EXCLUDED.email_verified,
    first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name, status = EXCLUDED.status,
    idp_created_at = EXCLUDED.idp_created_at, idp_updated_at = EXCLUDED.idp_updated_at,
    attributes = EXCLUDED.attributes, raw = EXCLUDED.raw, last_seen_run_id = EXCLUDED.last_seen_run_id
""")

UPSERT_GROUPS = text(f"""
INSERT INTO idp_group (provider, kind, external_id, name, description, group_type,
                       parent_external_id, attributes, raw, first_seen_run_id, last_seen_run_id)
SELECT DISTINCT ON (r.kind, r.external_id)
       :provider, r.kind, r.external_id, r.name, r.description, r.group_type,
       r.parent_external_id, coalesce(r.attributes, '{{}}'::jsonb), r.raw, :run_id, :run_id
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({GROUP_COLUMNS})
ORDER BY r.kind, r.external_id
ON CONFLICT (provider, kind, external_id) DO UPDATE SET
    name = EXCLUDED.name, description = EXCLUDED.description, group_type = EXCLUDED.group_type,
    parent_external_id = EXCLUDED.parent_external_id, attributes = EXCLUDED.attributes,
    raw = EXCLUDED.raw, last_seen_run_id = EXCLUDED.last_seen_run_id
""")

UPSERT_MEMBERS = text(f"""
INSERT INTO idp_membership (provider, kind, group_external_id, user_external_id, attributes,
                            first_seen_run_id, last_seen_run_id)
SELECT DISTINCT ON (r.kind, r.group_external_id, r.user_external_id)
       :provider, r.kind, r.group_external_id, r.user_external_id,
       coalesce(r.attributes, '{{}}'::jsonb), :run_id, :run_id
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({MEMBER_COLUMNS})
ORDER BY r.kind, r.group_external_id, r.user_external_id
ON CONFLICT (provider, kind, group_external_id, user_external_id) DO UPDATE SET
    attributes = EXCLUDED.attributes, last_seen_run_id = EXCLUDED.last_seen_run_id
""")

CHECKPOINT = text("""
INSERT INTO idp_export_cursor (run_id, stream, cursor, done, pages, items, updated_at)
VALUES (:run_id, :stream, :cursor, :done, 1, :items, now())
ON CONFLICT (run_id, stream) DO UPDATE SET
    cursor = EXCLUDED.cursor, done = EXCLUDED.done,
    pages = idp_export_cursor.pages + 1, items = idp_export_cursor.items + EXCLUDED.items,
    updated_at = now()
""")

SPAWN = text("""
INSERT INTO idp_export_cursor (run_id, stream)
SELECT :run_id, s FROM unnest(CAST(:streams AS text[])) AS s
ON CONFLICT (run_id, stream) DO NOTHING
""")

SWEEP_GROUP_MEMBERS = text("""
DELETE FROM idp_membership
WHERE provider = :provider AND kind = :kind AND group_external_id = :group_id
  AND last_seen_run_id <> :run_id
""")

log = logging.getLogger("app.idp")

TOUCH_RUN = text("UPDATE idp_export_run SET requests = :requests, updated_at = now() WHERE id = :run_id")


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
            row = conn.execute(
                text("SELECT id, mode, since, requests FROM idp_export_run "
                     "WHERE provider = :p AND status IN ('running', 'failed') FOR UPDATE"),
                {"p": self.provider},
            ).first()
            if row is not None and row.mode == mode and row.since == since and not restart:
                conn.execute(
                    text("UPDATE idp_export_run SET status = 'running', last_error = NULL, "
                         "updated_at = now() WHERE id = :id"),
                    {"id": row.id},
                )
                streams = {
                    r.stream: StreamState(r.cursor, r.done, r.pages, r.items)
                    for r in conn.execute(
                        text("SELECT stream, cursor, done, pages, items FROM idp_export_cursor "
                             "WHERE run_id = :id"),
                        {"id": row.id},
                    )
                }
                return RunInfo(row.id, mode, since, True, int(row.requests), streams)
            if row is not None:
                conn.execute(
                    text("UPDATE idp_export_run SET status = 'abandoned', updated_at = now() WHERE id = :id"),
                    {"id": row.id},
                )
            run_id = conn.execute(
                text("INSERT INTO idp_export_run (provider, mode, since) VALUES (:p, :m, :s) RETURNING id"),
                {"p": self.provider, "m": mode, "s": since},
            ).scalar_one()
            return RunInfo(run_id, mode, since, False, 0, {}, abandoned=row.id if row is not None else None)

    def rewind(self, run_id: int, stream: str, cursor: str | None, items: int, stale: str | None) -> None:
        """When the checkpoint of an unfinished stream is `stale` (the next cursor its last page
        written gave, which leads nowhere), put it back to `cursor`, the one that fetched that page
        (`items` long): a resume reads the page again (its rows are upserted, the same) and goes
        on from what it says then. A checkpoint behind that page is left as it is."""
        with self._begin() as conn:
            conn.execute(
                text("UPDATE idp_export_cursor SET cursor = :cursor, pages = greatest(pages - 1, 0),"
                     " items = greatest(items - :items, 0), updated_at = now()"
                     " WHERE run_id = :run_id AND stream = :stream AND NOT done AND cursor = :stale"),
                {"run_id": run_id, "stream": stream, "cursor": cursor, "items": items, "stale": stale},
            )

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
            if page.users:
                conn.execute(UPSERT_USERS, {**params, "rows": jsonfast.dumps(page.users)})
            if page.groups:
                conn.execute(UPSERT_GROUPS, {**params, "rows": jsonfast.dumps(page.groups)})
            if page.members:
                conn.execute(UPSERT_MEMBERS, {**params, "rows": jsonfast.dumps(page.members)})
            if page.spawn:
                conn.execute(SPAWN, {"run_id": run_id, "streams": page.spawn})
            if done and members_of is not None:
                kind, group_id = members_of
                conn.execute(SWEEP_GROUP_MEMBERS, {**params, "kind": kind, "group_id": group_id})
            conn.execute(CHECKPOINT, {"run_id": run_id, "stream": stream, "cursor": page.next_cursor,
                                      "done": done, "items": page.count})

    def touch_run(self, run_id: int, requests: int) -> None:
        """Record the requests made so far (the export loop calls this every few seconds)."""
        with self._begin() as conn:
            conn.execute(TOUCH_RUN, {"run_id": run_id, "requests": requests})

    def finish_run(self, run_id: int, mode: str, requests: int) -> Counts:
        """Close the run. A full export also removes what it did not see: the provider no longer
        has it. An incremental export leaves everything it did not fetch as it was."""
        params = {"provider": self.provider, "run_id": run_id}
        with self._begin() as conn:
            if mode == "full":
                # Rows this run saw carry its id; every other row of the provider carries an
                # earlier run's (run ids only grow), which the index on last_seen_run_id finds.
                for table in ("idp_membership", "idp_group", "idp_user"):
                    conn.execute(
                        text(f"DELETE FROM {table} WHERE last_seen_run_id < :run_id AND provider = :provider"),
                        params,
                    )
            counts = Counts(*(
                conn.execute(text(f"SELECT count(*) FROM {t} WHERE provider = :provider"), params).scalar_one()
                for t in ("idp_user", "idp_group", "idp_membership")
            ))
            conn.execute(
                text("""UPDATE idp_export_run
                        SET status = 'finished', finished_at = now(), updated_at = now(),
                            requests = :requests, users_count = :u, groups_count = :g,
                            memberships_count = :m, last_error = NULL
                        WHERE id = :run_id"""),
                {**params, "requests": requests, "u": counts.users, "g": counts.groups, "m": counts.memberships},
            )
        return counts

    def fail_run(self, run_id: int, error: str, requests: int) -> None:
        with self._begin() as conn:
            conn.execute(
                text("UPDATE idp_export_run SET status = 'failed', last_error = :e, requests = :r, "
                     "updated_at = now() WHERE id = :id"),
                {"id": run_id, "e": error[:2000], "r": requests},
            )
