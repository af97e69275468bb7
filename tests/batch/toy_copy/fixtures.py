"""The toy step's fixture (`toy`: a database at revision 0003 with toy_a filled) and the checks
its tests share. Registered by tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.pool import NullPool

from app.batch import Options
from app.db import make_engine
from app.ops import migrations
from tests.batch.toy_copy import DDL, ROWS
from tests.support.db import execute, scalar

__all__ = ["batches_cover_the_keys_once", "copied_exactly", "options", "toy"]


def options(**overrides) -> Options:
    values = dict(batch_size=50, workers=1, lock_timeout_ms=2_000, statement_timeout_ms=30_000,
                  max_batch_attempts=5, pause_ms=0, max_rows_per_second=0, target_batch_ms=0,
                  backoff_base_ms=10, backoff_cap_ms=100,
                  allow_data_loss=False, progress_bar=False)
    values.update(overrides)
    return Options(**values)


@pytest.fixture
def toy(engine: Engine, alembic_cfg) -> Engine:
    migrations.upgrade(alembic_cfg, "0003")  # the engine's ledger
    with engine.begin() as conn:
        conn.exec_driver_sql(DDL)
        conn.execute(text("INSERT INTO toy_a SELECT g * 3, CASE WHEN g % 50 <> 0 THEN 'row ' || g END"
                          " FROM generate_series(1, :n) g"), {"n": ROWS})
    return engine


@contextmanager
def limited_role(toy: Engine, name: str, connections: int) -> Iterator[Engine]:
    """An engine on the toy database as a role of its own that may open `connections` connections
    and use every table; the role dropped after the block."""
    role = f"{name}_{toy.url.database[-10:]}"
    execute(toy, f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {connections}")
    execute(toy, f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role};"
                 f" GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    limited = make_engine(toy.url.set(username=role, password=None), poolclass=NullPool)
    try:
        yield limited
    finally:
        limited.dispose()
        execute(toy, f"REASSIGN OWNED BY {role} TO CURRENT_USER; DROP OWNED BY {role}; DROP ROLE {role}")


def copied_exactly(engine: Engine) -> None:
    """toy_b holds each toy_a row with a payload once, the others are reported once."""
    assert scalar(engine, "SELECT count(*) FROM toy_b") == ROWS - ROWS // 50
    assert scalar(engine, """SELECT count(*) FROM toy_a a FULL JOIN toy_b b USING (id)
                             WHERE a.payload IS DISTINCT FROM b.payload AND a.payload IS NOT NULL""") == 0
    assert scalar(engine, "SELECT count(*) FROM orgmig_report WHERE step = 'toy_copy'") == ROWS // 50
    assert scalar(engine, "SELECT status FROM orgmig_run WHERE step = 'toy_copy' ORDER BY id DESC LIMIT 1") \
        == "finished"


def batches_cover_the_keys_once(engine: Engine) -> None:
    with engine.connect() as conn:
        ranges = [tuple(r) for r in conn.execute(text(
            "SELECT start_key, end_key FROM orgmig_batch WHERE status = 'succeeded' ORDER BY start_key"))]
    assert ranges[0][0] <= 3 and ranges[-1][1] >= ROWS * 3
    for (_, end), (start, _) in zip(ranges, ranges[1:], strict=False):
        assert start == end + 1  # no gap, no overlap
