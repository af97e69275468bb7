"""SIGINT (Ctrl-C) and SIGTERM (what Kubernetes, systemd and CI runners send) stop a deploy
cleanly: the batches in flight are committed, no process holds the run, one line says how far it
got and what resumes it, the exit code is the shell's (130, 143), and the same command resumes
and finishes it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest

from app.ops import migrations
from app.ops.seed import seed_legacy
from tests.fakes.okta import FakeOkta
from tests.fakes.tenant import make_tenant
from tests.support.db import THIS_DATABASE, scalar
from tests.support.idp import export_subprocess, failed_checks, last_run, run_export
from tests.support.migrate import ROOT, alembic_env, orgmig, run_alembic, start_alembic
from tests.support.waiting import wait_until


def _wait_for(engine, sql: str, at_least: int) -> None:
    wait_until(lambda: (scalar(engine, sql) or 0) >= at_least, what=sql)


def _no_process_holds_the_run(engine) -> None:
    wait_until(lambda: not scalar(engine, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                          f" AND classid = 1869770088 AND {THIS_DATABASE}"),
               30, what="no process holding the run")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_alembic_upgrade_between_batches_and_the_same_command_resumes(engine, alembic_cfg,
                                                                                      signum, code):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 3_000, seed=5)
    # 1,000 rows a second in batches of 100 over 2 workers: the run takes about 3 s.
    proc = start_alembic(engine.url, "upgrade", "head", stdout=subprocess.PIPE, ORGMIG_MAX_ROWS_PER_SECOND="1000",
                         ORGMIG_WORKERS="2", ORGMIG_BATCH_SIZE="100")
    try:
        _wait_for(engine, "SELECT count(*) FROM orgmig_batch WHERE status = 'succeeded'", 3)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    last = err.strip().splitlines()[-1]
    found = re.fullmatch(r"alembic: user_settings_to_org upgrade: interrupted at ([\d,]+)/3,000 rows;"
                         r" `alembic upgrade head` resumes", last)
    assert found, err
    done = int(found[1].replace(",", ""))
    assert 300 <= done < 3_000
    # What the line says is what the ledger holds: every batch it counted is committed, none is
    # left claimed, and no process holds the run, which status shows as interrupted.
    _no_process_holds_the_run(engine)
    assert scalar(engine, "SELECT rows_done FROM orgmig_run") == done
    assert scalar(engine, "SELECT sum(rows_read) FROM orgmig_batch WHERE status = 'succeeded'") == done
    assert scalar(engine, "SELECT count(*) FROM orgmig_batch WHERE status <> 'succeeded'") == 0
    assert scalar(engine, "SELECT count(*) FROM orgmig_user_settings_link") <= done
    (run,) = json.loads(orgmig(engine.url, "status", "--json").stdout)["runs"]
    assert (run["status"], run["state"]) == ("running", "interrupted")
    assert run["last_error"] == last.removeprefix("alembic: ")
    # The same command resumes it and finishes; verify passes.
    again = run_alembic(engine.url, "upgrade", "head")
    assert again.returncode == 0, again.stderr
    assert "(resumed)" in again.stderr
    assert scalar(engine, "SELECT status || ' ' || rows_done FROM orgmig_run") == "finished 3000"
    checked = orgmig(engine.url, "verify")
    assert checked.returncode == 0, checked.stdout


def test_sigterm_stops_orgmig_export_and_the_same_command_resumes(provider_env, snapshot_db, snapshot_engine):
    with FakeOkta(make_tenant(3000, 30, seed=21)) as fake:
        env = {"OKTA_BASE_URL": fake.base_url, "OKTA_API_TOKEN": fake.api_token}
        provider_env(**env)
        fake.faults.slow(0.15, 10_000, path_prefix="/api/v1/users")
        proc = export_subprocess(snapshot_db, env, "--provider", "okta")
        try:
            _wait_for(snapshot_engine, "SELECT max(pages) FROM idp_export_cursor WHERE stream = 'users'", 3)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        own = [line for line in err.splitlines() if line.startswith("orgmig")]
        assert proc.returncode == 143, err
        assert "Traceback" not in err
        assert own == ["orgmig: interrupted (SIGTERM); run the same command again to go on"]
        fake.faults.clear()
        again = run_export(snapshot_db, "--provider", "okta")
        assert again.code == 0, again.stderr
        assert "resumed" in again.stdout
        assert last_run(snapshot_engine, "okta").status == "finished"
        assert failed_checks(snapshot_engine) == []


def test_sigint_stops_orgmig_work_and_the_alembic_process_finishes_the_run(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 3_000, seed=6)
    slow = {"ORGMIG_MAX_ROWS_PER_SECOND": "300", "ORGMIG_WORKERS": "1", "ORGMIG_BATCH_SIZE": "100"}
    upgrade = start_alembic(engine.url, "upgrade", "head", **slow)
    try:
        _wait_for(engine, "SELECT count(*) FROM orgmig_batch WHERE status = 'succeeded'", 1)
        work = subprocess.Popen([sys.executable, "-m", "app.cli", "work", "--workers", "1"], cwd=ROOT,
                                env=alembic_env(engine.url, **slow),
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # Once its own two connections work on the run beside the alembic process's.
            _wait_for(engine, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                              " WHERE l.locktype = 'advisory' AND l.classid = 1869770088 AND l.granted"
                              f" AND a.application_name <> 'orgmig alembic' AND l.{THIS_DATABASE}", 2)
            _wait_for(engine, "SELECT count(*) FROM orgmig_batch WHERE status = 'succeeded'", 5)
            work.send_signal(signal.SIGINT)
            _, err = work.communicate(timeout=30)
        finally:
            if work.poll() is None:
                work.kill()
        assert work.returncode == 130, err
        assert "Traceback" not in err
        assert re.fullmatch(r"orgmig: user_settings_to_org upgrade: interrupted at [\d,]+/3,000 rows;"
                            r" `orgmig work` resumes", err.strip().splitlines()[-1]), err
        _, upgrade_err = upgrade.communicate(timeout=60)
    finally:
        if upgrade.poll() is None:
            upgrade.kill()
    assert upgrade.returncode == 0, upgrade_err
    assert scalar(engine, "SELECT status || ' ' || rows_done FROM orgmig_run") == "finished 3000"
    assert orgmig(engine.url, "verify").returncode == 0
