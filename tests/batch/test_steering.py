"""Steering on a real PostgreSQL, with the toy step: beside an application, the run backs off
when a synchronous commit turns slow and raises its allowance again once it is fast; off,
nothing holds it back; a small run is not steered; `orgmig status` shows it. Assertions are on
the decisions the run recorded, not on rates or durations (a busy host changes those). Alone on
the database: tests/batch/test_alone.py."""

from __future__ import annotations

import json
import threading
import time

import pytest
from sqlalchemy import text

from app.batch import run_step
from app.batch.pacer import Pacer
from app.batch.runner import Runner
from app.cli.status import steering_line
from app.errors import ConfigError
from app.ops import migrations, status
from tests.batch.toy_copy import ToyCopy
from tests.batch.toy_copy.fixtures import batches_cover_the_keys_once, copied_exactly, limited_role, options
from tests.support.db import scalar
from tests.support.migrate import orgmig
from tests.support.traffic import application
from tests.support.waiting import wait_until

# 100 batches of 10 rows, about 20-30 ms each: a run long enough to steer. A probe every 50 ms makes
# the signal window 1.25 s. The breach threshold is set far above what a busy host's commits
# wander through (20x their baseline): only the injected stall is a breach.
STEERED = dict(batch_size=10, workers=1, steer_probe_ms=50, max_app_latency_ratio=20.0)


def _decisions(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT id, at, action, allowance_bytes_per_s, reason FROM orgmig_steer_decision"
            " WHERE action <> 'reading' ORDER BY id")).mappings()]


def _finished(toy, worker: threading.Thread, result: dict) -> list[dict]:
    """The run in `worker` finished and copied every row once; its decisions."""
    assert not worker.is_alive()
    assert result["r"].rows_done == 1000
    copied_exactly(toy)
    batches_cover_the_keys_once(toy)
    return _decisions(toy)


def _wait_for(engine, sql: str, seconds: float = 60) -> None:
    wait_until(lambda: scalar(engine, sql), seconds, what=sql)


def test_the_run_backs_off_while_commits_stall_and_raises_again_after(toy):
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(
        r=run_step(toy, ToyCopy(sleep_ms_per_row=3), "upgrade", options(**STEERED))))
    with application(toy):  # an application beside the run all along: it is never alone
        worker.start()
        try:
            _wait_for(toy, "SELECT count(*) FROM orgmig_steer_decision WHERE action = 'start'")
            # 25 batches in: the WAL per row the pacer charges has settled (the least of 20 batches)
            _wait_for(toy, "SELECT count(*) >= 25 FROM orgmig_batch WHERE status = 'succeeded'")
            # Another session holds the probe's row for 1.5 s: the probe's commit waits that long,
            # as an application's commits would behind a stalled WAL flush.
            with toy.connect() as conn, conn.begin():
                conn.execute(text("SELECT 1 FROM orgmig_steer FOR UPDATE"))
                stalled_at = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
                time.sleep(1.5)
        finally:
            worker.join(120)
    decisions = _finished(toy, worker, result)
    start = decisions[0]
    assert start["action"] == "start" and "of the rate measured unpaced" in start["reason"]
    cuts = [d for d in decisions if d["action"] == "cut" and d["at"] >= stalled_at]
    assert cuts, decisions
    cut = cuts[0]
    assert cut["reason"].startswith("breach: signal") and "over 20x" in cut["reason"]
    before = [d for d in decisions if d["id"] < cut["id"]][-1]
    assert cut["allowance_bytes_per_s"] <= before["allowance_bytes_per_s"] // 2 + 1  # halved
    raises = [d for d in decisions if d["action"] == "raise" and d["id"] > cut["id"]]
    assert raises, decisions
    assert raises[0]["allowance_bytes_per_s"] > cut["allowance_bytes_per_s"]
    assert "calm: signal" in raises[0]["reason"]
    with toy.connect() as conn:
        row = conn.execute(text("SELECT state, baseline_ms, probes FROM orgmig_steer")).mappings().one()
    assert row["state"] == "done" and row["baseline_ms"] > 0 and row["probes"] > 15


def test_steering_off_holds_nothing_back_and_says_so(toy):
    run_step(toy, ToyCopy(), "upgrade", options(**{**STEERED, "steer": False}))
    copied_exactly(toy)
    assert _decisions(toy) == []
    with toy.connect() as conn:
        row = conn.execute(text("SELECT state, reason, probes, allowance_bytes_per_s FROM orgmig_steer")).one()
    assert row.state == "off" and "ORGMIG_STEER=off" in row.reason
    assert row.probes == 0 and row.allowance_bytes_per_s is None


def test_a_run_of_few_batches_is_not_steered(toy):
    run_step(toy, ToyCopy(), "upgrade", options(batch_size=50, workers=1))  # 20 batches
    copied_exactly(toy)
    assert _decisions(toy) == []
    assert scalar(toy, "SELECT state FROM orgmig_steer") == "not steered"


def test_no_probe_takes_a_connection_the_workers_were_counted_on(toy):
    # The role may open 3 connections: the run's own, and 2 workers. A probe beside them would
    # leave a worker without a connection; the run goes unsteered instead, and says so.
    with limited_role(toy, "orgmig_steer", 3) as limited:
        result = run_step(limited, ToyCopy(), "upgrade", options(**{**STEERED, "workers": 8}))
    assert result.rows_done == 1000 and result.retries == 0
    copied_exactly(toy)
    assert scalar(toy, "SELECT reason FROM orgmig_steer") == \
        "no connection to spare for the health probe beside the 2 workers: the run is not steered"


def test_status_shows_the_allowance_the_signal_and_the_last_reason(toy):
    worker = threading.Thread(target=lambda: run_step(
        toy, ToyCopy(sleep_ms_per_row=6), "upgrade", options(**STEERED)))
    with application(toy):
        worker.start()
        try:
            _wait_for(toy, "SELECT count(*) FROM orgmig_steer WHERE state = 'steering' AND signal_ms IS NOT NULL"
                           " AND allowance_bytes_per_s IS NOT NULL")
            shown = json.loads(orgmig(toy.url, "status", "--json").stdout)
            table = orgmig(toy.url, "status").stdout
        finally:
            worker.join(120)
    steering = shown["runs"][0]["steering"]
    assert steering["state"] == "steering"
    assert steering["allowance_bytes_per_s"] > 0 and steering["baseline_ms"] > 0 and steering["reason"]
    assert steering["last_change"]["action"] in ("start", "raise", "ease", "cut")  # a change, not a reading
    assert steering["last_change"]["reason"] and steering["decisions"] >= 1
    assert "steering: steering; allowance " in " ".join(table.split())
    assert "against" in table and "before the run" in table
    line = steering_line(status.collect(toy).runs[0]["steering"])
    assert line.startswith("steering: done")


def test_alembic_x_arguments_set_the_steering(toy):
    # The data revision 0004 (no legacy rows here) with `-x steer=off`, then a bad ratio refused
    # in one line before anything runs.
    migrations.upgrade(migrations.alembic_config(toy.url, x_args={"steer": "off"}), "0004")
    assert scalar(toy, "SELECT state FROM orgmig_steer") == "off"
    with pytest.raises(ConfigError, match="-x max_app_latency_ratio must be at least 1.1, got '0.5'"):
        migrations.downgrade(migrations.alembic_config(toy.url, x_args={"max_app_latency_ratio": "0.5"}), "0003")


def test_a_long_run_measures_its_baseline_again_with_nothing_in_flight(toy):
    # The pacer as the workers use it, on the toy run, with a baseline refresh every 2 windows
    # (1 s at a 20 ms probe) instead of every 10 minutes.
    runner = Runner(toy, ToyCopy(), "upgrade", options(**{**STEERED, "steer_probe_ms": 20}))
    with toy.connect() as conn, conn.begin():
        run = runner.ledger.open(conn, 10)
    with application(toy):  # beside an application: the baseline is kept fresh
        pacer = Pacer(runner, run, refresh_windows=2)
        pacer.start(workers=1)
        conn = runner.connect()
        overlapped = []
        try:
            deadline = time.monotonic() + 60
            key = 0
            while not scalar(toy, "SELECT count(*) FROM orgmig_steer_decision WHERE action = 'baseline'"):
                assert time.monotonic() < deadline
                with conn.begin(), pacer.batch(conn):
                    if pacer.state == "refreshing baseline":
                        overlapped.append(key)
                    conn.execute(text("INSERT INTO toy_b SELECT g, 'x' FROM generate_series(:k, :k + 9) g"), {"k": key})
                pacer.after(10)
                key += 10
        finally:
            conn.close()
            pacer.close()
    actions = [d["action"] for d in _decisions(toy)]
    assert actions[0] == "start" and "baseline" in actions
    reason = scalar(toy, "SELECT reason FROM orgmig_steer_decision WHERE action = 'baseline' ORDER BY id LIMIT 1")
    assert reason.startswith("baseline measured again: ") and " ms -> " in reason
    assert overlapped == []  # no batch began while the baseline was measured
    assert scalar(toy, "SELECT state FROM orgmig_steer") == "done"
