"""`orgmig status` tells a live run from one whose process died; `orgmig verify` fails while a
data revision is in progress and says how far it got."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from app.ops import migrations
from app.ops.seed import seed_legacy
from tests.support.db import THIS_DATABASE, scalar
from tests.support.migrate import ROOT, alembic_cmd, alembic_env, orgmig, start_alembic
from tests.support.waiting import wait_until


def _start_slow_upgrade(engine):
    return start_alembic(engine.url, "upgrade", "head", stderr=subprocess.DEVNULL, ORGMIG_PAUSE_MS="600",
                         ORGMIG_WORKERS="1", ORGMIG_BATCH_SIZE="50")


def _wait_for_batches(engine, n: int) -> None:
    wait_until(lambda: (scalar(engine, "SELECT count(*) FROM orgmig_batch WHERE status = 'succeeded'") or 0) >= n,
               what=f"{n} batches succeeded")


def test_status_and_verify_while_a_run_is_live_then_after_its_process_died(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 3_000, seed=3)
    proc = _start_slow_upgrade(engine)
    try:
        _wait_for_batches(engine, 2)
        live = json.loads(orgmig(engine.url, "status", "--json").stdout)
        assert [(r["status"], r["state"], r["live"]) for r in live["runs"]] == [("running", "running", True)]
        (run,) = live["runs"]
        assert run["workers"] == 1  # ORGMIG_WORKERS=1: its one worker (not its two connections)
        assert run["batches"] >= 2 and run["retries"] == 0
        assert run["rate_last_minute"] > 0 and run["eta_seconds"] > 0
        watch = subprocess.Popen([sys.executable, "-m", "app.cli", "status", "--json", "--watch", "0.2"], cwd=ROOT,
                                 env=alembic_env(engine.url), stdout=subprocess.PIPE, text=True)
        lines = [watch.stdout.readline() for _ in range(3)]  # one a refresh, as they come
        watch.send_signal(signal.SIGINT)
        lines += watch.communicate(timeout=10)[0].splitlines()
        assert watch.returncode == 0 and len(lines) >= 3
        assert [json.loads(line)["runs"][0]["rows_done"] for line in lines] == \
            sorted(json.loads(line)["runs"][0]["rows_done"] for line in lines)
        checked = orgmig(engine.url, "verify", "--json")
        assert checked.returncode == 1
        failing = [c for c in json.loads(checked.stdout)["checks"] if not c["ok"]]
        assert [c["check_name"] for c in failing] == ["revision 0004 data step user_settings_to_org finished"]
        assert failing[0]["detail"].startswith("revision 0004 is in progress: run 1 upgrade running,")
        assert "/3,000 rows" in failing[0]["detail"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The killed process left the run `running`; once the server has seen its connections close
    # (at once, unless a statement was running), nobody holds it any more.
    wait_until(lambda: not scalar(engine, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                          f" AND classid = 1869770088 AND {THIS_DATABASE}"),
               what="no process holding the run")
    dead = json.loads(orgmig(engine.url, "status", "--json").stdout)
    assert [(r["status"], r["state"], r["live"]) for r in dead["runs"]] == [("running", "interrupted", False)]
    assert dead["runs"][0]["workers"] is None
    table = orgmig(engine.url, "status")
    assert "run 1 is interrupted: it is marked running, but no live process holds it" in table.stdout
    checked = orgmig(engine.url, "verify", "--json")
    details = [c["detail"] for c in json.loads(checked.stdout)["checks"] if not c["ok"]]
    assert checked.returncode == 1 and "upgrade interrupted (no live process)" in details[0]
    # Resumed and finished: status and verify are clean.
    done = subprocess.run(alembic_cmd("upgrade", "head"), cwd=ROOT, env=alembic_env(engine.url),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert orgmig(engine.url, "verify").returncode == 0
    final = json.loads(orgmig(engine.url, "status", "--json").stdout)
    assert [(r["status"], r["live"]) for r in final["runs"]] == [("finished", False)]
