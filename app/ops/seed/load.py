"""`seed_legacy`: append synthetic rows to `user_settings` in one transaction (lock, INSERT,
indexes, identity sequence) and count what it wrote."""

from __future__ import annotations

import time

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from app.db import DatabaseError, explain
from app.ops.seed.generate import insert_sql, seed_offset
from app.ops.seed.summary import SeedSummary, count_kinds

MISSING_TABLE = "user_settings does not exist: run `alembic upgrade 0001` first"

# What `orgmig seed-legacy` and `orgmig demo` accept: --users up to this many rows, --seed a bigint.
MAX_USERS = 50_000_000
SEEDS = (-(2**63), 2**63 - 1)

# Seeds at least this large (and at least as large as the table) rebuild the secondary indexes.
REBUILD_INDEXES_FROM = 50_000

# Indexes on user_settings that no constraint owns: (schema-qualified name, CREATE INDEX statement).
_SECONDARY_INDEXES = """
SELECT format('%I.%I', n.nspname, i.relname), pg_get_indexdef(x.indexrelid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE x.indrelid = 'user_settings'::regclass
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
ORDER BY i.relname
"""


def _escape_colons(sql: str) -> str:
    """Catalog-made SQL for text(): a colon there is never a bind parameter."""
    return sql.replace(":", "\\:")


def seed_legacy(engine: Engine, users: int, seed: int = 0, start_id: int | None = None) -> SeedSummary:
    """Append `users` synthetic rows to user_settings, ids from `start_id` (default: after max(id)).

    Same (users, seed, start id) gives byte-identical rows. The identity sequence is moved past
    the last id written, so the application's own inserts keep working.
    """
    for name, value in (("users", users), ("seed", seed), ("start_id", start_id)):
        if value is None and name == "start_id":
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be a whole number, got {value!r}")
    if users < 1:
        raise ValueError(f"users must be at least 1, got {users}")
    if start_id is not None and start_id < 1:
        raise ValueError(f"start_id must be at least 1, got {start_id}")

    started = time.perf_counter()
    try:
        with engine.begin() as conn:
            if conn.execute(text("SELECT to_regclass('user_settings')")).scalar() is None:
                raise DatabaseError(MISSING_TABLE)
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            conn.execute(text("SET LOCAL work_mem = '256MB'"))
            conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
            max_id = conn.execute(text("SELECT coalesce(max(id), 0) FROM user_settings")).scalar()
            rebuild = users >= REBUILD_INDEXES_FROM and users >= max_id
            # Concurrent writers wait until the seed commits, so max(id) stays the max; a bulk
            # seed drops the secondary indexes and builds them again afterwards, which is several
            # times faster than maintaining them row by row (and needs the exclusive lock).
            mode = "ACCESS EXCLUSIVE" if rebuild else "SHARE ROW EXCLUSIVE"
            conn.execute(text(f"LOCK TABLE user_settings IN {mode} MODE"))
            max_id = conn.execute(text("SELECT coalesce(max(id), 0) FROM user_settings")).scalar()
            first_id = max_id + 1 if start_id is None else start_id
            if first_id <= max_id:
                raise ValueError(f"start_id {start_id} is not above the highest existing id ({max_id})")
            last_id = first_id + users - 1
            if last_id > 2_147_483_647:
                raise ValueError(f"ids would pass the integer limit (last id {last_id})")
            indexes = conn.execute(text(_SECONDARY_INDEXES)).all() if rebuild else []
            for qualified_name, _ in indexes:
                conn.execute(text(f"DROP INDEX {_escape_colons(qualified_name)}"))
            params = {"n": users, "seed_txt": str(seed), "off": seed_offset(seed), "first_id": first_id}
            conn.execute(text(insert_sql()), params)
            for _, definition in indexes:
                conn.execute(text(_escape_colons(definition)))
            # nextval() reads the sequence's position (a gap of one is harmless); the larger of
            # that and the last id written becomes the value the next insert follows.
            conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('user_settings', 'id'),"
                    " greatest(:last_id, nextval(pg_get_serial_sequence('user_settings', 'id'))))"
                ),
                {"last_id": last_id},
            )
            counts = count_kinds(conn, first_id, last_id)
        with engine.connect() as conn:
            conn.execute(text("ANALYZE user_settings"))
            conn.commit()
    except DBAPIError as exc:
        raise explain(exc, engine.url) from None
    seconds = time.perf_counter() - started
    return SeedSummary(seed=seed, first_id=first_id, last_id=last_id, seconds=seconds, **counts)
