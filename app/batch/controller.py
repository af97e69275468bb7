"""The steering law: how much WAL a second the run may write, decided from what the health signal
says (app.batch.health) and from how much of the allowance the run actually used. Pure logic
with an injected clock: no database, no threads, no sleeping.

An AIMD controller, as the tools that protect a live system do it (Vitess's rate module,
CockroachDB's elastic CPU share; docs/architecture.md, "Steering"):

- breach (the signal above `target` times its baseline): the allowance becomes half the rate
  the run wrote over the last window (or half the allowance, when the run used all of it), and
  that rate is remembered as one that hurt for `memory_s`;
- near breach (above `near` x target, or the application's backends piling up on the WAL
  flush): x0.8 the same way, at most once per `ease_cooldown_s`;
- calm (below `calm` x target), the allowance used to at least `used_share` and no guard
  holding: x1.25, but never past the midpoint toward the lowest rate that hurt lately;
- a breach or near breach over a window in which the run wrote nothing is not the run's doing
  (the host, another database, the application itself): it holds, and no rate is remembered;
- otherwise it holds, and says why.

Alone (no other client of the database over the last window: app.batch.health), there is no
application to protect: no limit, whatever the signal says, so a maintenance window runs at the
run's own pace. When a client arrives, the allowance becomes `joined_share` of the rate the run
wrote alone, and the pacer measures a fresh baseline (the one from before was of an empty
database) before the law above goes on.

After `cuts_to_rebase` cuts in a row with the breach still there, the pacer measures the baseline
afresh with the run's batches stopped: a signal that stays high while the run writes almost
nothing is the application's own load (its rate doubled, say), and judged against the quieter
baseline it would starve the run for good. The rates remembered as hurting are forgotten then.

Changes are at least `cooldown_s` apart (one signal window: the effect of the last change has to
be in the signal before the next one is decided on it). The allowance never falls below `floor`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

ALONE_REASON = "alone: no other client of the database over the last window; no limit while none comes"


@dataclass(frozen=True)
class Law:
    target: float = 2.0  # ORGMIG_MAX_APP_LATENCY_RATIO
    near: float = 0.75  # x target
    calm: float = 0.65  # x target
    cut: float = 0.5
    ease: float = 0.8
    raise_by: float = 1.25
    used_share: float = 0.9
    cooldown_s: float = 5.0
    ease_cooldown_s: float = 10.0
    memory_s: float = 180.0
    joined_share: float = 0.25  # of the rate written alone, when a client arrives
    cuts_to_rebase: int = 3  # cuts in a row, no raise between: the baseline is measured afresh

    @classmethod
    def paced_by(cls, window_s: float, target: float) -> Law:
        """The law for a signal window of `window_s` seconds: changes one window apart, eases
        two, bad rates remembered for 36 windows (3 minutes at the default 5 s)."""
        return cls(target=target, cooldown_s=window_s, ease_cooldown_s=2 * window_s, memory_s=36 * window_s)


@dataclass(frozen=True)
class Reading:
    """What the health signal says now. `ratio` is the signal over its baseline (None: no
    signal yet); the guards are already judged against their own baselines."""

    ratio: float | None
    wal_waits: str | None = None  # why the application's WAL waits count as a near breach
    hold: str | None = None  # why no raise now (CPU pressure, autovacuum on the step's tables)
    alone: bool | None = None  # no other client of the database lately (None: too few samples yet)
    company: str | None = None  # when not alone: who (the latest other client seen)


@dataclass(frozen=True)
class Decision:
    at: float
    action: str  # start, cut, ease, raise, hold, alone, client, baseline
    allowance: float  # WAL bytes a second, after the decision (alone: the one kept for later; no limit)
    reason: str


@dataclass
class Controller:
    law: Law
    clock: Callable[[], float]
    allowance: float  # WAL bytes a second
    floor: float
    enabled: bool = True
    alone: bool = False
    _changed_at: float = -math.inf
    _eased_at: float = -math.inf
    _bad: list[tuple[float, float]] = field(default_factory=list)  # (rate, when)
    _cuts: int = 0  # cuts since the last raise or fresh baseline

    def limit(self) -> float | None:
        """WAL bytes a second the run may write; None: no limit (steering off)."""
        return self.allowance if self.enabled and not self.alone else None

    def lowest_bad(self) -> float | None:
        now = self.clock()
        self._bad = [(rate, at) for rate, at in self._bad if now - at < self.law.memory_s]
        return min((rate for rate, _ in self._bad), default=None)

    def decide(self, reading: Reading, used: float) -> Decision | None:
        """One step of the law, given the reading and the WAL bytes a second the run wrote over
        the last window. None when off, while alone, or while there is no signal yet."""
        if not self.enabled:
            return None
        if reading.alone and not self.alone:
            self.alone = True
            return self._decision("alone", ALONE_REASON)
        if self.alone:
            if reading.alone is not False:
                return None
            self.alone = False
            written = used if used > 0 else self.allowance
            return self._change(written * self.law.joined_share, "client",
                                f"a client of the database arrived ({reading.company}): {self.law.joined_share:.0%}"
                                f" of the {_rate(written)} the run wrote alone, and a fresh baseline")
        if reading.ratio is None:
            return None
        law, now, r = self.law, self.clock(), reading.ratio
        since = now - self._changed_at
        if r > law.near * law.target and used <= 0:
            # (a run held to a small allowance writes a batch now and then: windows between them)
            return self._decision("hold", f"signal {r:.1f}x its baseline, but the run wrote nothing over the"
                                  " window: not its doing, no cut")
        if r > law.target:
            if since < law.cooldown_s:
                return self._decision("hold", f"breach ({r:.1f}x), waiting for the last change to show")
            hurt = self._in_use(used)
            self._bad.append((hurt, now))
            self._cuts += 1
            return self._change(hurt * law.cut, "cut", f"breach: signal {r:.1f}x its baseline, over {law.target:g}x;"
                                f" {_rate(hurt)} remembered as a rate that hurt")
        if r > law.near * law.target or reading.wal_waits:
            why = f"near breach: signal {r:.1f}x its baseline" if r > law.near * law.target else reading.wal_waits
            if since < law.cooldown_s or now - self._eased_at < law.ease_cooldown_s:
                return self._decision("hold", f"{why}; eased lately")
            self._eased_at = now
            return self._change(self._in_use(used) * law.ease, "ease", why)
        if r >= law.calm * law.target:
            return self._decision("hold", f"signal {r:.1f}x its baseline: between calm and near breach")
        if reading.hold:
            return self._decision("hold", reading.hold)
        if used < law.used_share * self.allowance:
            return self._decision("hold", f"calm ({r:.1f}x), but only {used / self.allowance:.0%} of the allowance"
                                  " used: the run is not held back by it")
        if since < law.cooldown_s:
            return self._decision("hold", f"calm ({r:.1f}x), waiting for the last change to show")
        wanted = self.allowance * law.raise_by
        bad = self.lowest_bad()
        if bad is not None:
            wanted = min(wanted, (self.allowance + bad) / 2) if bad > self.allowance else self.allowance
            if wanted <= self.allowance * 1.01:
                return self._decision("hold", f"calm ({r:.1f}x), but {_rate(bad)} hurt lately")
        self._cuts = 0
        return self._change(wanted, "raise", f"calm: signal {r:.1f}x its baseline,"
                            f" {used / self.allowance:.0%} of the allowance used")

    def stuck(self) -> bool:
        """The breach outlasted `cuts_to_rebase` cuts in a row: what the signal measures may be the
        application's own load grown since the baseline (a busier hour), not the run."""
        return self._cuts >= self.law.cuts_to_rebase

    def rebased(self) -> None:
        """A fresh baseline: the rates that hurt were judged against the old one; forgotten."""
        self._bad.clear()
        self._cuts = 0

    def _in_use(self, used: float) -> float:
        """What a cut starts from: the rate the run wrote, when under its allowance (halving an
        allowance the run does not use would not slow it down)."""
        return min(used, self.allowance) if used > 0 else self.allowance

    def _change(self, allowance: float, action: str, reason: str) -> Decision:
        self.allowance = max(self.floor, allowance)
        self._changed_at = self.clock()
        return self._decision(action, reason)

    def _decision(self, action: str, reason: str) -> Decision:
        return Decision(self.clock(), action, self.allowance, reason)


class Bucket:
    """The actuator: a token bucket in WAL bytes. A batch's bytes are charged after it; the
    worker then waits until the bucket has paid them off at the allowance. Idle time earns at
    most `burst_s` of credit."""

    def __init__(self, clock: Callable[[], float], burst_s: float = 0.5) -> None:
        self.clock = clock
        self.burst_s = burst_s
        self._free_at = -math.inf

    def charge(self, nbytes: float, allowance: float | None) -> float:
        """The time until which the worker that wrote `nbytes` should wait (no limit: now)."""
        now = self.clock()
        if allowance is None:
            return now
        self._free_at = max(self._free_at, now - self.burst_s) + nbytes / allowance
        return self._free_at

    def rescale(self, old: float | None, new: float | None) -> None:
        """The allowance changed: what is still owed is paid off at the new one."""
        now = self.clock()
        if old and new and self._free_at > now:
            self._free_at = now + (self._free_at - now) * old / new


def _rate(bytes_per_s: float) -> str:
    return f"{bytes_per_s / 1e6:.2f} MB/s" if bytes_per_s >= 1e5 else f"{bytes_per_s / 1e3:.1f} kB/s"


def rate_text(bytes_per_s: float | None) -> str:
    """A WAL rate as a person reads it."""
    return "no limit" if bytes_per_s is None else f"{_rate(bytes_per_s)} of WAL"
