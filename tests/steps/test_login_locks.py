"""`app.migrate_user` inside the application's own transaction, against sessions that take
user_settings and the link table to themselves (the capture's removal by `orgmig finalize`):
no deadlock and no lock timeout reaches the caller, whose transaction stays usable."""

from __future__ import annotations

import subprocess
import sys
import threading

from sqlalchemy import text
from sqlalchemy.pool import NullPool

from app import migrate_user
from app.db import make_engine
from app.ops import migrations
from app.ops.seed import seed_legacy
from tests.support.db import THIS_DATABASE, scalar
from tests.support.migrate import ROOT, alembic_env, orgmig, run_alembic
from tests.support.waiting import wait_until

WAITING = "SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted"
ANY_WAITING = f"SELECT count(*) FROM pg_locks WHERE pid <> :pid AND NOT granted AND {THIS_DATABASE}"


def _upgraded(engine) -> None:
    migrations.upgrade(migrations.alembic_config(engine.url), "0003")
    seed_legacy(engine, 200, seed=9)
    assert run_alembic(engine.url, "upgrade", "0004").returncode == 0


def _a_migrated_user(engine) -> tuple[str, int]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT us.keycloak_user_id, us.id FROM orgmig_user_settings_link l"
                                " JOIN user_settings us ON us.id = l.user_settings_id ORDER BY us.id LIMIT 1")).one()
    return row.keycloak_user_id, row.id


def _until(engine, sql: str, seconds: float = 20, **params) -> None:
    wait_until(lambda: scalar(engine, sql, **params), seconds, what=sql, every=0.02)


def _login(app, kc: str, out: dict) -> None:
    """The application's login, in its own thread: migrate_user inside its open transaction."""
    try:
        out["found"] = migrate_user(app, kc)
    except Exception as exc:  # noqa: BLE001 - what reaches the caller is what the test reads
        out["error"] = exc


def test_a_deadlock_in_the_callers_transaction_is_retried_in_a_savepoint(engine):
    _upgraded(engine)
    kc, legacy_id = _a_migrated_user(engine)
    app_engine = make_engine(engine.url, poolclass=NullPool)
    other_engine = make_engine(engine.url, poolclass=NullPool)
    try:
        with app_engine.connect() as app, other_engine.connect() as other:
            app_pid = app.execute(text("SELECT pg_backend_pid()")).scalar_one()
            # The application's login transaction writes user_settings first ...
            app.execute(text("UPDATE user_settings SET language = 'login' WHERE id = :i"), {"i": legacy_id})
            # ... while another session holds the link table and is about to want user_settings.
            other.execute(text("SET lock_timeout = '5s'"))
            other.execute(text("LOCK TABLE orgmig_user_settings_link IN ACCESS EXCLUSIVE MODE"))
            out: dict = {}
            login = threading.Thread(target=_login, args=(app, kc, out))
            login.start()
            _until(engine, WAITING, pid=app_pid)  # the login's first read waits for the link table
            failed: dict = {}

            def want_user_settings() -> None:
                try:
                    other.execute(text("LOCK TABLE user_settings IN ACCESS EXCLUSIVE MODE"))
                except Exception as exc:  # noqa: BLE001 - this side may lose; the test reads it
                    failed["error"] = exc
                other.rollback()

            taker = threading.Thread(target=want_user_settings)
            taker.start()
            login.join(30)
            taker.join(30)
            assert "error" not in out, out.get("error")
            assert out["found"] is not None and not out["found"].migrated_now
            # the caller's transaction is intact: its own write commits
            app.commit()
    finally:
        app_engine.dispose()
        other_engine.dispose()
    assert scalar(engine, "SELECT language FROM user_settings WHERE id = :i", i=legacy_id) == "login"


def test_finalize_beside_logins_in_the_applications_transactions(engine):
    _upgraded(engine)
    kc, legacy_id = _a_migrated_user(engine)
    app_engine = make_engine(engine.url, poolclass=NullPool)
    try:
        with app_engine.connect() as app:
            app_pid = app.execute(text("SELECT pg_backend_pid()")).scalar_one()
            # A login of the old application version: it writes user_settings (captured) ...
            app.execute(text("UPDATE user_settings SET language = 'login' WHERE id = :i"), {"i": legacy_id})
            finalize = subprocess.Popen([sys.executable, "-m", "app.cli", "finalize"], cwd=ROOT,
                                        env=alembic_env(engine.url),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # ... `orgmig finalize` queues for the tables the capture touches ...
            _until(engine, ANY_WAITING, pid=app_pid)
            # ... and the same login transaction then asks for its user
            out: dict = {}
            _login(app, kc, out)
            assert "error" not in out, out.get("error")
            assert out["found"] is not None
            app.commit()
            stdout, stderr = finalize.communicate(timeout=120)
    finally:
        app_engine.dispose()
    assert finalize.returncode == 0, stderr
    assert "finalized" in stdout and "Traceback" not in stderr
    assert scalar(engine, "SELECT to_regclass('orgmig_user_settings_change')") is None
    # the login's write was captured before finalize and applied by it
    assert scalar(engine, "SELECT s.language FROM settings s JOIN orgmig_user_settings_link l ON l.org_id = s.org_id"
                          " WHERE l.user_settings_id = :i", i=legacy_id) == "login"


def test_the_run_ends_beside_an_open_login_transaction(engine):
    """The run's end takes no lock on user_settings or the link table (the capture stays until
    `orgmig finalize`): an application transaction that read them through migrate_user and
    wrote user_settings, open across the end of the run, neither waits for it nor stops it."""
    migrations.upgrade(migrations.alembic_config(engine.url), "0003")
    seed_legacy(engine, 600, seed=9)
    first = scalar(engine, "SELECT min(id) FROM user_settings WHERE keycloak_user_id ~ '[^[:space:]]'")
    kc = scalar(engine, "SELECT keycloak_user_id FROM user_settings WHERE id = :i", i=first)
    upgrade = subprocess.Popen([sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "0004"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=alembic_env(engine.url, ORGMIG_BATCH_SIZE="100", ORGMIG_PAUSE_MS="300",
                                               ORGMIG_WORKERS="1"))
    app_engine = make_engine(engine.url, poolclass=NullPool)
    try:
        # the first batch has migrated the first user
        _until(engine, "SELECT count(*) FROM orgmig_user_settings_link WHERE user_settings_id = :i", i=first)
        with app_engine.connect() as app:
            app.begin()
            found = migrate_user(app, kc)
            app.execute(text("UPDATE user_settings SET language = 'open' WHERE id = :i"), {"i": first})
            # the run ends while the login transaction is open
            _, stderr = upgrade.communicate(timeout=120)
            assert app.in_transaction()
            app.commit()
    finally:
        app_engine.dispose()
        if upgrade.poll() is None:
            upgrade.kill()
    assert upgrade.returncode == 0, stderr
    assert found is not None and not found.migrated_now
    # the write committed after the run's last drain waits in the capture, and finalize applies it
    assert scalar(engine, "SELECT count(*) FROM orgmig_user_settings_change") == 1
    done = orgmig(engine.url, "finalize")
    assert done.returncode == 0, done.stderr
    assert scalar(engine, "SELECT s.language FROM settings s JOIN orgmig_user_settings_link l ON l.org_id = s.org_id"
                          " WHERE l.user_settings_id = :i", i=first) == "open"
