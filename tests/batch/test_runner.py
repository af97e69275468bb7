"""The batch engine with a toy step (tests/batch/toy_copy: a class and its SQL files): resume
after a kill, retry on a lock timeout, split on a statement timeout, pause and resume, several
workers, a summary rendered from whatever the step reports. Nothing here knows about users."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import text

from app.batch import Paused, run_step
from app.batch.summary import format_summary
from tests.batch.toy_copy import ROWS, ToyCopy
from tests.batch.toy_copy.fixtures import batches_cover_the_keys_once, copied_exactly, options
from tests.support.db import execute, scalar
from tests.support.migrate import ROOT, alembic_env
from tests.support.waiting import wait_until


def test_a_toy_step_runs_through_the_engine_and_its_summary_is_rendered(toy):
    result = run_step(toy, ToyCopy(), "upgrade", options())
    copied_exactly(toy)
    batches_cover_the_keys_once(toy)
    assert (result.batches, result.rows_done, result.rows_total) == (20, ROWS, ROWS)
    assert result.summary == {"rows in toy_a": ROWS, "copied": ROWS - ROWS // 50}
    assert result.reported == {"no_payload": ROWS // 50}
    text_ = format_summary(result)
    assert "toy_copy upgrade finished: 1,000 rows" in text_
    assert "rows in toy_a: 1,000; copied: 980" in text_
    assert "reported: 20 no_payload" in text_
    # again: nothing left to do, nothing changes
    again = run_step(toy, ToyCopy(), "upgrade", options())
    assert again.rows_total == 0 and again.batches == 0
    copied_exactly(toy)
    # and back: the downgrade walks toy_b
    down = run_step(toy, ToyCopy(), "downgrade", options())
    assert down.rows_done == ROWS - ROWS // 50
    assert scalar(toy, "SELECT count(*) FROM toy_b") == 0
    assert scalar(toy, "SELECT count(*) FROM orgmig_report") == 0


def test_several_workers_never_process_a_range_twice(toy):
    result = run_step(toy, ToyCopy(), "upgrade", options(workers=4, batch_size=17))
    copied_exactly(toy)
    batches_cover_the_keys_once(toy)
    assert result.rows_done == ROWS


def test_workers_waiting_for_the_last_batch_end_when_it_does(toy, monkeypatch):
    # Four workers, one range: three find only a range another holds and wait. They wake when it
    # is given back, not after their polling interval (made 30 s here, so a run that slept it
    # would show); before, every run paid that sleep at its end.
    monkeypatch.setattr("app.batch.crew.WAIT_FOR_OTHERS_S", 30.0)
    started = time.monotonic()
    result = run_step(toy, ToyCopy(), "upgrade", options(workers=4, batch_size=10 * ROWS))
    elapsed = time.monotonic() - started
    assert (result.batches, result.rows_done) == (1, ROWS)
    copied_exactly(toy)
    assert elapsed < 15, f"the run took {elapsed:.1f} s: the waiting workers slept their interval"


KILLABLE = """
import sys
from app.batch import Options, run_step
from app.db import make_engine
from tests.batch.toy_copy import ToyCopy
opts = Options(batch_size=50, workers=1, lock_timeout_ms=2000, statement_timeout_ms=30000,
               max_batch_attempts=5, pause_ms=150, max_rows_per_second=0, target_batch_ms=0,
               backoff_base_ms=10, backoff_cap_ms=100,
               allow_data_loss=False, progress_bar=False)
run_step(make_engine(sys.argv[1]), ToyCopy(sleep_ms_per_row=2), "upgrade", opts)
"""


def test_a_killed_run_resumes_where_it_stopped(toy):
    url = toy.url.render_as_string(hide_password=False)
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, url], cwd=ROOT, env=alembic_env(toy.url),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: not scalar(toy, "SELECT count(*) FROM pg_tables WHERE tablename = 'orgmig_batch'")
                   or (scalar(toy, "SELECT count(*) FROM orgmig_batch WHERE status = 'succeeded'") or 0) >= 5,
                   alive=proc, what="five batches succeeded")
        # mid-batch: each batch sleeps 100 ms inside its transaction
        time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = scalar(toy, "SELECT count(*) FROM orgmig_batch WHERE status = 'succeeded'")
    assert 5 <= done_before < 20
    assert scalar(toy, "SELECT status FROM orgmig_run") == "running"  # as the killed process left it
    rows_done_before = scalar(toy, "SELECT rows_done FROM orgmig_run")
    result = run_step(toy, ToyCopy(), "upgrade", options())
    assert result.resumed
    assert result.rows_done == ROWS and result.rows_done_now == ROWS - rows_done_before
    copied_exactly(toy)
    batches_cover_the_keys_once(toy)


def test_a_lock_timeout_is_retried_until_the_lock_is_gone(toy):
    blocker = toy.connect()
    blocker.execute(text("LOCK TABLE toy_b IN ACCESS EXCLUSIVE MODE"))  # held by an open transaction
    release = threading.Timer(1.0, blocker.rollback)
    release.start()
    try:
        result = run_step(toy, ToyCopy(), "upgrade", options(lock_timeout_ms=100, max_batch_attempts=50))
    finally:
        release.join()
        blocker.close()
    assert result.retries >= 1
    copied_exactly(toy)
    assert scalar(toy, "SELECT max(attempts) FROM orgmig_batch WHERE status = 'succeeded'") >= 2


def test_a_statement_timeout_splits_the_batch(toy):
    # 4 ms a row: a 100-row batch takes 400 ms, over the 300 ms limit; 50 rows take 200 ms.
    result = run_step(toy, ToyCopy(sleep_ms_per_row=4), "upgrade",
                      options(batch_size=100, statement_timeout_ms=300, max_batch_attempts=10))
    copied_exactly(toy)
    batches_cover_the_keys_once(toy)
    assert result.retries >= 10  # every 100-row batch timed out once
    with toy.connect() as conn:
        sizes = list(conn.execute(text("SELECT rows_read FROM orgmig_batch WHERE status = 'succeeded'")).scalars())
    assert max(sizes) <= 50


def test_pause_stops_between_batches_and_resume_carries_on(toy):
    errors: list[BaseException] = []

    def run():
        try:
            run_step(toy, ToyCopy(), "upgrade", options(pause_ms=50))
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    while (scalar(toy, "SELECT count(*) FROM orgmig_batch WHERE status = 'succeeded'") or 0) < 3:
        time.sleep(0.02)
    execute(toy, "UPDATE orgmig_run SET pause_requested = true")  # what `orgmig pause` does
    worker.join(30)
    assert len(errors) == 1 and isinstance(errors[0], Paused), errors
    assert "is paused at key" in str(errors[0]) and "orgmig resume" in str(errors[0])
    assert scalar(toy, "SELECT status FROM orgmig_run") == "paused"
    done = scalar(toy, "SELECT rows_done FROM orgmig_run")
    assert 0 < done < ROWS
    # still paused: a new run refuses to start
    with pytest.raises(Paused):
        run_step(toy, ToyCopy(), "upgrade", options())
    execute(toy, "UPDATE orgmig_run SET pause_requested = false")  # what `orgmig resume` does
    result = run_step(toy, ToyCopy(), "upgrade", options())
    assert result.resumed and result.rows_done == ROWS
    copied_exactly(toy)
