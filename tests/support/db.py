"""Small database probes the tests share: catalog snapshots and table checksums, and THIS_DATABASE,
the condition that keeps a read of pg_locks to the test's own database (other test runs share
the server, and databases copied from one template have the same relation ids)."""

from __future__ import annotations

from sqlalchemy import Engine, text

THIS_DATABASE = "database = (SELECT oid FROM pg_database WHERE datname = current_database())"
# How many other sessions of the test's database wait for a lock.
LOCK_WAITERS = """SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"""

CATALOG_SNAPSHOT = text(
    """
    SELECT 'rel' AS kind, c.relname || ':' || c.relkind::text AS item
    FROM pg_class c
    WHERE c.relnamespace = current_schema()::regnamespace
    UNION ALL
    SELECT 'col', c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
           || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid AND c.relnamespace = current_schema()::regnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
    UNION ALL
    SELECT 'con', conrelid::regclass::text || ':' || conname || ':' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
    UNION ALL
    SELECT 'idx', indexdef FROM pg_indexes WHERE schemaname = current_schema()
    UNION ALL
    SELECT 'type', typname::text FROM pg_type
    WHERE typnamespace = current_schema()::regnamespace AND typtype NOT IN ('c', 'b')
    UNION ALL
    SELECT 'fn', proname::text FROM pg_proc WHERE pronamespace = current_schema()::regnamespace
    ORDER BY 1, 2
    """
)


def catalog(engine: Engine) -> list[tuple[str, str]]:
    """Every relation, column, constraint, index, type and function in the current schema."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(CATALOG_SNAPSHOT)]


def table_md5(engine: Engine, table: str, order_by: str = "id") -> tuple[int, str | None]:
    """(row count, md5 over the rows' text in key order): equal means byte-identical rows."""
    with engine.connect() as conn:
        return tuple(
            conn.execute(
                text(
                    f"SELECT count(*), md5(string_agg(t::text, E'\\n' ORDER BY {order_by})) FROM {table} t"
                )
            ).one()
        )


def scalar(engine: Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def execute(engine: Engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def rows(engine: Engine, sql: str, **params) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params)]


def fetch_all(engine: Engine, sql: str, **params) -> list:
    """The result's rows (by name and position), the connection closed: no transaction is left
    holding locks that a later migration step would wait for."""
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()
