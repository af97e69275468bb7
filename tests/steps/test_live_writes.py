"""The application writes to user_settings while revision 0004 runs (inserts, updates, deletes,
keycloak_user_id changes that move winners): the result is what migrating the final table in one
go gives; the capture stays until `orgmig finalize`, which leaves no trace of it."""

from __future__ import annotations

import random
import threading
import time

from sqlalchemy import text
from sqlalchemy.pool import NullPool

from app.db import make_engine
from app.ops import migrations, verify
from app.ops.seed import seed_legacy
from tests.support.db import scalar
from tests.support.migrate import orgmig, outcome, outcome_from_scratch, start_alembic
from tests.support.waiting import wait_until


def _writer(url, stop: threading.Event, done: list, seed: int) -> None:
    """Short application transactions against user_settings, as fast as they go."""
    rng = random.Random(seed)
    eng = make_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as conn:
            while not stop.is_set():
                kind = rng.choice(("insert", "insert_dup", "update", "update_kc", "delete"))
                with conn.begin():
                    conn.execute(text("SET LOCAL lock_timeout = '5s'"))
                    if kind == "insert":
                        conn.execute(text("INSERT INTO user_settings (keycloak_user_id, language, email)"
                                          " VALUES (:k, 'xx', :e)"), {"k": f"live-{rng.random()}", "e": "live@x.org"})
                    elif kind == "insert_dup":  # a new, higher id for an existing user: the new winner
                        conn.execute(text("INSERT INTO user_settings (keycloak_user_id, language)"
                                          " SELECT keycloak_user_id, 'dup' FROM user_settings"
                                          " WHERE keycloak_user_id ~ '[^[:space:]]' ORDER BY random() LIMIT 1"))
                    elif kind == "update":
                        conn.execute(text("UPDATE user_settings SET language = 'upd', max_iterations = :m"
                                          " WHERE id = (SELECT id FROM user_settings ORDER BY random() LIMIT 1)"),
                                     {"m": rng.randint(1, 999)})
                    elif kind == "update_kc":
                        conn.execute(text("UPDATE user_settings SET keycloak_user_id = :k"
                                          " WHERE id = (SELECT id FROM user_settings ORDER BY random() LIMIT 1)"),
                                     {"k": f"moved-{rng.random()}"})
                    else:
                        conn.execute(text("DELETE FROM user_settings"
                                          " WHERE id = (SELECT id FROM user_settings ORDER BY random() LIMIT 1)"))
                done.append(kind)
                time.sleep(0.005)
    finally:
        eng.dispose()


def test_writes_during_the_upgrade_end_in_their_final_state(pg_server, engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 3_000, seed=12)
    upgrade = start_alembic(engine.url, "upgrade", "0004", ORGMIG_PAUSE_MS="40", ORGMIG_BATCH_SIZE="100",
                            ORGMIG_WORKERS="2")
    wait_until(lambda: scalar(engine, "SELECT count(*) FROM pg_tables WHERE tablename = 'orgmig_user_settings_change'"),
               alive=upgrade, every=0.02, what="the capture installed")
    stop, done = threading.Event(), []
    writers = [threading.Thread(target=_writer, args=(engine.url, stop, done, i)) for i in range(3)]
    for w in writers:
        w.start()
    # The application writes while the batches run, and stops before the run ends, so every one
    # of its writes is the capture's to apply.
    while (scalar(engine, "SELECT rows_done * 10 / greatest(total_rows, 1) FROM orgmig_run") or 0) < 6:
        assert upgrade.poll() is None, upgrade.stderr.read()
        time.sleep(0.05)
    stop.set()
    for w in writers:
        w.join(30)
    _, err = upgrade.communicate(timeout=300)
    assert upgrade.returncode == 0, err
    assert len(done) > 50 and {"insert", "insert_dup", "update", "update_kc", "delete"} <= set(done), done
    # the capture stays after the run, with nothing left to apply
    assert scalar(engine, "SELECT count(*) FROM orgmig_user_settings_change") == 0
    assert [c for c in verify.run(engine) if not c.ok] == []
    done = orgmig(engine.url, "finalize")
    assert done.returncode == 0, done.stderr
    # no trace of the capture
    assert scalar(engine, "SELECT to_regclass('orgmig_user_settings_change')") is None
    assert scalar(engine, "SELECT count(*) FROM pg_trigger WHERE tgname = 'orgmig_capture'") == 0
    assert scalar(engine, "SELECT count(*) FROM pg_proc WHERE proname = 'orgmig_capture_user_settings'") == 0
    assert scalar(engine, "SELECT to_regclass('ix_orgmig_user_settings_link_user_id')") is None
    assert [c for c in verify.run(engine) if not c.ok] == []
    # the same result as migrating the final user_settings in one go
    assert outcome(engine) == outcome_from_scratch(pg_server, engine)
