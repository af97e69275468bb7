"""What the engine's steering decided during a bench's upgrade, set against what the application
felt: its decisions and readings (orgmig_steer_decision) on the bench's clock, the application's
p99 over each reading's signal window beside the signal, and how well the one tracks the other
(Spearman's rank correlation)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import URL

from .latency import pct
from .sampling import pg
from .traffic import APP_KINDS, Sample

SIGNAL_WINDOW_S = 5.0  # 25 probes at the default 200 ms (app.batch.health)


@dataclass(frozen=True)
class Mark:
    at: float  # CLOCK_MONOTONIC of this host, as the traffic's samples
    action: str
    allowance: int
    ratio: float | None
    reason: str


def marks(url: URL) -> list[Mark]:
    """The steering's decisions and readings of the database's runs, in order, on this host's
    monotonic clock (the server runs on this host: its clock is this one's)."""
    offset = time.time() - time.monotonic()
    with psycopg.connect(pg(url)) as conn:
        if conn.execute("SELECT to_regclass('orgmig_steer_decision')").fetchone()[0] is None:
            return []
        rows = conn.execute("SELECT extract(epoch FROM at)::float8, action, allowance_bytes_per_s, ratio, reason"
                            " FROM orgmig_steer_decision ORDER BY id").fetchall()
    return [Mark(at - offset, action, allowance, ratio, reason) for at, action, allowance, ratio, reason in rows]


def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties given their mean rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(xs: list[float], ys: list[float]) -> float | None:
    """Spearman's rank correlation (None under 3 pairs, or when one side is constant)."""
    if len(xs) < 3:
        return None
    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sx = math.sqrt(sum((a - mx) ** 2 for a in rx))
    sy = math.sqrt(sum((b - my) ** 2 for b in ry))
    return None if sx == 0 or sy == 0 else cov / (sx * sy)


@dataclass(frozen=True)
class Point:
    at: float  # seconds after the upgrade started
    ratio: float  # the signal over its baseline, as the controller read it
    app_p99: float  # the application's p99 (ms) over the same window
    allowance: int


def tracking(samples: list[Sample], found: list[Mark], start: float) -> list[Point]:
    """At each reading: the signal, and the application's p99 over the signal window it covers."""
    points = []
    for m in found:
        if m.action != "reading" or m.ratio is None:
            continue
        lat = [s.latency_ms for s in samples if s.ok and s.kind in APP_KINDS and m.at - SIGNAL_WINDOW_S <= s.due < m.at]
        if len(lat) >= 20:
            points.append(Point(m.at - start, m.ratio, pct(lat, 99), m.allowance))
    return points


def windows_p99(samples: list[Sample], start: float, end: float, width: float = SIGNAL_WINDOW_S) -> list[tuple]:
    """(seconds after `start`, p99 ms, n) of the application's transactions, window by window."""
    out = []
    t = start
    while t < end:
        lat = [s.latency_ms for s in samples if s.ok and s.kind in APP_KINDS and t <= s.due < t + width]
        out.append((t - start, pct(lat, 99) if lat else math.nan, len(lat)))
        t += width
    return out


def decisions_text(found: list[Mark], start: float) -> str:
    """The decisions (not the readings), as `+12.3 s cut` items."""
    return ", ".join(f"{m.at - start:+.1f} s {m.action}" for m in found if m.action != "reading") or "none"
