"""Faults the engine survives with the toy step: a server that drops every connection for a
while, statement timeouts too short for ANALYZE, more workers than free connections, JIT."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import text

from app.batch import run_step
from tests.batch.toy_copy import ROWS, ToyCopy
from tests.batch.toy_copy.fixtures import copied_exactly, limited_role, options
from tests.support.db import execute, scalar


def test_a_server_that_drops_every_connection_for_a_while_is_waited_out(toy):
    """What a restart looks like from the client: every session terminated, new ones refused
    for a moment. The engine reconnects with backoff and finishes."""
    stop = threading.Event()
    killed = []

    def outage():
        admin = toy.connect()
        admin.execute(text("SET application_name = 'outage'"))
        while (scalar(toy, "SELECT count(*) FROM orgmig_batch WHERE status = 'succeeded'") or 0) < 4:
            time.sleep(0.02)
        until = time.monotonic() + 1.5
        while time.monotonic() < until and not stop.is_set():
            killed.extend(admin.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                " AND application_name <> 'outage'")).scalars())
            admin.commit()
            time.sleep(0.05)
        admin.close()

    chaos = threading.Thread(target=outage)
    chaos.start()
    try:
        result = run_step(toy, ToyCopy(), "upgrade",
                          options(workers=2, pause_ms=40, max_batch_attempts=30, backoff_base_ms=50,
                                   backoff_cap_ms=400))
    finally:
        stop.set()
        chaos.join()
    assert len(killed) >= 2
    assert result.retries >= 1 and result.rows_done == ROWS
    copied_exactly(toy)


def test_a_statement_timeout_too_short_for_analyze_still_finishes(toy):
    # toy_b already holds 300,000 other rows: its ANALYZE after the run takes longer than the
    # 25 ms statement timeout; batches of 50 rows and every other statement do not.
    execute(toy, "INSERT INTO toy_b SELECT -g, 'x' FROM generate_series(1, 300000) g")
    result = run_step(toy, ToyCopy(), "upgrade", options(statement_timeout_ms=25, max_batch_attempts=20))
    assert result.rows_done == ROWS
    assert scalar(toy, "SELECT count(*) FROM pg_stats WHERE tablename = 'toy_b' AND attname = 'id'") == 1
    assert scalar(toy, "SELECT count(*) FROM toy_b WHERE id > 0") == ROWS - ROWS // 50


def test_analyze_that_cannot_get_its_lock_is_skipped_with_a_warning(toy, caplog):
    holder = toy.connect()
    holder.execute(text("LOCK TABLE toy_a IN SHARE UPDATE EXCLUSIVE MODE"))  # blocks ANALYZE only
    try:
        with caplog.at_level(logging.WARNING, logger="app.batch"):
            result = run_step(toy, ToyCopy(), "upgrade", options(lock_timeout_ms=200))
    finally:
        holder.rollback()
        holder.close()
    assert result.rows_done == ROWS
    assert "ANALYZE toy_a (id) skipped: 55P03" in caplog.text
    copied_exactly(toy)


def test_more_workers_than_free_connections_are_capped(toy, caplog):
    with limited_role(toy, "orgmig_limited", 3) as limited, caplog.at_level(logging.WARNING, logger="app.batch"):
        result = run_step(limited, ToyCopy(), "upgrade", options(workers=8))
    assert result.rows_done == ROWS
    assert "8 workers asked for, but the server has 2 free connections: using 2" in caplog.text
    copied_exactly(toy)


class JitProbe(ToyCopy):
    """The toy step, noting the `jit` setting each batch runs with."""

    seen: set[str] = set()

    def upgrade(self, conn, batch):
        self.seen.add(conn.execute(text("SHOW jit")).scalar_one())
        return super().upgrade(conn, batch)


def test_batches_run_without_jit_whatever_the_server_says(toy):
    db = toy.url.database
    execute(toy, f'ALTER DATABASE "{db}" SET jit = on')
    execute(toy, f'ALTER DATABASE "{db}" SET jit_above_cost = 0')
    probe = JitProbe()
    run_step(toy, probe, "upgrade", options())
    assert probe.seen == {"off"}
