"""`orgmig work`: processes that join a running data revision take batches beside the alembic
process; one killed mid-batch leaves its range to another; the result is a one-process run's."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from app.db import make_engine
from app.ops import migrations
from app.ops.seed import seed_legacy
from tests.support.db import scalar
from tests.support.migrate import ROOT, alembic_env, orgmig, outcome, run_alembic, start_alembic
from tests.support.waiting import wait_until


def _work(engine, **env):
    return subprocess.Popen([sys.executable, "-m", "app.cli", "work", "--workers", "1"], cwd=ROOT,
                            env=alembic_env(engine.url, ORGMIG_PAUSE_MS="60", ORGMIG_BATCH_SIZE="100", **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_worker_processes_beside_the_upgrade_one_killed(pg_server, engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 6_000, seed=8)
    upgrade = start_alembic(engine.url, "upgrade", "0004", ORGMIG_PAUSE_MS="60", ORGMIG_BATCH_SIZE="100",
                            ORGMIG_WORKERS="1")
    wait_until(lambda: scalar(engine, "SELECT count(*) FROM pg_tables WHERE tablename = 'orgmig_run'")
               and scalar(engine, "SELECT count(*) FROM orgmig_run WHERE status = 'running'"),
               alive=upgrade, what="the upgrade's run started")
    survivor, victim = _work(engine), _work(engine)
    try:
        time.sleep(1.5)
        # mid-batch: the victim holds a range (its lock) while it works
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        _, err = upgrade.communicate(timeout=180)
        assert upgrade.returncode == 0, err
        out, werr = survivor.communicate(timeout=60)
    finally:
        for p in (upgrade, survivor, victim):
            if p.poll() is None:
                p.kill()
    assert survivor.returncode == 0, werr
    done_by_survivor = int(werr.strip().splitlines()[-1].split(": ")[1].split()[0].replace(",", ""))
    assert done_by_survivor > 0
    assert scalar(engine, "SELECT status FROM orgmig_run") == "finished"
    assert scalar(engine, "SELECT count(*) FROM orgmig_batch WHERE status <> 'succeeded'") == 0
    reference = pg_server.create("orgmig_work_ref")
    try:
        migrations.upgrade(migrations.alembic_config(reference), "0003")
        ref = make_engine(reference)
        try:
            seed_legacy(ref, 6_000, seed=8)
            assert run_alembic(reference, "upgrade", "0004").returncode == 0
            assert outcome(engine) == outcome(ref)
        finally:
            ref.dispose()
    finally:
        pg_server.drop(reference)


def test_nothing_to_join_is_one_line(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    proc = orgmig(engine.url, "work")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("orgmig: no data revision is running: start `alembic upgrade head` first,"
                                   " then join it")
