"""The header-driven rate limiter on a virtual clock: no network, no real waiting.

The limiter reads the time through its module's `time` and waits through its module's
`asyncio.sleep`; the `clock` fixture replaces both for the limiter alone, so every wait it decides
on is recorded exactly and advances the clock by that much.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import types

import httpx
import pytest

from app.idp import ratelimit
from app.idp.ratelimit import POLL, RateLimiter

PREFIX = "x-rate-limit"
JITTER = RateLimiter().jitter


class Clock:
    """Monotonic and wall-clock time that move only when the limiter sleeps (or a test says)."""

    def __init__(self) -> None:
        self.mono = 1_000.0
        self.epoch = 1_700_000_000.25  # a quarter past a whole second, as a real clock would be
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.epoch

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.epoch += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)  # let other tasks run meanwhile, as a real wait would
        self.advance(seconds)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(ratelimit, "time", c)
    monkeypatch.setattr(ratelimit, "asyncio", types.SimpleNamespace(sleep=c.sleep, current_task=asyncio.current_task))
    return c


def answer(limit: int, remaining: int, reset: float, **extra: str) -> httpx.Headers:
    return httpx.Headers({f"{PREFIX}-limit": str(limit), f"{PREFIX}-remaining": str(remaining),
                          f"{PREFIX}-reset": str(reset), **extra})


async def request(limiter: RateLimiter, bucket: str = "users") -> None:
    """One request's turn: wait for the limiter, then give the slot back (the answer comes later)."""
    await limiter.acquire(bucket)
    limiter.release(bucket)


def run(coro):
    return asyncio.run(coro)


def test_the_first_request_to_a_bucket_goes_alone(clock):
    limiter = RateLimiter()

    async def scenario() -> None:
        await limiter.acquire("users")  # nothing known yet: it goes at once
        second = asyncio.create_task(request(limiter))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not second.done()  # waits for the first answer to describe the bucket
        limiter.update("users", answer(100, 99, clock.epoch + 60), PREFIX, sent_at=clock.mono)
        limiter.release("users")
        await second

    run(scenario())
    assert clock.slept and set(clock.slept) == {POLL}


def test_full_speed_while_more_than_the_reserve_is_left(clock):
    limiter = RateLimiter()
    limiter.update("users", answer(100, 50, clock.epoch + 10), PREFIX)

    async def scenario() -> None:
        for _ in range(30):
            await request(limiter)

    run(scenario())
    assert clock.slept == []


def test_a_bucket_without_rate_limit_headers_is_not_paced(clock):
    limiter = RateLimiter()
    limiter.update("users", httpx.Headers({}), PREFIX)

    async def scenario() -> None:
        for _ in range(10):
            await request(limiter)

    run(scenario())
    assert clock.slept == []


def test_the_last_part_of_the_window_is_spaced_at_the_pace_the_bucket_sustains(clock):
    # 100 a window, 10 left (the reserve: 10%), the window resets in 5 s: 90 were used, so the
    # next requests go 5 s / 90 apart, and the window is not used up before it resets.
    limiter = RateLimiter()
    reset = clock.epoch + 5
    limiter.update("users", answer(100, 10, reset), PREFIX)

    async def scenario() -> None:
        for left in range(10, 0, -1):
            await request(limiter)
            limiter.update("users", answer(100, left - 1, reset), PREFIX)

    run(scenario())
    assert len(clock.slept) == 9  # every request after the first waited its turn
    assert clock.slept[0] == pytest.approx(5 / 90, rel=0.01)
    assert all(0 < wait < 5 / 80 for wait in clock.slept)
    assert sum(clock.slept) < 5


def test_a_used_up_window_waits_for_the_reset_plus_jitter(clock):
    limiter = RateLimiter()
    limiter.update("users", answer(10, 0, clock.epoch + 3), PREFIX)

    run(request(limiter))

    assert 3 + JITTER[0] <= sum(clock.slept) <= 3 + JITTER[1]
    # The window reset: the whole limit is there again.
    clock.slept.clear()
    run(request(limiter))
    assert clock.slept == []


def test_a_429_blocks_the_bucket_until_its_reset_plus_jitter(clock):
    limiter = RateLimiter()
    limiter.update("users", answer(10, 4, clock.epoch + 30), PREFIX)

    wait = limiter.block("users", httpx.Headers({f"{PREFIX}-reset": str(clock.epoch + 2)}), PREFIX, fallback=1.0)

    assert 2 + JITTER[0] <= wait <= 2 + JITTER[1]
    run(request(limiter))
    assert sum(clock.slept) == pytest.approx(wait)
    # Another bucket is not held up.
    clock.slept.clear()
    run(request(limiter, "groups"))
    assert clock.slept == []


def test_retry_after_wins_over_the_reset_in_seconds_or_as_a_date(clock):
    limiter = RateLimiter()
    reset = {f"{PREFIX}-reset": str(clock.epoch + 2)}

    seconds = limiter.block("a", httpx.Headers({"retry-after": "4", **reset}), PREFIX, fallback=1.0)
    date = email.utils.formatdate(math.floor(clock.epoch) + 6, usegmt=True)
    dated = limiter.block("b", httpx.Headers({"retry-after": date, **reset}), PREFIX, fallback=1.0)
    nothing = limiter.block("c", httpx.Headers({}), PREFIX, fallback=1.0)

    assert 4 + JITTER[0] <= seconds <= 4 + JITTER[1]
    assert 5.75 + JITTER[0] <= dated <= 5.75 + JITTER[1]
    assert 1 + JITTER[0] <= nothing <= 1 + JITTER[1]


def test_the_reset_is_read_on_the_servers_clock_when_it_differs_from_ours(clock):
    limiter = RateLimiter()
    server_now = math.floor(clock.epoch) + 3600  # an hour ahead of us
    headers = httpx.Headers({f"{PREFIX}-reset": str(server_now + 2),
                             "date": email.utils.formatdate(server_now, usegmt=True)})

    wait = limiter.block("users", headers, PREFIX, fallback=1.0)

    assert 2 + JITTER[0] <= wait <= 2 + JITTER[1]


def open_window(limiter: RateLimiter, clock: Clock, limit: int, bucket: str = "users") -> float:
    """`limit` requests that use up a fixed one-second window opened by the first of them, as the
    provider reports it: `reset` is the window's end rounded up to a whole second."""
    sent_at, sent_epoch = clock.mono, clock.epoch
    reset = math.ceil(sent_epoch + 1)
    clock.advance(0.05)
    for remaining in range(limit - 1, -1, -1):
        limiter.update(bucket, answer(limit, remaining, reset), PREFIX, sent_at=sent_at)
    return reset


def test_a_fixed_windows_length_is_learned_and_probed_instead_of_the_rounded_up_reset(clock):
    limiter = RateLimiter()
    reset = open_window(limiter, clock, limit=3)
    state = limiter.state("users")
    assert state.window_len == 1
    told = reset - clock.epoch  # what waiting for the reset would cost: 1.75 s - 0.05 s

    async def scenario() -> None:
        await limiter.acquire("users")  # the probe, when the window must have ended
        assert state.probing
        waiting = asyncio.create_task(request(limiter))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not waiting.done()  # one probe at a time: the rest wait for its answer
        limiter.update("users", answer(3, 2, reset + 1), PREFIX, sent_at=clock.mono)
        limiter.release("users")
        await waiting

    run(scenario())
    assert not state.probing
    # The window is dated from the answer that opened it (0.05 s after the request: never too
    # early), so the probe goes 1.002 s after that answer instead of at the rounded-up reset.
    probe_wait = clock.slept[0]
    assert probe_wait == pytest.approx(1.002, abs=1e-6)
    assert probe_wait < told - 0.5


def test_a_bucket_whose_probes_are_refused_twice_goes_back_to_the_reset_it_is_told(clock):
    limiter = RateLimiter()
    state = limiter.state("users")
    for refusal in (1, 2):
        reset = open_window(limiter, clock, limit=3)
        assert state.window_len == 1 and state.probe_ok
        run(limiter.acquire("users"))
        assert state.probing
        limiter.release("users")
        limiter.block("users", httpx.Headers({f"{PREFIX}-reset": str(reset)}), PREFIX, fallback=1.0)
        assert not state.probing and state.window_len is None and state.probe_failures == refusal
        clock.advance(max(0.0, state.blocked_until - clock.mono) + 0.001)
    assert not state.probe_ok

    reset = open_window(limiter, clock, limit=3)
    clock.slept.clear()
    run(request(limiter))
    # No early probe any more: the wait is the reset as told, plus jitter.
    told = reset - (clock.epoch - sum(clock.slept))
    assert told + JITTER[0] <= sum(clock.slept) <= told + JITTER[1]


def test_current_wait_names_the_bucket_and_the_time_left(clock):
    limiter = RateLimiter()
    limiter.update("users", answer(10, 0, clock.epoch + 3), PREFIX)
    seen: list[tuple[str, float] | None] = []

    async def watch() -> None:  # runs while the request waits
        seen.append(limiter.current_wait())

    async def scenario() -> None:
        await asyncio.gather(request(limiter), watch())

    assert limiter.current_wait() is None
    run(scenario())
    [(bucket, left)] = seen
    assert bucket == "users" and 3 <= left <= 3 + JITTER[1]
    assert limiter.current_wait() is None
