"""Revision 0004 interrupted: killed between batches and in the middle of one, then resumed to
the state of an uninterrupted run; a lock timeout retried, not fatal."""

from __future__ import annotations

import signal
import subprocess
import time

from sqlalchemy import text
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.ops import migrations
from app.ops.seed import seed_legacy
from tests.support.db import scalar
from tests.support.migrate import failed_checks, outcome, run_alembic, start_alembic
from tests.support.waiting import wait_until


def _reference_outcome(pg_server, rows: int, seed: int, **env) -> dict:
    """The same seed migrated in one uninterrupted run, in a database of its own."""
    url = pg_server.create("orgmig_ref")
    eng = make_engine(url, poolclass=NullPool)
    try:
        migrations.upgrade(migrations.alembic_config(url), "0003")
        seed_legacy(eng, rows, seed=seed)
        proc = run_alembic(url, "upgrade", "0004", **env)
        assert proc.returncode == 0, proc.stderr
        return outcome(eng)
    finally:
        eng.dispose()
        pg_server.drop(url)


def test_sigkill_between_batches_then_resume(pg_server, engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 4000, seed=5)
    env = {"ORGMIG_BATCH_SIZE": "200", "ORGMIG_PAUSE_MS": "150"}
    proc = start_alembic(engine.url, "upgrade", "0004", stderr=subprocess.DEVNULL, **env)
    try:
        wait_until(lambda: (scalar(engine, "SELECT count(*) FROM orgmig_batch") or 0) >= 4, every=0.02)
        time.sleep(0.05)  # inside the pause between two batches
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    done_at_kill = scalar(engine, "SELECT rows_done FROM orgmig_run")
    assert 0 < done_at_kill < 4000
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0003"
    resumed = run_alembic(engine.url, "upgrade", "0004", ORGMIG_BATCH_SIZE="200")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming run" in resumed.stderr and "(resumed)" in resumed.stderr
    # It started at the next batch: no batch range was processed twice.
    assert scalar(engine, "SELECT count(*) - count(DISTINCT start_key) FROM orgmig_batch") == 0
    assert scalar(engine, "SELECT min(start_key) FROM orgmig_batch b JOIN orgmig_run r ON r.id = b.run_id") == 1
    assert outcome(engine) == _reference_outcome(pg_server, 4000, 5)
    assert failed_checks(engine) == []


def test_sigkill_mid_batch_then_resume(pg_server, engine, alembic_cfg):
    """A batch that has written part of its rows waits on a row the test holds; SIGKILL it there."""
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 3000, seed=6)
    # A winning legacy row in the third batch of 250: its personal org name is what we hold.
    held = scalar(engine, """
        SELECT us.id FROM user_settings us
        WHERE us.id BETWEEN 700 AND 750 AND us.keycloak_user_id ~ '[^[:space:]]'
          AND us.id = (SELECT max(w.id) FROM user_settings w WHERE w.keycloak_user_id = us.keycloak_user_id)
        ORDER BY us.id LIMIT 1""")
    blocker = engine.connect()
    blocker.execute(text("INSERT INTO org (name) VALUES (:n)"), {"n": f"user_{held}_org"})  # uncommitted
    proc = start_alembic(engine.url, "upgrade", "0004", stderr=subprocess.DEVNULL, ORGMIG_BATCH_SIZE="250",
                         ORGMIG_LOCK_TIMEOUT_MS="60000")
    try:
        # The third batch's insert into org waits for the held key: its reports are written,
        # some of its orgs too, all in the open transaction (the other worker goes on).
        wait_until(lambda: scalar(engine, """
            SELECT count(*) FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND datname = current_database()
              AND query LIKE '%%WITH rng%%'""") == 1, 60, every=0.02)
        assert scalar(engine, "SELECT status FROM orgmig_batch WHERE start_key = 501") == "claimed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
        blocker.rollback()
        blocker.close()
    # The killed batch left nothing behind: the server rolled its transaction back.
    wait_until(lambda: scalar(engine, "SELECT count(*) FROM pg_stat_activity"
                                      " WHERE datname = current_database() AND pid <> pg_backend_pid()") == 0, 30,
               every=0.02)
    assert scalar(engine, "SELECT count(*) FROM orgmig_user_settings_link"
                          " WHERE user_settings_id BETWEEN 501 AND 750") == 0
    assert scalar(engine, "SELECT count(*) FROM orgmig_report WHERE source_id BETWEEN 501 AND 750") == 0
    assert scalar(engine, "SELECT count(*) FROM org WHERE name = :n", n=f"user_{held}_org") == 0
    links = scalar(engine, "SELECT count(*) FROM orgmig_user_settings_link")
    assert scalar(engine, 'SELECT count(*) FROM "user"') == links
    resumed = run_alembic(engine.url, "upgrade", "0004", ORGMIG_BATCH_SIZE="250")
    assert resumed.returncode == 0, resumed.stderr
    assert "unfinished batches to redo" in resumed.stderr
    assert scalar(engine, "SELECT min(start_key) FROM orgmig_batch WHERE start_key > 500") == 501
    assert outcome(engine) == _reference_outcome(pg_server, 3000, 6)
    assert failed_checks(engine) == []


def test_lock_timeout_is_retried_not_fatal(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 600, seed=2)
    blocker = engine.connect()
    blocker.execute(text("LOCK TABLE org IN EXCLUSIVE MODE"))
    proc = start_alembic(engine.url, "upgrade", "0004", stdout=subprocess.PIPE, ORGMIG_LOCK_TIMEOUT_MS="100",
                         ORGMIG_BATCH_SIZE="200")
    try:
        # Hold the lock until a batch has timed out on it and been recorded for retry.
        wait_until(lambda: scalar(engine, "SELECT count(*) FROM orgmig_batch WHERE status = 'failed'") >= 1,
                   every=0.02)
    finally:
        blocker.rollback()
        blocker.close()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "lock timeout" in err and "retry 1" in err, err
    assert scalar(engine, "SELECT max(attempts) FROM orgmig_batch") > 1
    assert failed_checks(engine) == []
