"""`FixedWindowLimiter` and `TokenBucket`: the two rate-limit models (Okta, Auth0)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateState:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds


class FixedWindowLimiter:
    """`limit` requests per window of `window_seconds`. A window opens with the first request
    after the previous one closed; `reset` is when the current window closes (epoch seconds,
    rounded up)."""

    def __init__(self, limit: int, window_seconds: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.window = float(window_seconds)
        self.clock = clock
        self._lock = threading.Lock()
        self._start = -math.inf
        self._count = 0

    def _roll(self, now: float) -> float:
        if now >= self._start + self.window:
            self._start = now
            self._count = 0
        return self._start + self.window

    def hit(self) -> RateState:
        with self._lock:
            end = self._roll(self.clock())
            reset = int(math.ceil(end))
            if self._count >= self.limit:
                return RateState(False, self.limit, 0, reset)
            self._count += 1
            return RateState(True, self.limit, self.limit - self._count, reset)

    def peek(self) -> RateState:
        with self._lock:
            now = self.clock()
            if now >= self._start + self.window:
                return RateState(True, self.limit, self.limit, int(math.ceil(now + self.window)))
            return RateState(True, self.limit, max(0, self.limit - self._count),
                             int(math.ceil(self._start + self.window)))

    def exhaust(self) -> RateState:
        """Use up the rest of the current window (a storm of requests from elsewhere)."""
        with self._lock:
            end = self._roll(self.clock())
            self._count = self.limit
            return RateState(False, self.limit, 0, int(math.ceil(end)))

    def seconds_until_reset(self) -> float:
        with self._lock:
            return max(0.0, self._start + self.window - self.clock())


class TokenBucket:
    """A bucket of `capacity` tokens refilled at `refill_per_second`; each request takes one.
    `reset` is when the bucket will be full again (after a 429: when one token is back)."""

    def __init__(self, capacity: int, refill_per_second: float, clock: Callable[[], float] = time.time) -> None:
        self.capacity = capacity
        self.rate = float(refill_per_second)
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens = float(capacity)
        self._at = clock()

    def _refill(self, now: float) -> None:
        self._tokens = min(float(self.capacity), self._tokens + (now - self._at) * self.rate)
        self._at = now

    def _state(self, allowed: bool, now: float) -> RateState:
        if allowed:
            missing = self.capacity - self._tokens
            reset = now + (missing / self.rate if self.rate > 0 else 0.0)
        else:
            reset = now + ((1.0 - self._tokens) / self.rate if self.rate > 0 else 3600.0)
        return RateState(allowed, self.capacity, max(0, int(self._tokens)), int(math.ceil(reset)))

    def take(self) -> RateState:
        with self._lock:
            now = self.clock()
            self._refill(now)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return self._state(True, now)
            return self._state(False, now)

    def peek(self) -> RateState:
        with self._lock:
            now = self.clock()
            self._refill(now)
            return self._state(True, now)

    def exhaust(self) -> RateState:
        with self._lock:
            now = self.clock()
            self._refill(now)
            self._tokens = 0.0
            return self._state(False, now)
