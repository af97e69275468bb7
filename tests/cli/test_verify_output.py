"""`orgmig verify` as a person reads it: a failure first, with its detail, then one summary line;
with everything passing and --failed-only, the summary alone; and the exit code is verify's own
whether or not its reader reads to the end (`verify | head`)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.ops import migrations
from app.ops.seed import seed_legacy
from tests.support.db import execute
from tests.support.migrate import ROOT, alembic_env, orgmig


@pytest.fixture
def migrated(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 300, seed=2)
    migrations.upgrade(alembic_cfg, "head")
    return engine


def _count(engine) -> int:
    return len(json.loads(orgmig(engine.url, "verify", "--json").stdout)["checks"])


def test_a_failing_check_comes_first_with_its_detail_then_the_summary(migrated):
    n = _count(migrated)
    execute(migrated, "DELETE FROM orgmig_user_settings_link WHERE user_settings_id ="
                      " (SELECT min(user_settings_id) FROM orgmig_user_settings_link)")
    checked = orgmig(migrated.url, "verify")
    assert checked.returncode == 1
    failed = [c for c in json.loads(orgmig(migrated.url, "verify", "--json").stdout)["checks"] if not c["ok"]]
    assert failed
    lines = checked.stdout.splitlines()
    rows = [line for line in lines[1:-1] if line.split()[:1] != ["rev"]]
    # Failures first, each on one line with its detail (no wrapping into a pipe).
    for c, line in zip(failed, rows, strict=False):
        assert line.split()[0] == c["revision"] and c["check_name"] in line and "FAIL" in line
        assert c["detail"] in line
    assert all("FAIL" not in line for line in rows[len(failed):])
    assert len(rows) == n
    assert lines[-1] == f"{n} checks: {n - len(failed)} passed, {len(failed)} failed"
    only = orgmig(migrated.url, "verify", "--failed-only").stdout.splitlines()
    assert only[-1] == lines[-1] and len(only) == 1 + 1 + len(failed) + 1  # header, column names, failures


def test_everything_passing_with_failed_only_is_the_summary_alone(migrated):
    n = _count(migrated)
    checked = orgmig(migrated.url, "verify", "--failed-only")
    assert checked.returncode == 0
    assert checked.stdout.splitlines()[1:] == [f"{n} checks: {n} passed, 0 failed"]


@pytest.mark.parametrize("json_output", [False, True])
def test_the_exit_code_does_not_depend_on_the_reader_reading_to_the_end(migrated, json_output):
    args = ["verify", "--json"] if json_output else ["verify"]
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=alembic_env(migrated.url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader is gone before verify prints anything (`| head -0`)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert err == ""
    execute(migrated, "DELETE FROM orgmig_user_settings_link WHERE user_settings_id ="
                      " (SELECT min(user_settings_id) FROM orgmig_user_settings_link)")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=alembic_env(migrated.url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 1, err
    assert err == ""
