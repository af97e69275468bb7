"""Latency figures of sampled transactions: percentiles by nearest rank, a window of samples
with the host's state around it, and the report's rows (n, p50, p99, max)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from .traffic import APP_KINDS, Sample


@dataclass
class Window:
    """Samples of one measured period, with the host's state around it."""

    name: str
    samples: list[Sample]
    seconds: float
    load: tuple[float, float]
    cpu_busy: float | None = None
    waits: Counter = field(default_factory=Counter)
    upgrade: dict | None = None
    blocked: Counter = field(default_factory=Counter)


def pct(values: list[float], p: float) -> float:
    """The p-th percentile by nearest rank (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def within(samples: list[Sample], spans: list[tuple[float, float]]) -> list[Sample]:
    return [s for s in samples if any(a <= s.due < b for a, b in spans)]


def stats(samples: list[Sample]) -> dict:
    lat = [s.latency_ms for s in samples if s.ok]
    return {"n": len(samples), "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat, default=math.nan),
            "errors": Counter(s.note for s in samples if not s.ok),
            "service_p50": pct([s.service_ms for s in samples if s.ok], 50),
            "service_p99": pct([s.service_ms for s in samples if s.ok], 99)}


def app_samples(w: Window, kinds=APP_KINDS) -> list[Sample]:
    return [s for s in w.samples if s.kind in kinds]


def logins(w: Window, migrated_now: bool) -> list[Sample]:
    """migrate_user calls that migrated their user (a failed call for a user not yet migrated
    counts here, as an error), or that found it migrated."""
    if migrated_now:
        return [s for s in w.samples if s.kind == "login_new" and (s.note == "now" or not s.ok)]
    return [s for s in w.samples if s.kind.startswith("login") and s.ok and s.note != "now"]


def round_trips(samples: list[Sample]) -> str:
    """Where migrate_user calls' time went: per round trip (the statement's name, the commit),
    the per-call total's p50 / p99 and its mean over the slowest 1% of calls (by latency), then
    the rest of the call (the driver, Python) and the wait for a connection the same way."""
    timed = [s for s in samples if s.ok and s.phases]
    if not timed:
        return "-"
    per_call = []
    for s in timed:
        spent: dict[str, float] = {}
        for part in s.phases.split(","):
            name, ms = part.split("=")
            spent[name] = spent.get(name, 0.0) + float(ms)
        spent["rest of the call"] = s.service_ms - sum(spent.values())
        spent["wait for a connection"] = s.latency_ms - s.service_ms
        per_call.append((s, spent))
    slowest = sorted(per_call, key=lambda c: c[0].latency_ms)[-max(1, len(per_call) // 100):]
    names = list(dict.fromkeys(n for _, spent in per_call for n in spent))
    cells = []
    for name in names:
        values = [spent.get(name, 0.0) for _, spent in per_call]
        tail = sum(spent.get(name, 0.0) for _, spent in slowest) / len(slowest)
        cells.append(f"{name} {pct(values, 50):.1f} / {pct(values, 99):.1f} ({tail:.1f})")
    trips = [s.phases.count(",") + 1 for s in timed]
    again = sum(1 for s in timed if s.phases.count("upgrade=") > 1)
    return (f"n {len(timed):,}, round trips {pct(trips, 50)} (max {max(trips)}), {again} calls made the statement"
            f" again; ms p50 / p99 (mean over the slowest {len(slowest)}): " + "; ".join(cells))


def row(label: str, st: dict, extra: str = "") -> str:
    errors = sum(st["errors"].values())
    err = f"  errors {errors} ({', '.join(f'{k} {v}' for k, v in st['errors'].most_common(3))})" if errors else ""
    return (f"    {label:<48}{st['n']:>7,}{st['p50']:>9.2f}{st['p99']:>9.2f}{st['max']:>9.1f}{extra}{err}")


def load_text(load: tuple[float, float]) -> str:
    return f"{load[0]:.2f}-{load[1]:.2f}" if abs(load[1] - load[0]) >= 0.005 else f"{load[0]:.2f}"


def pooled(name: str, windows: list[Window]) -> Window:
    return Window(name, [s for w in windows for s in w.samples], sum(w.seconds for w in windows),
                  (min(w.load[0] for w in windows), max(w.load[1] for w in windows)))

