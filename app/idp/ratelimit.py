"""Header-driven rate limiting, one state per bucket.

Providers report each bucket's `limit`, `remaining` and `reset` (epoch seconds) on every answer
(Okta `X-Rate-Limit-*`, Auth0 `x-ratelimit-*`). Requests go at full speed while plenty of the
window is left; in the last `reserve` part they are spaced at the pace the bucket sustains (what
was used of it over the time until its reset), so the limit is approached but not hit. When nothing is left, requests wait for
the reset plus a little jitter. A 429 blocks the bucket until its reset the same way.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from dataclasses import dataclass, field


@dataclass
class BucketState:
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # monotonic time of the window's reset
    inflight: int = 0
    next_slot: float = 0.0
    blocked_until: float = 0.0


@dataclass
class Wait:
    bucket: str
    until: float


@dataclass
class RateLimiter:
    reserve_fraction: float = 0.1
    jitter: tuple[float, float] = (0.05, 0.25)
    buckets: dict[str, BucketState] = field(default_factory=dict)
    waits: dict[int, Wait] = field(default_factory=dict)
    waited_seconds: float = 0.0

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
        if st.reset_at is not None and st.reset_at <= now:
            # The window has reset since the last answer: the full limit is available again.
            st.remaining, st.reset_at, st.next_slot = st.limit, None, 0.0
        if st.remaining is None or st.limit is None or st.reset_at is None:
            return 0.0
        left = st.remaining - st.inflight
        time_left = st.reset_at - now
        if left <= 0:
            return time_left + random.uniform(*self.jitter)
        reserve = max(1, math.ceil(st.limit * self.reserve_fraction))
        if left > reserve:
            return 0.0
        # Slow down: the last part of the window is spread over the time left (see _reserve_slot).
        return max(0.0, st.next_slot - now)

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
                self.waited_seconds += delay
            self._reserve_slot(st, time.monotonic())
            st.inflight += 1
        finally:
            self.waits.pop(key, None)

    def _reserve_slot(self, st: BucketState, now: float) -> None:
        if st.remaining is None or st.limit is None or st.reset_at is None:
            return
        left = st.remaining - st.inflight
        reserve = max(1, math.ceil(st.limit * self.reserve_fraction))
        if 0 < left <= reserve:
            # The pace that sustains the bucket: what was used of it, over the time until it is
            # whole again (a token bucket's refill rate; for a fixed window, faster than needed,
            # and the window's end is still waited for when nothing is left).
            used = max(1, st.limit - left)
            st.next_slot = max(st.next_slot, now) + max(0.0, st.reset_at - now) / used

    def release(self, bucket: str) -> None:
        st = self.state(bucket)
        st.inflight = max(0, st.inflight - 1)

    def update(self, bucket: str, headers, prefix: str) -> None:
        """Read `<prefix>-limit/-remaining/-reset` from an answer."""
        limit = _int(headers.get(f"{prefix}-limit"))
        remaining = _int(headers.get(f"{prefix}-remaining"))
        reset = _float(headers.get(f"{prefix}-reset"))
        if limit is None or remaining is None or reset is None or limit <= 0:
            return
        st = self.state(bucket)
        reset_at = time.monotonic() + max(0.0, reset - _server_now(headers))
        same_window = st.reset_at is not None and abs(reset_at - st.reset_at) < 1.5
        if same_window and st.remaining is not None:
            # Answers arrive out of order: within one window the smallest count is the newest.
            st.remaining = min(st.remaining, remaining)
            st.reset_at = max(st.reset_at, reset_at)
        else:
            st.remaining, st.reset_at = remaining, reset_at
        st.limit = limit

    def block(self, bucket: str, headers, prefix: str, fallback: float) -> float:
        """After a 429: block the bucket until its reset plus jitter; return the wait in seconds."""
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
        st = self.state(bucket)
        st.blocked_until = max(st.blocked_until, time.monotonic() + wait)
        st.remaining = 0
        st.reset_at = st.blocked_until
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


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
