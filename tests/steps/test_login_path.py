"""The login path (`app.migrate_user`): one user now, with the batch's statement; beside the bulk
run and beside itself, exactly one result and no duplicate-key error for the caller."""

from __future__ import annotations

import json
import threading
import time

import pytest
from sqlalchemy import event, text
from sqlalchemy.pool import NullPool

from app import migrate_user
from app.db import make_engine
from app.ops import migrations, verify
from app.ops.seed import seed_legacy
from tests.support.db import execute, scalar
from tests.support.migrate import orgmig, outcome, run_alembic, start_alembic
from tests.support.waiting import wait_until


def _valid_ids(engine, n: int) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT keycloak_user_id FROM user_settings WHERE keycloak_user_id ~ '[^[:space:]]'"
            " GROUP BY keycloak_user_id ORDER BY min(id) LIMIT :n"), {"n": n}).scalars())


def test_one_user_now_then_the_bulk_run_links_it(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 600, seed=3)
    kc = _valid_ids(engine, 1)[0]
    with engine.connect() as conn:
        first = migrate_user(conn, kc)
        again = migrate_user(conn, kc)
    assert first is not None and first.migrated_now and not again.migrated_now
    assert (again.user_id, again.org_id) == (first.user_id, first.org_id)
    winner = scalar(engine, "SELECT max(id) FROM user_settings WHERE keycloak_user_id = :k", k=kc)
    assert scalar(engine, "SELECT name FROM org WHERE id = :o", o=first.org_id) == f"user_{winner}_org"
    assert scalar(engine, 'SELECT keycloak_user_id FROM "user" WHERE id = :u', u=first.user_id) == kc
    migrations.upgrade(alembic_cfg, "0004")
    assert scalar(engine, 'SELECT count(*) FROM "user" WHERE keycloak_user_id = :k', k=kc) == 1
    assert scalar(engine, "SELECT user_id FROM orgmig_user_settings_link WHERE user_settings_id = :i",
                  i=winner) == first.user_id
    assert [c for c in verify.run(engine) if not c.ok] == []


def test_inside_the_callers_transaction_it_leaves_its_settings_alone(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 200, seed=4)
    kc = _valid_ids(engine, 1)[0]
    with engine.connect() as conn:
        conn.execute(text("SET TIME ZONE 'Asia/Kolkata'"))
        conn.commit()
        with conn.begin():
            found = migrate_user(conn, kc)
            assert conn.execute(text("SHOW TimeZone")).scalar() == "Asia/Kolkata"
    assert found is not None
    assert scalar(engine, 'SELECT count(*) FROM "user"') == 1


def test_a_migrated_user_is_one_read_and_a_new_one_two_statements(engine, alembic_cfg):
    # A later login (the user migrated) takes no lock and sets nothing; a first one holds the
    # lock for that user until the caller's transaction ends, and leaves the caller's settings
    # as they were. In a transaction of its own a call is one statement for a migrated user and
    # two for a user it migrates (once the roles exist).
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 200, seed=8)
    first, second, third = _valid_ids(engine, 3)
    statements: list[str] = []
    locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"

    def count(conn, cursor, statement, *_) -> None:
        statements.append(statement)

    with engine.connect() as conn:
        migrate_user(conn, first)  # creates the roles
        event.listen(conn, "before_cursor_execute", count)
        migrated = migrate_user(conn, second)
        again = migrate_user(conn, second)
        event.remove(conn, "before_cursor_execute", count)
        assert len(statements) == 3
        conn.execute(text("SET TIME ZONE 'Asia/Kolkata'"))
        conn.commit()
        with conn.begin():
            assert migrate_user(conn, second) == again
            assert conn.execute(text(locks)).scalar() == 0
            assert migrate_user(conn, third).migrated_now
            assert conn.execute(text(locks)).scalar() == 1
            assert conn.execute(text("SHOW TimeZone")).scalar() == "Asia/Kolkata"
        assert conn.execute(text(locks)).scalar() == 0
    assert migrated.migrated_now and not again.migrated_now
    assert (again.user_id, again.org_id) == (migrated.user_id, migrated.org_id)


def test_unmigratable_rows_get_the_batch_reports(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    execute(engine, "INSERT INTO user_settings (id, keycloak_user_id) VALUES (1, 'dup'), (2, 'dup'), (3, '  ')")
    with engine.connect() as conn:
        dup = migrate_user(conn, "dup")
        blank = migrate_user(conn, "  ")
        nobody = migrate_user(conn, "nobody")
    assert dup is not None and blank is None and nobody is None
    assert scalar(engine, "SELECT legacy_user_settings_id FROM \"user\" WHERE id = :u", u=dup.user_id) == 2
    with engine.connect() as conn:
        reports = dict(conn.execute(text("SELECT source_id, reason FROM orgmig_report ORDER BY source_id")).all())
    assert reports == {1: "duplicate_keycloak_user_id", 3: "missing_keycloak_user_id"}


def test_fifty_threads_during_the_bulk_run_get_one_answer_each(engine, alembic_cfg, pg_server):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 4_000, seed=5)
    ids = _valid_ids(engine, 10)
    bulk = start_alembic(engine.url, "upgrade", "0004", ORGMIG_BATCH_SIZE="100", ORGMIG_PAUSE_MS="20")
    answers: dict[str, set] = {k: set() for k in ids}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def call(kc: str) -> None:
        eng = make_engine(engine.url, poolclass=NullPool)
        try:
            with eng.connect() as conn:
                for _ in range(3):
                    found = migrate_user(conn, kc)
                    with lock:
                        answers[kc].add((found.user_id, found.org_id))
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            errors.append(exc)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=call, args=(ids[i % len(ids)],)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    _, err = bulk.communicate(timeout=180)
    assert bulk.returncode == 0, err
    assert errors == []
    assert all(len(found) == 1 for found in answers.values()), answers
    for kc, found in answers.items():
        ((user_id, org_id),) = found
        assert scalar(engine, 'SELECT id FROM "user" WHERE keycloak_user_id = :k', k=kc) == user_id
    assert [c for c in verify.run(engine) if not c.ok] == []
    # the result is the one a run without logins gives
    reference = pg_server.create("orgmig_login_ref")
    ref = make_engine(reference, poolclass=NullPool)
    try:
        migrations.upgrade(migrations.alembic_config(reference), "0003")
        seed_legacy(ref, 4_000, seed=5)
        assert run_alembic(reference, "upgrade", "0004").returncode == 0
        mine, theirs = outcome(engine), outcome(ref)
        assert mine["counts"] == theirs["counts"] and mine["reports"] == theirs["reports"]
    finally:
        ref.dispose()
        pg_server.drop(reference)


def test_the_command(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 100, seed=6)
    kc = _valid_ids(engine, 1)[0]
    t0 = time.monotonic()
    done = orgmig(engine.url, "migrate-user", kc)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["migrated_now"] is True and answer["app_user_id"] > 0
    again = json.loads(orgmig(engine.url, "migrate-user", kc).stdout)
    assert again == {**answer, "migrated_now": False}
    missing = orgmig(engine.url, "migrate-user", "nobody")
    assert missing.returncode == 1 and json.loads(missing.stdout)["migrated"] is False
    assert time.monotonic() - t0 < 60


@pytest.mark.parametrize("inside", [False, True], ids=["own transaction", "caller's transaction"])
def test_a_row_committed_while_the_call_waits_on_it_is_linked(engine, alembic_cfg, inside):
    # The bulk run's batch inserts the personal org first; the call's insert of the same org
    # waits for that transaction, then fails with a unique violation once it commits: the call
    # is retried and links the org, and the caller sees no error (and keeps its settings).
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 200, seed=7)
    kc = _valid_ids(engine, 1)[0]
    winner = scalar(engine, "SELECT max(id) FROM user_settings WHERE keycloak_user_id = :k", k=kc)
    result: dict = {}

    def call() -> None:
        eng = make_engine(engine.url, poolclass=NullPool)
        try:
            with eng.connect() as conn:
                if not inside:
                    result["found"] = migrate_user(conn, kc)
                    return
                conn.execute(text("SET TIME ZONE 'Asia/Kolkata'"))
                conn.commit()
                with conn.begin():
                    result["found"] = migrate_user(conn, kc)
                    result["zone"] = conn.execute(text("SHOW TimeZone")).scalar()
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            result["error"] = exc
        finally:
            eng.dispose()

    with engine.connect() as bulk:
        org_id = bulk.execute(text("INSERT INTO org (name) VALUES (:n) RETURNING id"),
                              {"n": f"user_{winner}_org"}).scalar_one()
        caller = threading.Thread(target=call)
        caller.start()
        wait_until(lambda: scalar(engine, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                  " AND datname = current_database()"), 30, alive=caller, what="the login waiting")
        bulk.commit()
    caller.join(30)
    assert "error" not in result, result["error"]
    found = result["found"]
    assert found is not None and found.migrated_now and found.org_id == org_id
    assert scalar(engine, 'SELECT current_org_id FROM "user" WHERE keycloak_user_id = :k', k=kc) == org_id
    assert result.get("zone", "Asia/Kolkata") == "Asia/Kolkata"
