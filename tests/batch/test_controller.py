"""The steering law alone (app.batch.controller): a clock the test moves, readings it makes up."""

from __future__ import annotations

from app.batch.controller import Bucket, Controller, Law, Reading

LAW = Law.paced_by(window_s=5.0, target=2.0)  # changes 5 s apart, eases 10 s, memory 180 s


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def controller(allowance: float = 1_000_000, enabled: bool = True) -> tuple[Controller, Clock]:
    clock = Clock()
    return Controller(LAW, clock, allowance, floor=10_000, enabled=enabled), clock


def test_a_breach_halves_the_allowance_and_the_next_cut_waits_a_window():
    c, clock = controller()
    d = c.decide(Reading(3.1), used=1_000_000)
    assert (d.action, c.limit()) == ("cut", 500_000)
    assert "breach: signal 3.1x its baseline, over 2x" in d.reason
    clock.now += 2  # the window still holds the samples from before the cut
    assert c.decide(Reading(3.1), used=500_000).action == "hold"
    assert c.limit() == 500_000
    clock.now += 3
    assert c.decide(Reading(2.5), used=500_000).action == "cut"
    assert c.limit() == 250_000
    clock.now += 5  # a run writing less than its allowance: halved from what it wrote
    d = c.decide(Reading(2.5), used=100_000)
    assert c.limit() == 50_000 and "0.10 MB/s remembered as a rate that hurt" in d.reason
    for _ in range(20):  # never under the floor
        clock.now += 5
        c.decide(Reading(9.0), used=c.limit())
    assert c.limit() == 10_000


def test_a_near_breach_eases_by_a_fifth_at_most_every_two_windows():
    c, clock = controller()
    assert c.decide(Reading(1.6), used=1_000_000).action == "ease"
    assert c.limit() == 800_000
    clock.now += 6
    assert c.decide(Reading(1.6), used=800_000).action == "hold"
    clock.now += 5
    assert c.decide(Reading(1.6), used=800_000).action == "ease"
    assert c.limit() == 640_000
    clock.now += 20
    waits = "60% of the other active backends wait on the WAL flush (baseline 10%)"
    d = c.decide(Reading(1.0, wal_waits=waits), used=640_000)
    assert (d.action, d.reason) == ("ease", waits)


def test_recovery_raises_only_while_the_allowance_is_used():
    c, clock = controller()
    clock.now += 10
    d = c.decide(Reading(1.0), used=500_000)  # the run is slower than its allowance
    assert d.action == "hold" and "only 50% of the allowance used" in d.reason
    assert c.limit() == 1_000_000
    d = c.decide(Reading(1.0), used=950_000)
    assert d.action == "raise" and c.limit() == 1_250_000
    clock.now += 1
    assert c.decide(Reading(1.0), used=1_250_000).action == "hold"  # one window between changes
    clock.now += 5
    assert c.decide(Reading(1.0), used=1_250_000).action == "raise"
    clock.now += 5
    d = c.decide(Reading(1.2, hold="autovacuum on toy_b"), used=2_000_000)
    assert (d.action, d.reason) == ("hold", "autovacuum on toy_b")
    clock.now += 5
    assert c.decide(Reading(1.4), used=2_000_000).action == "hold"  # not calm: between 1.3 and 1.5


def test_a_rate_that_hurt_caps_raises_at_the_midpoint_until_it_is_forgotten():
    c, clock = controller(allowance=1_000_000)
    c.decide(Reading(2.5), used=1_000_000)  # 1 MB/s hurt: cut to 500 kB/s
    assert c.limit() == 500_000
    clock.now += 5
    c.decide(Reading(1.0), used=500_000)
    assert c.limit() == 625_000  # x1.25 is under the midpoint (750 kB/s)
    clock.now += 5
    c.decide(Reading(1.0), used=625_000)
    assert c.limit() == 781_250  # the midpoint toward 1 MB/s, not 1.25 x 625 kB/s
    for _ in range(8):
        clock.now += 5
        c.decide(Reading(1.0), used=c.limit())
    # closer to the bad rate, never past it; within 1% of the midpoint, no more raises
    assert 980_000 <= c.limit() < 1_000_000
    clock.now += 5
    d = c.decide(Reading(1.0), used=c.limit())
    assert d.action == "hold" and "1.00 MB/s hurt lately" in d.reason
    clock.now += 180  # three minutes on, the bad rate is forgotten
    assert c.decide(Reading(1.0), used=c.limit()).action == "raise"
    assert c.limit() > 1_200_000


def test_off_the_controller_never_limits_and_the_bucket_never_waits():
    c, clock = controller(enabled=False)
    bucket = Bucket(clock)
    for ratio in (9.0, 9.0, 1.0):
        clock.now += 10
        assert c.decide(Reading(ratio), used=5_000_000) is None
    assert c.limit() is None
    assert bucket.charge(50_000_000, c.limit()) == clock.now


def test_the_bucket_spaces_batches_at_the_allowance_and_rescales_what_is_owed():
    clock = Clock()
    bucket = Bucket(clock, burst_s=0.5)
    assert bucket.charge(100_000, 100_000) == clock.now + 0.5  # 1 s of WAL, half a second of credit
    assert bucket.charge(100_000, 100_000) == clock.now + 1.5
    bucket.rescale(100_000, 50_000)  # halved: what is still owed takes twice as long
    assert bucket.charge(0, 50_000) == clock.now + 3.0


def test_no_decision_without_a_signal():
    c, _ = controller()
    assert c.decide(Reading(None), used=1_000_000) is None
    assert c.limit() == 1_000_000


def test_alone_there_is_no_limit_and_a_client_arriving_drops_it_to_a_quarter():
    c, clock = controller()
    assert c.decide(Reading(None, alone=None), used=1_000_000) is None  # too few samples: as it was
    assert c.limit() == 1_000_000
    d = c.decide(Reading(None, alone=True), used=1_000_000)
    assert d.action == "alone" and c.limit() is None and "no limit" in d.reason
    clock.now += 60  # alone, a breach of the signal is nobody's pain: no decision
    assert c.decide(Reading(9.0, alone=True), used=8_000_000) is None
    assert c.limit() is None
    d = c.decide(Reading(1.0, alone=False, company="pid 42 (app)"), used=8_000_000)
    assert (d.action, c.limit()) == ("client", 2_000_000)
    assert d.reason.startswith("a client of the database arrived (pid 42 (app)): 25% of the 8.00 MB/s")
    assert c.decide(Reading(None, alone=False, company="pid 42 (app)"), used=2_000_000) is None
    clock.now += 2  # the law again; the change just made has to show before the next one
    assert c.decide(Reading(3.0, alone=False), used=2_000_000).action == "hold"
    clock.now += 5
    assert c.decide(Reading(3.0, alone=False), used=2_000_000).action == "cut"
    assert c.limit() == 1_000_000


def test_a_breach_that_outlasts_three_cuts_asks_for_a_fresh_baseline_and_forgets_what_hurt():
    c, clock = controller()
    for expected in (False, False, True):
        assert c.decide(Reading(2.5), used=c.limit()).action == "cut"
        assert c.stuck() is expected
        clock.now += 5
    assert c.limit() == 125_000 and c.lowest_bad() == 250_000
    c.rebased()  # the pacer measured the baseline afresh: judged against it, nothing hurt yet
    assert not c.stuck() and c.lowest_bad() is None
    d = c.decide(Reading(0.5), used=125_000)
    assert (d.action, c.limit()) == ("raise", 156_250)  # x1.25, no midpoint toward an old bad rate
    assert c.decide(Reading(2.5), used=156_250) is not None and not c.stuck()  # a raise reset the count


def test_a_breach_over_a_window_the_run_wrote_nothing_in_is_not_its_doing():
    c, clock = controller()
    d = c.decide(Reading(5.4), used=0)
    assert (d.action, c.limit()) == ("hold", 1_000_000) and "the run wrote nothing over the window" in d.reason
    assert c.lowest_bad() is None and not c.stuck()
    clock.now += 5
    assert c.decide(Reading(5.4), used=200_000).action == "cut"  # with its WAL in the window: a cut
