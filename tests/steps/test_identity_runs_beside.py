"""A sync beside the other runs of its provider: an export that failed before it wrote a page
is not in the way (and one that wrote pages is refused as such), and `orgmig reconcile` during a
running sync waits for it under the migration lock instead of reporting its half-applied work as
drift."""

from __future__ import annotations

import subprocess
import sys

from tests.support.db import execute, scalar
from tests.support.identity import ENV, ROLE_MAP, cli, export, rows
from tests.support.migrate import ROOT, alembic_env, url_string
from tests.support.waiting import wait_until


def test_an_export_that_failed_before_its_first_page_does_not_stop_the_sync(identity_databases, identity_fake):
    url, engine = identity_databases.open("okta", "synced")
    fake = identity_fake("okta")
    failed = export(url, "okta", fake, code=1, OKTA_API_TOKEN="00wrongTokenValue1234567890")
    assert "returned 401" in failed.everything
    assert rows(engine, "SELECT status FROM idp_export_run ORDER BY id") == [("finished",), ("failed",)]

    out = cli(url, "sync", "--provider", "okta")
    assert out.code == 0, out.stderr[-3000:]
    assert "identity:okta upgrade finished" in out.stderr

    # An export still running (resumed, no page written yet) is refused, and the message says so.
    execute(engine, "UPDATE idp_export_run SET status = 'running' WHERE status = 'failed'")
    out = cli(url, "sync", "--provider", "okta")
    assert out.code == 1
    line = out.stderr.strip().splitlines()[-1]
    assert "is not finished, and it is still running" in line and "already in the snapshot" not in line, line
    engine.dispose()


def test_reconcile_during_a_running_sync_waits_for_it(identity_databases, identity_fake):
    url, engine = identity_databases.open("okta", "synced")
    fake = identity_fake("okta")
    renamed = [f"filler-{i:03d}" for i in range(40)]
    for key in renamed:
        fake.tenant.touch_user(key, first_name="Renamed")
    export(url, "okta", fake)

    sync = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "sync", "--provider", "okta", "--database-url", url_string(url)],
        cwd=ROOT, env=alembic_env(url, ORGMIG_ROLE_MAP=ROLE_MAP, ORGMIG_IDP_ENV=ENV, ORGMIG_BATCH_SIZE="4",
                                  ORGMIG_WORKERS="1", ORGMIG_PAUSE_MS="250"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        done = """SELECT count(*) FROM orgmig_batch b JOIN orgmig_run r ON r.id = b.run_id
                  WHERE r.step = 'identity:okta' AND r.status = 'running' AND b.status = 'succeeded'"""
        # the sync is half-way
        wait_until(lambda: scalar(engine, done), alive=sync, what="a batch of the sync finished", every=0.02)
        out = cli(url, "reconcile", "--provider", "okta")
    finally:
        _, err = sync.communicate(timeout=120)
    assert sync.returncode == 0, err[-3000:]
    assert (out.code, out.stdout.splitlines()[-1]) == (0, "okta, export run 2: no drift"), out.stdout[-3000:]
    assert rows(engine, """SELECT count(*) FROM "user" WHERE first_name = 'Renamed'""") == [(len(renamed),)]
    engine.dispose()
