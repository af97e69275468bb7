"""`alembic` as a DBA runs it, when things go wrong: schema downgrades that would drop the
application's rows, two upgrades at once, bad settings, objects in the way, a role that owns
nothing, a password full of `@`, and the offline script run through psql. Each ends in one line,
never a traceback, and leaves the database as it was."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from app.ops import migrations
from app.ops.databases import libpq
from app.ops.seed import seed_legacy
from tests.support.db import LOCK_WAITERS, execute, scalar
from tests.support.migrate import ROOT, alembic_cmd, alembic_env, run_alembic, start_alembic
from tests.support.waiting import Watched, wait_until


def _one_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("alembic:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_downgrade_base_refuses_to_drop_the_applications_rows(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "head")
    # After go-live the application creates its own org, user, membership and settings.
    execute(engine, """
        WITH o AS (INSERT INTO org (name) VALUES ('Acme') RETURNING id),
             u AS (INSERT INTO "user" (keycloak_user_id, current_org_id) SELECT 'kc-app', id FROM o RETURNING id),
             r AS (INSERT INTO role (name, rank) VALUES ('owner', 1) RETURNING id),
             m AS (INSERT INTO org_user (org_id, user_id, role_id) SELECT o.id, u.id, r.id FROM o, u, r)
        INSERT INTO settings (org_id, language) SELECT id, 'fr' FROM o""")
    proc = run_alembic(engine.url, "downgrade", "base")
    line = _one_line(proc)
    assert proc.returncode == 1
    assert "refusing to downgrade 0002" in line
    for count in ("1 role", "1 org", '1 "user"', "1 org_user", "1 settings"):
        assert count in line
    assert "allow_data_loss=true" in line
    assert scalar(engine, "SELECT count(*) FROM org") == 1
    # 0005..0003 went down before 0002 refused: bookkeeping and snapshot are orgmig's own.
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0002"
    forced = run_alembic(engine.url, "-x", "allow_data_loss=true", "downgrade", "base")
    assert forced.returncode == 0, forced.stderr
    assert scalar(engine, "SELECT to_regclass('org')") is None




@contextlib.contextmanager
def _upgrade_held_in_its_data_revision(engine, **env: str) -> Iterator[subprocess.Popen]:
    """`alembic upgrade head` started and kept inside revision 0004, holding the migration lock,
    for as long as the block runs: its first batch waits for a personal org's name that an open
    transaction of the test's has taken. Let go at the end of the block; the caller finishes it."""
    held = scalar(engine, """
        SELECT min(us.id) FROM user_settings us WHERE us.keycloak_user_id ~ '[^[:space:]]'
          AND us.id = (SELECT max(w.id) FROM user_settings w WHERE w.keycloak_user_id = us.keycloak_user_id)""")
    with engine.connect() as blocker:
        blocker.execute(text("INSERT INTO org (name) VALUES (:n)"), {"n": f"user_{held}_org"})  # uncommitted
        first = start_alembic(engine.url, "upgrade", "head", stdout=subprocess.PIPE,
                              ORGMIG_LOCK_TIMEOUT_MS="180000", **env)
        try:
            wait_until(lambda: scalar(engine, LOCK_WAITERS), alive=first, what="the first upgrade's batch waiting")
        except BaseException:
            first.kill()
            first.communicate()
            raise
        try:
            yield first
        finally:
            blocker.rollback()


def test_two_upgrades_at_once_run_one_after_the_other(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 4_000, seed=2)
    env = {"ORGMIG_PAUSE_MS": "150", "ORGMIG_WORKERS": "1"}
    # The second starts while the first is inside its data revision, and is seen waiting for it.
    with _upgrade_held_in_its_data_revision(engine, **env) as first:
        waiting = Watched(start_alembic(engine.url, "upgrade", "head", **env))
        wait_until(lambda: waiting.says("waiting for another migration"), alive=waiting,
                   what="the second upgrade waiting for the first")
    second = waiting.finish(timeout=120)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert "waiting for another migration on this database to finish: pid" in second.stderr
    assert "Running upgrade 0003 -> 0004" in err and "Running upgrade" not in second.stderr
    assert scalar(engine, "SELECT count(*) FROM orgmig_run") == 1
    assert scalar(engine, "SELECT version_num FROM alembic_version") == migrations.script_directory().get_current_head()


def test_an_upgrade_that_must_not_wait_names_the_one_running(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 3_000, seed=2)
    with _upgrade_held_in_its_data_revision(engine, ORGMIG_PAUSE_MS="200", ORGMIG_WORKERS="1") as first:
        second = run_alembic(engine.url, "upgrade", "head", ORGMIG_MIGRATE_LOCK_WAIT_MS="0")
    first.communicate(timeout=120)
    line = _one_line(second)
    assert second.returncode == 1
    assert "another alembic upgrade or downgrade is running on this database: pid" in line
    assert "orgmig alembic" in line
    assert first.returncode == 0


@pytest.mark.parametrize("env, expected", [
    ({"ORGMIG_WORKERS": "many"}, "ORGMIG_WORKERS must be a whole number, got 'many'"),
    ({"ORGMIG_BATCH_SIZE": "0"}, "ORGMIG_BATCH_SIZE must be at least 1, got '0'"),
    ({"ORGMIG_ALLOW_DATA_LOSS": "perhaps"}, "ORGMIG_ALLOW_DATA_LOSS must be true or false"),
])
def test_an_invalid_setting_is_one_line_and_exit_2(engine, env, expected):
    proc = run_alembic(engine.url, "upgrade", "head", **env)
    assert proc.returncode == 2
    assert expected in _one_line(proc)
    assert scalar(engine, "SELECT to_regclass('alembic_version')") is None


def test_an_unknown_x_argument_is_one_line(engine):
    proc = run_alembic(engine.url, "-x", "bacth_size=10", "upgrade", "head")
    assert proc.returncode == 2
    assert "unknown -x argument 'bacth_size'" in _one_line(proc)


def test_a_table_in_the_way_is_one_line_with_what_to_do(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0001")
    execute(engine, "CREATE TABLE org (id int)")
    proc = run_alembic(engine.url, "upgrade", "head")
    line = _one_line(proc)
    assert proc.returncode == 2
    assert 'relation "org" already exists' in line and "rename or drop it" in line
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0001"


def test_a_role_that_does_not_own_user_settings_is_one_line(engine, pg_server):
    """The legacy application's role owns user_settings; the migrator may only read it."""
    role = f"migrator_{engine.url.database[-10:]}"
    execute(engine, "CREATE TABLE user_settings (id integer PRIMARY KEY, keycloak_user_id varchar)")
    execute(engine, f"CREATE ROLE {role} LOGIN; GRANT CREATE, USAGE ON SCHEMA public TO {role};"
                    f" GRANT SELECT ON user_settings TO {role}")
    try:
        proc = run_alembic(engine.url.set(username=role, password=None), "upgrade", "head")
        line = _one_line(proc)
        assert proc.returncode == 2
        assert "must be owner of table user_settings" in line and "owner" in line.split("(", 1)[1]
    finally:
        execute(engine, f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_no_part_of_a_password_is_printed_whatever_it_holds(engine):
    bad = "postgresql://whoever:S3cr@Xq-p@ss/w0rd@127.0.0.1:1/nodb"  # `@` and `/` unescaped
    proc = subprocess.run(alembic_cmd("upgrade", "head"), cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**alembic_env(engine.url), "DATABASE_URL": bad})
    line = _one_line(proc)
    assert proc.returncode == 2 and "cannot connect to postgresql+psycopg://whoever:***@127.0.0.1:1/nodb" in line
    for piece in ("S3cr", "Xq-p", "w0rd"):
        assert piece not in proc.stderr + proc.stdout


@pytest.mark.skipif(shutil.which("psql") is None, reason="needs psql")
def test_the_offline_script_stops_at_the_first_error_under_psql(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    script = run_alembic(engine.url, "upgrade", "0003:head", "--sql")
    assert script.returncode == 0, script.stderr
    assert script.stdout.startswith("\\set ON_ERROR_STOP on")
    conninfo = libpq(engine.url)
    # As the runbook says, and also without ON_ERROR_STOP: the data revision stops the script, and
    # nothing of a revision after it is kept.
    for body in (script.stdout, script.stdout.replace("\\set ON_ERROR_STOP on", "", 1)):
        psql = subprocess.run(["psql", conninfo, "-X", "-q", "-f", "-"], input=body, capture_output=True,
                              text=True, timeout=60)
        assert "moves rows in batches and runs online only" in psql.stderr
        assert scalar(engine, "SELECT version_num FROM alembic_version") == "0003"
        assert scalar(engine, "SELECT to_regclass('idp_export_run')") is None
    assert psql.returncode == 0  # psql itself went on, and every later revision rolled back
    online = run_alembic(engine.url, "upgrade", "head")
    assert online.returncode == 0, online.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('idp_export_run')")).scalar() is not None


def test_a_revision_that_needs_a_finished_data_run_waits_for_it(engine, alembic_cfg):
    """The finalize gate: 0007 builds on 0004's users and refuses while 0004's run is not finished."""
    migrations.upgrade(alembic_cfg, "0006")
    execute(engine, "UPDATE orgmig_run SET status = 'paused', rows_done = 10, total_rows = 40"
                    " WHERE step = 'user_settings_to_org'")
    refused = run_alembic(engine.url, "upgrade", "head")
    line = _one_line(refused)
    assert refused.returncode == 1
    assert "needs the data step user_settings_to_org finished" in line and "is paused at 10/40 rows" in line
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0006"
    execute(engine, "UPDATE orgmig_run SET status = 'finished', rows_done = 40")
    passed = run_alembic(engine.url, "upgrade", "head")
    assert passed.returncode == 0, passed.stderr
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0009"


def _upgrade_to_0006_beside(engine, hold: str, until: str) -> tuple[list[float], str]:
    """`alembic upgrade 0006` beside the application: a transaction of it holds `hold`'s lock on
    "user" until alembic's stderr says `until`, and it reads "user" until the upgrade ends. How
    long each read took, and alembic's stderr (it must succeed)."""
    waits = []
    with engine.connect() as holder, engine.connect() as app:
        holder.execute(text(hold))
        upgrade = Watched(start_alembic(engine.url, "upgrade", "0006"))
        deadline = time.monotonic() + 120
        while upgrade.poll() is None:
            assert time.monotonic() < deadline, upgrade.stderr()[-3000:]
            if holder.in_transaction() and upgrade.says(until):
                holder.commit()
            started = time.monotonic()
            app.execute(text('SELECT count(*) FROM "user"'))
            app.commit()
            waits.append(time.monotonic() - started)
            time.sleep(0.02)
        holder.rollback()
    done = upgrade.finish()
    assert done.returncode == 0, done.stderr
    return waits, done.stderr


def test_a_revision_blocked_by_the_application_is_run_again_waiting_briefly_each_time(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0005")
    # As a run cut short after building 0006's index leaves it: the revision goes straight to
    # its ALTER TABLEs, which need "user" to themselves.
    execute(engine, 'CREATE INDEX ix_user_email_normalized ON "user" (lower(btrim(email)))')
    # Meanwhile the application keeps reading "user": each read queues behind the revision's lock
    # request only as long as that attempt's lock timeout (100, 200, 400 ms ...), not the 2 s of
    # ORGMIG_LOCK_TIMEOUT_MS a single attempt would hold it up.
    # The application's read is let go once the revision has been refused once and tries again.
    waits, stderr = _upgrade_to_0006_beside(engine, 'SELECT count(*) FROM "user"', until="attempt 2 of 8")
    assert "Traceback" not in stderr
    assert "could not get a lock within 100 ms" in stderr and "attempt 2 of 8" in stderr
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0006"
    assert scalar(engine, "SELECT count(*) FROM information_schema.columns"
                          " WHERE table_name = 'user' AND column_name = 'is_site_admin'") == 1
    assert max(waits) < 1.0, f"the application waited {max(waits):.2f} s behind the revision"


def test_a_revision_that_never_gets_its_lock_stops_after_its_attempts_in_one_line(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0005")
    execute(engine, 'CREATE INDEX ix_user_email_normalized ON "user" (lower(btrim(email)))')
    with engine.connect() as holder:  # an application read on "user", open until alembic gave up
        holder.execute(text('SELECT count(*) FROM "user"'))
        proc = run_alembic(engine.url, "-x", "ddl_lock_attempts=3", "-x", "lock_timeout_ms=500", "upgrade", "0006")
        holder.rollback()
    line = _one_line(proc)
    assert proc.returncode == 1
    assert "a revision could not get its locks in 3 attempts (the last waited 500 ms for each)" in line
    assert "55P03" in line and "ORGMIG_DDL_LOCK_ATTEMPTS" in line
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0005"
    assert scalar(engine, "SELECT count(*) FROM information_schema.columns"
                          " WHERE table_name = 'user' AND column_name = 'is_site_admin'") == 0


def test_an_index_build_left_invalid_by_a_lock_timeout_is_rebuilt_without_blocking_the_application(
        engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0005")
    # An application write open on "user": 0006's CREATE INDEX CONCURRENTLY waits for it, times
    # out and leaves an invalid index; the next attempt drops it CONCURRENTLY too (a plain DROP
    # INDEX would lock "user" against every read while it waits), then builds it again.
    waits, stderr = _upgrade_to_0006_beside(engine, 'UPDATE "user" SET email = email WHERE id = -1',
                                            until="could not get a lock within")
    assert "could not get a lock within" in stderr
    assert scalar(engine, "SELECT indisvalid FROM pg_index"
                          " WHERE indexrelid = to_regclass('ix_user_email_normalized')") is True
    assert max(waits) < 0.15, f"the application waited {max(waits):.2f} s behind the revision"
