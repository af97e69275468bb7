"""A server restart mid-upgrade, as the alembic process sees it: every connection of the run is
terminated while its batches run. The batches reconnect and go on; alembic's own connection (the
one that records the applied revision) cannot, and the last line says the connection was lost and
that running the command again resumes, not that the database cannot be reached."""

from __future__ import annotations

from app.batch.revision import LOCK_CLASS, MIGRATION_LOCK
from app.ops import migrations, verify
from app.ops.seed import seed_legacy
from tests.support.db import THIS_DATABASE, scalar
from tests.support.migrate import run_alembic, start_alembic
from tests.support.waiting import wait_until

TERMINATE_THE_RUN = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'orgmig alembic' AND pid <> pg_backend_pid()
"""


def test_a_restart_mid_upgrade_says_the_connection_was_lost_and_a_rerun_resumes(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 1_500, seed=21)
    upgrade = start_alembic(engine.url, "upgrade", "0004", ORGMIG_BATCH_SIZE="100", ORGMIG_PAUSE_MS="100",
                            ORGMIG_WORKERS="1", ORGMIG_BACKOFF_BASE_MS="50")
    # the batches run, and alembic's own connection holds the migration lock
    wait_until(lambda: scalar(engine, "SELECT count(*) FROM orgmig_batch WHERE status = 'succeeded'")
               and scalar(engine, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                                  f" AND classid = :c AND objid = :o AND {THIS_DATABASE}",
                          c=LOCK_CLASS, o=MIGRATION_LOCK), alive=upgrade, every=0.02)
    assert scalar(engine, TERMINATE_THE_RUN) >= 2
    _, stderr = upgrade.communicate(timeout=180)
    last = stderr.strip().splitlines()[-1]
    assert upgrade.returncode == 2, stderr
    assert last.startswith("alembic: lost the connection to the database (DATABASE_URL) during the migration"
                           " (57P01 terminating connection due to administrator command)"), last
    assert "cannot connect" not in last
    assert "run the same command again: it resumes where it stopped" in last
    assert "Traceback" not in stderr
    # and so it does
    again = run_alembic(engine.url, "upgrade", "0004")
    assert again.returncode == 0, again.stderr
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0004"
    assert [c for c in verify.run(engine) if not c.ok] == []
