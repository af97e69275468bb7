"""Throttle and adaptive batch size, with the toy step."""

from __future__ import annotations

import time
from types import SimpleNamespace

from sqlalchemy import text

from app.batch import run_step
from app.batch.crew import ALONE_BAND, AloneSize, BatchSize, Crew
from app.batch.ledger import Run
from app.progress import RowProgress
from tests.batch.toy_copy import ROWS, ToyCopy
from tests.batch.toy_copy.fixtures import batches_cover_the_keys_once, copied_exactly, options


def test_max_rows_per_second_bounds_the_rate(toy):
    t0 = time.monotonic()
    result = run_step(toy, ToyCopy(), "upgrade", options(max_rows_per_second=400, workers=2))
    seconds = time.monotonic() - t0
    assert seconds >= ROWS / 400 * 0.9  # 1,000 rows at 400 a second: 2.5 s at least
    assert result.rows_done == ROWS
    copied_exactly(toy)


def test_the_batch_size_adapts_to_the_target_duration(toy):
    # 2 ms a row: 50-row batches take 100 ms; aiming at 30 ms the size settles near 15 rows.
    run_step(toy, ToyCopy(sleep_ms_per_row=2), "upgrade", options(batch_size=50, target_batch_ms=30))
    copied_exactly(toy)
    batches_cover_the_keys_once(toy)
    with toy.connect() as conn:
        sizes = list(conn.execute(text(
            "SELECT rows_read FROM orgmig_batch WHERE status = 'succeeded' ORDER BY start_key")).scalars())
        recorded = conn.execute(text("SELECT batch_size FROM orgmig_run")).scalar_one()
    assert sizes[0] == 50
    assert all(8 <= n <= 30 for n in sizes[3:-1]), sizes  # the last one takes what is left
    assert 8 <= recorded <= 30


def test_batch_size_grows_and_shrinks_by_at_most_twice():
    size = BatchSize(100, target_ms=1000, lowest=10, highest=1000)
    size.observe(100, 10)  # 0.1 ms a row: 10,000 rows would take the target; at most double
    assert size.next() == 200
    for _ in range(10):
        size.observe(size.next(), size.next() // 10)
    assert size.next() == 1000  # the upper bound
    size.observe(1000, 100_000)  # suddenly 100 ms a row: at most halve
    assert size.next() == 500
    fixed = BatchSize(100, target_ms=0)
    fixed.observe(100, 10_000)
    assert fixed.next() == 100


def test_alone_the_size_grows_toward_the_band_and_leaves_the_workers_an_even_end():
    size = AloneSize(500, target_ms=1000)
    for _ in range(10):  # 0.1 ms a row: 10,000 rows take the target; at most double each time
        n = size.next(10**7, 3)
        size.observe(n, n // 10)
    assert ALONE_BAND[0] * 10_000 <= size.next(10**7, 3) <= ALONE_BAND[1] * 10_000
    assert size.next(24_000, 3) == 4_000  # half a worker's share of what is left
    assert size.next(2_000, 3) == 500  # never under the configured size, but at the very end
    size.observe(size.size, size.size * 10)  # suddenly 10 ms a row: down toward the band
    assert size.size < 5_000


def test_a_client_arriving_brings_the_claims_back_to_the_configured_size():
    runner = SimpleNamespace(opts=options(batch_size=100, steer=True, steer_probe_ms=200), step=ToyCopy())
    run = Run(1, "toy_copy", "upgrade", 1, 10**6, 0, 10**6, 0, False, False)
    crew = Crew(runner, run, RowProgress("toy", 10**6, terminal=False))
    crew.workers = 2
    crew.pacer.active, crew.pacer._alone = True, True
    for _ in range(5):
        crew.alone_size.observe(crew.claim_size(), 10)
    assert crew.claim_size() > 1_000
    crew.pacer._alone = False  # (before the controller starts; after, the controller's `alone`)
    assert crew.claim_size() == 100


class BigBatches(ToyCopy):
    """A toy step whose batches cost much per batch: it asks for four times the configured size."""

    def batch_rows(self, state, configured: int) -> int:
        return 4 * configured


def test_a_step_may_ask_for_bigger_batches_and_the_workers_still_finish_together(toy):
    run_step(toy, BigBatches(), "upgrade", options(batch_size=50, workers=2))
    copied_exactly(toy)
    batches_cover_the_keys_once(toy)
    with toy.connect() as conn:
        sizes = list(conn.execute(text(
            "SELECT rows_read FROM orgmig_batch WHERE status = 'succeeded' ORDER BY start_key")).scalars())
    # 200 rows a claim while a claim leaves each worker twice as much; then half a worker's
    # share of what is left, never under the configured 50 but at the very end
    assert sizes[:2] == [200, 200], sizes
    assert all(n >= 50 for n in sizes[:-1]) and sizes[-1] <= 50, sizes
    assert len(sizes) < 1_000 // 50, sizes


def test_an_operator_batch_knob_keeps_the_configured_size(toy):
    run_step(toy, BigBatches(), "upgrade", options(batch_size=50, workers=2, pause_ms=1))
    with toy.connect() as conn:
        sizes = set(conn.execute(text("SELECT rows_read FROM orgmig_batch WHERE status = 'succeeded'")).scalars())
    assert sizes == {50}, sizes
