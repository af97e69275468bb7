"""Steering with no other client of the database: no limit (state `alone`); a client arriving drops
the run to a quarter of the rate it wrote alone and has the baseline measured afresh; once the
client has gone, no limit again; beside a client, while the allowance keeps only one worker
busy, batches run one at a time, and no batch is bigger than a second of the allowance. On a
real PostgreSQL with the toy step; the test watches the run through sessions named as `orgmig
status`'s, which do not count as a client. Assertions are on what the run recorded (decisions,
batch sizes), not on rates or durations."""

from __future__ import annotations

import contextlib
import threading
import time

from sqlalchemy import text

from app.batch import run_step
from app.batch.pacer import Pacer
from tests.batch.test_steering import STEERED, _decisions, _finished, _wait_for
from tests.batch.toy_copy import ToyCopy
from tests.batch.toy_copy.fixtures import copied_exactly, options
from tests.support.traffic import application, watcher


def test_alone_the_run_is_not_held_back(toy):
    # Nothing else on the database (the fixture's pooled session has been idle for a window by
    # the time the baseline is taken): no limit from the first decision on, and no cut.
    time.sleep(1.5)
    result = run_step(toy, ToyCopy(sleep_ms_per_row=3), "upgrade", options(**STEERED))
    assert result.rows_done == 1000
    copied_exactly(toy)
    actions = [d["action"] for d in _decisions(toy)]
    assert actions[:2] == ["start", "alone"], actions
    assert not {"cut", "ease", "client"} & set(actions), actions
    with toy.connect() as conn:
        row = conn.execute(text("SELECT state, reason FROM orgmig_steer")).mappings().one()
        sizes = list(conn.execute(text("SELECT rows_read FROM orgmig_batch ORDER BY start_key")).scalars())
    assert row["state"] == "done" and row["reason"].startswith("alone: no other client of the database")
    # alone, the batches grew past the configured size (app.batch.crew.AloneSize)
    assert sizes[0] == STEERED["batch_size"] and max(sizes) > 2 * STEERED["batch_size"], sizes


def alone_then_a_client(toy, while_there=lambda watch: None) -> tuple[threading.Thread, dict]:
    """The toy run started alone; once it says so an application comes, stays until the fresh
    baseline is measured and `while_there(watch)` returns, then leaves. The run's thread (joined)
    and its result."""
    time.sleep(1.5)  # the fixture's own session idle for a window
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(
        r=run_step(toy, ToyCopy(sleep_ms_per_row=8), "upgrade", options(**STEERED))))
    with watcher(toy) as watch:
        worker.start()
        try:
            _wait_for(watch, "SELECT count(*) FROM orgmig_steer_decision WHERE action = 'alone'")
            with application(toy):
                _wait_for(watch, "SELECT count(*) FROM orgmig_steer_decision WHERE action = 'baseline'")
                while_there(watch)
            # the client gone: alone again after a window without it
        finally:
            worker.join(180)
    return worker, result


def test_a_client_arriving_drops_the_run_to_a_quarter_and_a_fresh_baseline(toy):
    worker, result = alone_then_a_client(toy)
    decisions = _finished(toy, worker, result)
    actions = [d["action"] for d in decisions]
    assert actions[:2] == ["start", "alone"], actions
    client = next(d for d in decisions if d["action"] == "client")
    assert client["reason"].startswith("a client of the database arrived (pid ")
    assert "25% of the " in client["reason"] and "the run wrote alone, and a fresh baseline" in client["reason"]
    fresh = next(d for d in decisions if d["action"] == "baseline")
    assert fresh["id"] > client["id"] and fresh["reason"].startswith("baseline measured afresh (a client arrived): ")
    assert "alone" in actions[actions.index("baseline"):], actions  # no limit again once it left


def test_while_the_allowance_keeps_one_worker_busy_batches_run_one_at_a_time(toy, monkeypatch):
    # Three workers beside an application: the allowance starts at a quarter of what they wrote
    # unpaced, under one worker's rate, so their batches no longer overlap (their WAL would come
    # in bursts) until raises make room for more.
    running, seen, lock = [0], [], threading.Lock()
    original = Pacer.batch

    @contextlib.contextmanager
    def batch(self, conn):
        with original(self, conn):
            with lock:
                running[0] += 1
                seen.append((self.controller is not None, self._concurrency(), running[0]))
            try:
                yield
            finally:
                with lock:
                    running[0] -= 1

    monkeypatch.setattr(Pacer, "batch", batch)
    with application(toy):
        result = run_step(toy, ToyCopy(sleep_ms_per_row=3), "upgrade", options(**{**STEERED, "workers": 3}))
    assert result.rows_done == 1000
    copied_exactly(toy)
    one_at_a_time = [n for steered, allowed, n in seen if steered and allowed == 1]
    assert one_at_a_time and max(one_at_a_time) == 1, seen


def test_while_the_allowance_is_low_a_batch_writes_at_most_a_second_of_it(toy, monkeypatch):
    # Beside an application the allowance starts at a quarter of what the first five batches
    # wrote unpaced: at 3 ms a row about 80 rows' worth of WAL a second, under the 100 rows a
    # batch is set to take; the batches claimed after that are cut to a second of the allowance,
    # so the run's WAL comes in small pieces instead of one batch's burst. (The toy's 1,000 rows
    # are 10 rounds of such batches: steered here although a run that short is not by default.)
    monkeypatch.setattr("app.batch.pacer.ROUNDS_TO_STEER", 2)
    with application(toy):
        result = run_step(toy, ToyCopy(sleep_ms_per_row=3), "upgrade", options(**{**STEERED, "batch_size": 100}))
    assert result.rows_done == 1000
    copied_exactly(toy)
    with toy.connect() as conn:
        sizes = conn.execute(text("SELECT rows_read FROM orgmig_batch ORDER BY start_key")).scalars().all()
    assert sizes[:5] == [100] * 5, sizes  # unpaced: the size asked for
    assert 10 <= min(sizes[5:]) < 100, sizes
