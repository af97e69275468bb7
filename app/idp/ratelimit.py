"""Header-driven rate limiting, one state per bucket.

Providers report each bucket's `limit`, `remaining` and `reset` (epoch seconds) on every answer
(Okta `X-Rate-Limit-*`, Auth0 `x-ratelimit-*`). The limiter keeps, per bucket, the newest window's
numbers and the requests in flight, and:
- sends one request to a bucket it has not heard from yet, the rest waiting for its answer;
- goes at full speed while more than `reserve_fraction` of the window is left;
- in the last part of the window spaces requests at the pace the bucket sustains (what was used
  of it over the time until its reset), so the limit is approached but not hit;
- when nothing is left, waits for the reset plus a little jitter;
- after a 429, blocks the bucket until its reset (or `Retry-After`) plus jitter.

`reset` comes in whole seconds, rounded up: for short windows waiting for it wastes up to a
second per window. So the limiter also learns a fixed window's length (the answer that opened a
window says `remaining = limit - 1`; its reset minus its send time, rounded down, is the length in
whole seconds and never shorter than the true one) and, when a window is used up, sends one probe
when that window must have ended. Should a probe be refused (a bucket that is not a fixed window
of whole seconds), the bucket goes back to waiting for the reset it was told.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from dataclasses import dataclass, field

POLL = 0.02  # seconds between looks while waiting for an answer to describe a new window


@dataclass
class BucketState:
    limit: int | None = None
    remaining: int | None = None
    reset_epoch: float | None = None  # the window's reset as the provider said it
    reset_at: float | None = None  # the same, on the monotonic clock
    stale_before: float = -1.0  # answers about windows resetting at or before this are old news
    inflight: int = 0
    next_slot: float = 0.0
    blocked_until: float = 0.0
    heard: bool = False
    opened_at: float | None = None  # when the answer that opened the current window arrived
    window_len: int | None = None  # learned length of a fixed window, whole seconds
    probing: bool = False
    probe_ok: bool = True
    probe_failures: int = 0


@dataclass
class Wait:
    bucket: str
    until: float


@dataclass
class RateLimiter:
    reserve_fraction: float = 0.1
    jitter: tuple[float, float] = (0.01, 0.06)
    buckets: dict[str, BucketState] = field(default_factory=dict)
    waits: dict[int, Wait] = field(default_factory=dict)

    def state(self, bucket: str) -> BucketState:
        return self.buckets.setdefault(bucket, BucketState())

    def current_wait(self) -> tuple[str, float] | None:
        """The longest wait in progress: (bucket, seconds left), for progress displays."""
        now = time.monotonic()
        longest = max(self.waits.values(), key=lambda w: w.until, default=None)
        if longest is None or longest.until <= now:
            return None
        return longest.bucket, longest.until - now

    def _delay(self, st: BucketState, now: float) -> float:
        if st.blocked_until > now:
            return st.blocked_until - now
        if not st.heard:
            # Nothing known yet: one request finds out, the others wait for its answer.
            return POLL if st.inflight > 0 else 0.0
        if st.limit is None or st.remaining is None:
            return 0.0  # the provider sends no rate-limit headers for this bucket
        if st.reset_at is not None and st.reset_at <= now:
            # The window has reset: the whole limit is there again.
            st.stale_before = st.reset_epoch if st.reset_epoch is not None else st.stale_before
            st.remaining, st.reset_at, st.next_slot = st.limit, None, 0.0
        left = st.remaining - st.inflight
        if left <= 0:
            if st.reset_at is None:
                return POLL  # an answer will tell how the new window stands
            early = self._true_end(st)
            if early is not None and early < st.reset_at:
                if st.probing:
                    return POLL
                if now >= early:
                    st.probing = True
                    return 0.0
                return early - now
            return st.reset_at - now + random.uniform(*self.jitter)
        if st.reset_at is None or left > self._reserve(st):
            return 0.0
        return max(0.0, st.next_slot - now)

    @staticmethod
    def _true_end(st: BucketState) -> float | None:
        if not st.probe_ok or st.window_len is None or st.opened_at is None:
            return None
        return st.opened_at + st.window_len + 0.002

    def _reserve(self, st: BucketState) -> int:
        return max(1, math.ceil((st.limit or 0) * self.reserve_fraction))

    async def acquire(self, bucket: str) -> None:
        st = self.state(bucket)
        key = id(asyncio.current_task())
        try:
            while True:
                now = time.monotonic()
                delay = self._delay(st, now)
                if delay <= 0:
                    break
                self.waits[key] = Wait(bucket, now + delay)
                await asyncio.sleep(delay)
            self._reserve_slot(st, time.monotonic())
            st.inflight += 1
        finally:
            self.waits.pop(key, None)

    def _reserve_slot(self, st: BucketState, now: float) -> None:
        if st.remaining is None or st.limit is None or st.reset_at is None:
            return
        left = st.remaining - st.inflight
        if 0 < left <= self._reserve(st):
            used = max(1, st.limit - left)
            st.next_slot = max(st.next_slot, now) + max(0.0, st.reset_at - now) / used

    def release(self, bucket: str) -> None:
        st = self.state(bucket)
        st.inflight = max(0, st.inflight - 1)

    def update(self, bucket: str, headers, prefix: str, sent_at: float | None = None) -> None:
        """Read `<prefix>-limit/-remaining/-reset` from an answer to a request sent at `sent_at`
        (monotonic clock)."""
        st = self.state(bucket)
        st.heard = True
        limit = header_int(headers, f"{prefix}-limit")
        remaining = header_int(headers, f"{prefix}-remaining")
        reset = _float(headers.get(f"{prefix}-reset"))
        if limit is None or remaining is None or reset is None or limit <= 0:
            return
        if reset <= st.stale_before or (st.reset_epoch is not None and reset < st.reset_epoch):
            return  # an answer from an earlier window, overtaken by newer ones
        now = time.monotonic()
        server_now = _server_now(headers)
        if st.reset_epoch == reset and st.remaining is not None and st.reset_at is not None:
            # Same window, answers out of order: the smallest count is the newest.
            st.remaining = min(st.remaining, remaining)
        else:
            st.remaining = remaining
            st.probing = False
        if st.reset_epoch != reset:
            # The first answer about a new window: the window began before it arrived.
            st.opened_at = now
        if remaining == limit - 1 and sent_at is not None:
            # This request opened its window, so the window began after it was sent.
            length = math.floor(reset - (server_now - (now - sent_at)))
            st.window_len = length if length >= 1 else None
        st.reset_epoch = reset
        st.reset_at = now + max(0.0, reset - server_now)
        st.limit = limit

    def block(self, bucket: str, headers, prefix: str, fallback: float) -> float:
        """After a 429: block the bucket until its reset plus jitter; return the wait in seconds."""
        st = self.state(bucket)
        st.heard = True
        now_server = _server_now(headers)
        wait = None
        retry_after = headers.get("retry-after")
        if retry_after is not None:
            wait = _float(retry_after)
            if wait is None:
                try:
                    wait = email.utils.parsedate_to_datetime(retry_after).timestamp() - now_server
                except (TypeError, ValueError):
                    wait = None
        reset = _float(headers.get(f"{prefix}-reset"))
        if wait is None and reset is not None:
            wait = reset - now_server
        if wait is None or wait < 0:
            wait = fallback
        wait = min(wait, 120.0) + random.uniform(*self.jitter)
        if st.probing:
            st.probing = False
            st.probe_failures += 1
            st.window_len = None
            if st.probe_failures >= 2:
                st.probe_ok = False  # not a fixed window of whole seconds: trust the reset it gives
        st.blocked_until = max(st.blocked_until, time.monotonic() + wait)
        if st.limit is not None:
            st.remaining = 0
            st.reset_at = st.blocked_until
            if reset is not None:
                st.reset_epoch = reset
        return wait


def _server_now(headers) -> float:
    """The server's clock from its `Date` header when it differs from ours by more than the
    header's one-second resolution; our own clock otherwise (finer-grained)."""
    local = time.time()
    date = headers.get("date")
    if date:
        try:
            server = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return local
        if abs(server - local) > 2.0:
            return server
    return local


def header_int(headers, name: str) -> int | None:
    """A header holding a whole number, or None when it is absent or not one."""
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
