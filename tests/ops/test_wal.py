"""WAL bytes by what they are for (app.ops.wal): counted per relation from pg_walinspect, so the
figures are the same whatever the machine's speed (full-page images, which depend on where
checkpoints fall, are not part of what is compared)."""

from __future__ import annotations

from sqlalchemy import text

from app.db import make_engine
from app.ops import migrations
from app.ops.seed import seed_legacy
from app.ops.wal import BOOKKEEPING, CONTRACT, WalWindow


def test_writes_are_counted_for_the_table_they_went_to_and_other_databases_not_at_all(engine, alembic_cfg,
                                                                                    pg_server):
    migrations.upgrade(alembic_cfg, "0003")
    other = pg_server.create()
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            with WalWindow(conn) as window, engine.begin() as work:
                work.execute(text("INSERT INTO role (name, rank) SELECT 'r' || g, g FROM generate_series(1, 500) g"))
                work.execute(text("INSERT INTO orgmig_created_row (step, table_name, row_key)"
                                  " SELECT 's', 'role', g::text FROM generate_series(1, 50) g"))
                elsewhere = make_engine(other)
                with elsewhere.begin() as busy:  # another database's work in the same window
                    busy.execute(text("CREATE TABLE big AS SELECT g, repeat('x', 200) AS v"
                                      " FROM generate_series(1, 20000) g"))
                elsewhere.dispose()
            split = window.split()
    finally:
        pg_server.drop(other)
    roles, created = split.by_table(CONTRACT)["role"], split.by_table(BOOKKEEPING)["orgmig_created_row"]
    # 500 rows, each a heap record and two index records (id, name): tens of bytes each
    assert 500 * 40 < roles["rows"] < 500 * 120 and 2 * 500 * 40 < roles["index"] < 2 * 500 * 120
    assert 50 * 40 < created["rows"] + created["index"] < 50 * 240
    # 20,000 rows of 200 bytes went to the other database: none of it is here
    assert split.total < 200_000


def test_bookkeeping_of_revision_0004_is_under_a_quarter_of_the_contract_rows_own_wal(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 3000, seed=3)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        with WalWindow(conn) as window:
            migrations.upgrade(migrations.alembic_config(engine.url, {"batch_size": "500"}), "0004")
        split = window.split()
        users = conn.execute(text("SELECT count(*) FROM orgmig_user_settings_link")).scalar_one()
    assert users > 2500
    # the contract's own rows: a user, an org, a membership and a settings row, with their indexes
    assert split.of(CONTRACT) / users > 1000
    # the link row of each user, the reports, the ledger: counted, and under a quarter of that
    assert "orgmig_user_settings_link" in split.by_table(BOOKKEEPING)
    assert split.bookkeeping_share < 0.25, split.by_table(BOOKKEEPING)
