"""The `orgmig` command as an operator uses it: exit codes and the text a person reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from app.ops import migrations
from app.ops.seed import seed_legacy
from tests.support.db import execute, scalar
from tests.support.migrate import ROOT, orgmig, run_alembic, start_alembic
from tests.support.waiting import wait_until


def test_unreachable_database_is_one_line_without_the_password():
    url = "postgresql://admin:s3cr3t-pw@127.0.0.1:1/nowhere"
    for args in (["status"], ["verify"], ["verify", "--json"]):
        p = subprocess.run([sys.executable, "-m", "app.cli", *args, "--database-url", url],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert p.returncode == 2
        assert p.stderr.startswith("orgmig: cannot connect to postgresql+psycopg://admin:***@127.0.0.1:1/nowhere")
        assert len(p.stderr.strip().splitlines()) == 1
        assert "s3cr3t-pw" not in p.stderr + p.stdout
        assert "Traceback" not in p.stderr


def test_missing_database_url_says_what_to_set():
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    p = subprocess.run([sys.executable, "-m", "app.cli", "status"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "DATABASE_URL is not set" in p.stderr


def test_alembic_on_an_unreachable_database_is_one_line(empty_db):
    bad = empty_db.set(port=1, password="s3cr3t-pw")
    p = run_alembic(bad, "upgrade", "head")
    assert p.returncode == 2
    assert "alembic: cannot connect to" in p.stderr and "s3cr3t-pw" not in p.stderr
    assert "Traceback" not in p.stderr


def test_verify_and_status_on_a_migrated_database(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 1200, seed=4)
    migrations.upgrade(alembic_cfg, "head")
    v = orgmig(engine.url, "verify")
    assert v.returncode == 0, v.stdout + v.stderr
    assert v.stdout.splitlines()[-1].endswith(" passed, 0 failed") and "FAIL" not in v.stdout
    j = orgmig(engine.url, "verify", "--json")
    data = json.loads(j.stdout)
    assert j.returncode == 0 and data["ok"] is True
    assert {c["revision"] for c in data["checks"]} == {"0001", "0002", "0003", "0004", "0005", "0006", "0007",
                                                        "0008", "0009"}
    st = orgmig(engine.url, "status")
    assert st.returncode == 0
    assert "current revision: 0009" in st.stdout
    assert "user_settings_to_org" in st.stdout and "finished" in st.stdout
    assert "duplicate_keycloak_user_id" in st.stdout


def test_pause_then_resume(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 3000, seed=8)
    # Half a second between batches keeps the run going for seconds, long enough for `orgmig pause`
    # to start and land before the last batch even on a loaded machine.
    proc = start_alembic(engine.url, "upgrade", "0004", stdout=subprocess.PIPE, ORGMIG_BATCH_SIZE="100",
                         ORGMIG_PAUSE_MS="500")
    wait_until(lambda: (scalar(engine, "SELECT count(*) FROM orgmig_batch WHERE status = 'succeeded'") or 0) >= 2,
               what="two batches succeeded")
    p = orgmig(engine.url, "pause")
    assert p.returncode == 0 and "pause requested: run" in p.stdout
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "is paused at key" in err and "orgmig resume" in err
    assert "Traceback" not in err
    assert scalar(engine, "SELECT status FROM orgmig_run") == "paused"
    assert scalar(engine, "SELECT version_num FROM alembic_version") == "0003"
    again = run_alembic(engine.url, "upgrade", "0004")
    assert again.returncode != 0 and "is paused" in again.stderr  # still paused until resumed
    r = orgmig(engine.url, "resume")
    assert r.returncode == 0 and "run `alembic upgrade head` to continue" in r.stdout
    done = run_alembic(engine.url, "upgrade", "0004")
    assert done.returncode == 0, done.stderr
    assert "(resumed)" in done.stderr
    v = orgmig(engine.url, "verify")
    assert v.returncode == 0, v.stdout


def test_demo_on_a_server_creates_its_own_database(pg_server):
    # the server named with the demo's own database (the admin URL may name the run's database,
    # which the demo refuses to touch)
    url = pg_server.admin_url.set(database="orgmig_demo")
    p = subprocess.run([sys.executable, "-m", "app.cli", "demo", "--users", "1500",
                        "--database-url", url.render_as_string(hide_password=False)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    try:
        assert p.returncode == 0, p.stderr[-3000:]
        assert "Seeded 1,500 legacy users" in p.stderr
        assert "user_settings_to_org upgrade finished" in p.stderr
        assert "checks passed" in p.stderr and "FAIL" not in p.stderr
        assert "database orgmig_demo" in p.stderr and "DROP DATABASE orgmig_demo" in p.stderr
    finally:
        pg_server.drop(url.set(database="orgmig_demo"))


def test_demo_without_database_url_uses_an_embedded_postgresql(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("ORGMIG_")}
    data_dir = tmp_path / "demo-data"
    p = subprocess.run([sys.executable, "-m", "app.cli", "demo", "--users", "800", "--data-dir", str(data_dir)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Starting an embedded PostgreSQL" in p.stderr
    assert f"data in {data_dir / 'pgdata'}" in p.stderr
    assert f"rm -rf {data_dir}" in p.stderr
    assert "checks passed" in p.stderr and "FAIL" not in p.stderr
    assert (data_dir / "pgdata" / "PG_VERSION").is_file()


def test_pause_and_resume_pick_runs_by_status_and_step(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "head")  # no legacy rows: the data step's run finishes at once
    p = orgmig(engine.url, "pause")
    assert p.returncode == 1 and p.stdout.strip() == "orgmig: no unfinished run to pause"
    r = orgmig(engine.url, "resume")
    assert r.returncode == 1 and r.stdout.strip() == "orgmig: no paused run"
    execute(engine, "UPDATE orgmig_run SET status = 'running'")
    other = orgmig(engine.url, "pause", "--step", "another_step")
    assert other.returncode == 1 and not scalar(engine, "SELECT bool_or(pause_requested) FROM orgmig_run")
    p = orgmig(engine.url, "pause", "--step", "user_settings_to_org")
    assert p.returncode == 0 and "pause requested: run" in p.stdout and "user_settings_to_org upgrade" in p.stdout
    assert scalar(engine, "SELECT bool_and(pause_requested) FROM orgmig_run") is True
    r = orgmig(engine.url, "resume")
    assert r.returncode == 0 and "it continues now" in r.stdout
    assert scalar(engine, "SELECT bool_or(pause_requested) FROM orgmig_run") is False
