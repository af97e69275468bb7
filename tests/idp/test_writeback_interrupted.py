"""`orgmig writeback` interrupted: a run killed midway is resumed by the next one, which writes
only what was not recorded; a provider that stops answering halts the run, and the next one
finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.support.idp import PROVIDER_PREFIXES
from tests.support.migrate import ROOT
from tests.support.waiting import wait_until
from tests.support.writeback import WRITE_PATH, writeback


def test_a_run_killed_midway_is_resumed_by_the_next_one(case):
    c = case("auth0")
    links = c.links()
    c.fake.faults.slow(seconds=0.05, n=10_000, path_prefix=WRITE_PATH["auth0"])
    env = {k: v for k, v in os.environ.items() if not k.startswith((*PROVIDER_PREFIXES, "ORGMIG_"))}
    env.update(c.fake.settings(), PYTHONPATH=str(ROOT), ORGMIG_WRITEBACK_CONCURRENCY="2")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "writeback", "--provider", "auth0", "--database-url",
                             c.url.render_as_string(hide_password=False)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: len(c.rows("SELECT 1 FROM orgmig_writeback")) >= 30, alive=proc, what="30 accounts recorded")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    recorded = {r.external_id for r in c.rows("SELECT external_id FROM orgmig_writeback WHERE status = 'written'")}
    assert 30 <= len(recorded) < len(links)

    c.fake.faults.clear()
    c.fake.reset_requests()
    resumed = writeback(c)
    assert resumed.code == 0, resumed.everything[-3000:]
    rewritten = {r.path.rsplit("/", 1)[-1] for r in c.writes()}
    assert not rewritten & recorded  # what was recorded is not written again
    assert len(rewritten) == len(links) - len(recorded)
    assert c.held() == {uid: str(user_id) for uid, user_id in links.items()}


def test_a_provider_that_stops_answering_halts_the_run_and_the_next_one_finishes(case):
    c = case("okta")
    links = c.links()
    c.fake.faults.add_5xx(n=10_000, status=503, path_prefix=WRITE_PATH["okta"])
    down = writeback(c, ORGMIG_IDP_RETRY_ATTEMPTS="2", ORGMIG_IDP_BACKOFF_BASE_SECONDS="0.01",
                     ORGMIG_WRITEBACK_CONCURRENCY="2")
    assert down.code == 1, down.everything[-3000:]
    halted = next(line for line in down.errors if "halted after" in line)
    assert "returned 503" in halted and f"{len(links) - 26:,} accounts not tried" in halted
    assert len(c.writes()) <= 2 * 26  # no account beyond the 25 (and the one in flight) was tried
    c.fake.faults.clear()
    up = writeback(c)
    assert up.code == 0, up.everything[-3000:]
    assert c.held() == {uid: str(user_id) for uid, user_id in links.items()}
