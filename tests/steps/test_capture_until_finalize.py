"""After `alembic upgrade head` returns, the application (its old version, until the new one is
rolled out) goes on writing user_settings: those writes reach the new tables until `orgmig
finalize`, `orgmig verify` says so while some wait, a downgrade keeps them, and after finalize
user_settings is on its own."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import text

from app.ops import migrations, verify
from app.ops.seed import seed_legacy
from tests.support.db import execute, scalar
from tests.support.migrate import (
    ROOT,
    alembic_env,
    orgmig,
    outcome,
    outcome_from_scratch,
    run_alembic,
    start_alembic,
)
from tests.support.waiting import wait_until

SETTINGS_OF = "SELECT s.language FROM settings s JOIN orgmig_user_settings_link l ON l.org_id = s.org_id" \
              " WHERE l.user_settings_id = :i"
CAPTURE_GONE = ("SELECT to_regclass('orgmig_user_settings_change') IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'orgmig_capture')"
                " AND NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'orgmig_capture_user_settings')"
                " AND to_regclass('ix_orgmig_user_settings_link_user_id') IS NULL")


def _upgraded(engine, rows: int = 300) -> None:
    migrations.upgrade(migrations.alembic_config(engine.url), "0003")
    seed_legacy(engine, rows, seed=18)
    up = run_alembic(engine.url, "upgrade", "head")
    assert up.returncode == 0, up.stderr


def _linked_ids(engine, n: int) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT user_settings_id FROM orgmig_user_settings_link"
                                      " ORDER BY user_settings_id LIMIT :n"), {"n": n}).scalars())


def _app_writes(engine, ids: list[int]) -> None:
    """The application's old version after the upgrade: an insert, an update in place, a moved
    keycloak_user_id, a delete, and a new (higher) row for an existing user."""
    execute(engine, "INSERT INTO user_settings (keycloak_user_id, language, email)"
                    " VALUES ('kc-after-upgrade', 'nl', 'after@example.org')")
    execute(engine, "UPDATE user_settings SET language = 'after', max_iterations = 77 WHERE id = :i", i=ids[0])
    execute(engine, "UPDATE user_settings SET keycloak_user_id = 'kc-moved-after' WHERE id = :i", i=ids[1])
    execute(engine, "DELETE FROM user_settings WHERE id = :i", i=ids[2])
    execute(engine, "INSERT INTO user_settings (keycloak_user_id, language)"
                    " SELECT keycloak_user_id, 'dup' FROM user_settings WHERE id = :i", i=ids[3])


def test_writes_after_the_upgrade_reach_the_new_tables_until_finalize(pg_server, engine):
    _upgraded(engine)
    ids = _linked_ids(engine, 4)
    _app_writes(engine, ids)

    # verify is honest: the writes wait, and it says how to apply them
    checks = verify.run(engine)
    waiting = [c for c in checks if c.check_name == "application writes to user_settings applied to the new tables"]
    assert len(waiting) == 1 and not waiting[0].ok
    assert waiting[0].detail.startswith("5 captured writes wait to be applied: run `orgmig work`")
    shown = orgmig(engine.url, "verify", "--failed-only")
    assert shown.returncode == 1 and "captured writes wait" in shown.stdout

    done = orgmig(engine.url, "finalize")
    assert done.returncode == 0, done.stderr
    assert "finalized: 5 captured changes applied" in done.stdout
    assert scalar(engine, CAPTURE_GONE) is True
    assert [c for c in verify.run(engine) if not c.ok] == []
    # the new tables are what migrating the final user_settings in one go gives
    assert outcome(engine) == outcome_from_scratch(pg_server, engine)
    assert scalar(engine, SETTINGS_OF, i=ids[0]) == "after"
    assert scalar(engine, """SELECT count(*) FROM "user" WHERE keycloak_user_id = 'kc-after-upgrade'""") == 1

    # after finalize, user_settings is on its own
    execute(engine, "UPDATE user_settings SET language = 'too late' WHERE id = :i", i=ids[0])
    execute(engine, "INSERT INTO user_settings (keycloak_user_id) VALUES ('kc-after-finalize')")
    assert scalar(engine, SETTINGS_OF, i=ids[0]) == "after"
    assert scalar(engine, """SELECT count(*) FROM "user" WHERE keycloak_user_id = 'kc-after-finalize'""") == 0
    again = orgmig(engine.url, "finalize")
    assert again.returncode == 0 and "nothing to finalize" in again.stdout


def test_orgmig_work_applies_the_captured_writes_and_the_capture_stays(engine):
    _upgraded(engine)
    ids = _linked_ids(engine, 4)
    _app_writes(engine, ids)
    work = orgmig(engine.url, "work")
    assert work.returncode == 0, work.stderr
    assert "5 captured writes to user_settings applied; the capture stays until `orgmig finalize`" in work.stderr
    assert [c for c in verify.run(engine) if not c.ok] == []
    assert scalar(engine, SETTINGS_OF, i=ids[0]) == "after"
    # still captured
    execute(engine, "UPDATE user_settings SET language = 'later' WHERE id = :i", i=ids[0])
    assert scalar(engine, "SELECT count(*) FROM orgmig_user_settings_change") == 1


def test_finalize_refuses_while_the_run_is_unfinished(engine):
    migrations.upgrade(migrations.alembic_config(engine.url), "0003")
    seed_legacy(engine, 200, seed=18)
    # an upgrade killed after its first batch: its run is left unfinished, its capture installed
    upgrade = start_alembic(engine.url, "upgrade", "0004", stderr=subprocess.DEVNULL, ORGMIG_BATCH_SIZE="20",
                            ORGMIG_PAUSE_MS="1000", ORGMIG_WORKERS="1")
    try:
        wait_until(lambda: scalar(engine, "SELECT count(*) FROM orgmig_batch WHERE status = 'succeeded'"),
                   alive=upgrade, what="a batch succeeded")
    finally:
        upgrade.kill()
        upgrade.wait()
    refused = orgmig(engine.url, "finalize")
    assert refused.returncode == 1
    assert "of user_settings_to_org (upgrade) is running at" in refused.stderr
    assert "finish the run first" in refused.stderr
    assert scalar(engine, "SELECT to_regclass('orgmig_user_settings_change') IS NOT NULL") is True


def test_a_downgrade_after_the_upgrade_keeps_the_writes_made_since(engine):
    _upgraded(engine)
    ids = _linked_ids(engine, 4)
    _app_writes(engine, ids)
    legacy = scalar(engine, "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM user_settings t")

    down = run_alembic(engine.url, "downgrade", "0003")
    assert down.returncode == 0, down.stderr
    # every legacy row as the application last wrote it, and no trace of the capture
    assert scalar(engine, "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM user_settings t") == legacy
    assert scalar(engine, "SELECT language FROM user_settings WHERE id = :i", i=ids[0]) == "after"
    assert scalar(engine, CAPTURE_GONE) is True
    assert scalar(engine, 'SELECT count(*) FROM "user"') == 0


def test_a_drain_keeps_a_user_the_identity_step_has_linked(engine):
    _upgraded(engine)
    legacy_id = _linked_ids(engine, 1)[0]
    user_id = scalar(engine, "SELECT user_id FROM orgmig_user_settings_link WHERE user_settings_id = :i", i=legacy_id)
    # `orgmig sync` linked the migrated user to an identity-provider account ...
    execute(engine, "INSERT INTO user_identity (provider, external_id, user_id, matched_by)"
                    " VALUES ('okta', '00u-linked', :u, 'subject')", u=user_id)
    # ... and then the old application version writes a new, winning row for the same user
    execute(engine, "INSERT INTO user_settings (keycloak_user_id, language)"
                    " SELECT keycloak_user_id, 'newer' FROM user_settings WHERE id = :i", i=legacy_id)
    work = orgmig(engine.url, "work")
    assert work.returncode == 0, work.stderr
    # the user and its link stay (a migration of the group again would have deleted both), and so it is said
    assert scalar(engine, "SELECT user_id FROM user_identity WHERE external_id = '00u-linked'") == user_id
    assert scalar(engine, "SELECT reason FROM orgmig_report WHERE source_id = :i AND migrated", i=legacy_id) \
        == "changed_during_upgrade"


def test_orgmig_work_follow_keeps_the_new_tables_current_until_finalize(engine):
    _upgraded(engine)
    ids = _linked_ids(engine, 4)
    follower = subprocess.Popen([sys.executable, "-m", "app.cli", "work", "--follow", "1"], cwd=ROOT,
                                env=alembic_env(engine.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _app_writes(engine, ids)
        # the old application version's writes reach the new tables without anyone running a command
        wait_until(lambda: not scalar(engine, "SELECT count(*) FROM orgmig_user_settings_change")
                   and scalar(engine, SETTINGS_OF, i=ids[0]) == "after", 30, alive=follower, every=0.1,
                   what="the writes applied")
        assert scalar(engine, """SELECT count(*) FROM "user" WHERE keycloak_user_id = 'kc-after-upgrade'""") == 1
        done = orgmig(engine.url, "finalize")
        assert done.returncode == 0, done.stderr
        _, stderr = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, stderr
    assert "5 captured writes to user_settings applied; the capture has ended (`orgmig finalize`)" in stderr
    assert [c for c in verify.run(engine) if not c.ok] == []


def test_finalize_gives_way_to_a_long_application_transaction_and_changes_nothing(engine):
    _upgraded(engine)
    legacy_id = _linked_ids(engine, 1)[0]
    with engine.connect() as app:
        app.execute(text("UPDATE user_settings SET language = 'held' WHERE id = :i"), {"i": legacy_id})
        refused = orgmig(engine.url, "finalize", ORGMIG_MAX_BATCH_ATTEMPTS="2", ORGMIG_BACKOFF_BASE_MS="10")
        app.commit()
    assert refused.returncode == 1
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith("orgmig: user_settings_to_org capture: taking user_settings to apply the last changes"
                           " and end the capture failed after 2 attempt(s): 55P03"), last
    assert "run the same command again" in last
    # nothing changed: the capture is in force and the application's write waits in it
    assert scalar(engine, "SELECT count(*) FROM orgmig_user_settings_change") == 1
    done = orgmig(engine.url, "finalize")
    assert done.returncode == 0, done.stderr
    assert scalar(engine, SETTINGS_OF, i=legacy_id) == "held"
