"""Reported accounts in `orgmig_report` (revision 0003): step `collections`, source table
`redis:collections`, and as source id a stable bigint of the old id (the first 8 bytes of its
SHA-256, big-endian, signed), since old ids are text; the old id itself is in `detail`. A DBA
finds an account's rows with

    SELECT * FROM orgmig_report WHERE step = 'collections' AND detail->>'old_id' = '<old id>';

or computes the source id in SQL:
`('x' || substr(encode(sha256(convert_to('<old id>', 'UTF8')), 'hex'), 1, 16))::bit(64)::bigint`.

One row per account and reason: reporting it again changes the row only where it now says
something else. When an account's collections
have moved, the rows saying they could not (`migrated = false`) are deleted: they are no longer
true. Details hold ids and counts, never an email or a collection's content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from sqlalchemy import Connection, Engine, inspect, text

from app.errors import ConfigError

STEP = "collections"
SOURCE_TABLE = "redis:collections"

# Reasons besides the matching ones (app.collections.matching)
MALFORMED_COLLECTIONS = "malformed_collections_json"
TARGET_MALFORMED = "target_malformed"  # the user's field of collections2 is not a JSON list
LEGACY_CHANGING = "legacy_changing"  # the legacy value kept changing under the move
ID_CLASH = "id_clash"  # moved under a new id (migrated)
UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"  # moved with a null timestamp (migrated)
CHANGED_AFTER_MIGRATION = "legacy_changed_after_migration"  # not purged: written after the move


def source_id(old_id: str) -> int:
    """The bigint standing for an old id in `orgmig_report.source_id`."""
    digest = hashlib.sha256(old_id.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class Reported:
    old_id: str
    reason: str
    migrated: bool
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"old_id": self.old_id, "reason": self.reason, "migrated": self.migrated, **self.detail}


_UPSERT = text(
    """
    INSERT INTO orgmig_report (step, source_table, source_id, reason, migrated, detail)
    SELECT :step, :source_table, r.source_id, r.reason, r.migrated, r.detail
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS r(source_id bigint, reason text, migrated boolean, detail jsonb)
    ON CONFLICT (step, source_table, source_id, reason)
    DO UPDATE SET migrated = EXCLUDED.migrated, detail = EXCLUDED.detail, created_at = now()
    WHERE (orgmig_report.migrated, orgmig_report.detail) IS DISTINCT FROM (EXCLUDED.migrated, EXCLUDED.detail)
    """
)
_CLEAR = text(
    """
    DELETE FROM orgmig_report
    WHERE step = :step AND source_table = :source_table AND NOT migrated
      AND source_id = ANY(CAST(:ids AS bigint[]))
    """
)


def check_table(engine: Engine) -> None:
    """orgmig_report must exist: the database is at revision 0003 or later."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("orgmig_report"):
            raise ConfigError("the database has no orgmig_report table: run `alembic upgrade head` first")


def record(conn: Connection, reported: Iterable[Reported], moved_old_ids: Iterable[str] = ()) -> None:
    """Upsert `reported` and clear the not-migrated rows of the accounts that moved, in the
    caller's transaction."""
    moved = [source_id(o) for o in moved_old_ids]
    if moved:
        conn.execute(_CLEAR, {"step": STEP, "source_table": SOURCE_TABLE, "ids": moved})
    # One row per account and reason (the last one wins within a call, as ON CONFLICT needs).
    rows = {(source_id(r.old_id), r.reason): {
        "source_id": source_id(r.old_id), "reason": r.reason, "migrated": r.migrated,
        "detail": {"old_id": r.old_id, **r.detail}} for r in reported}
    if rows:
        conn.execute(_UPSERT, {"step": STEP, "source_table": SOURCE_TABLE,
                               "rows": orjson.dumps(list(rows.values())).decode()})
