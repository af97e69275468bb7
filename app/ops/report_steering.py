"""The steering part of `orgmig report`: what the controller read and decided during a run, from
`orgmig_steer_decision` (its changes, and once a signal window the reading it made) and
`orgmig_steer` (the run's WAL per row). The page shows the rate the run reached and its
allowance over time, the health signal against its baseline and the target, and each decision
as a line across both, so a DBA can see the run hold back at the application's peak and run
free when alone (docs/runbook.md, "Steering")."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from sqlalchemy import Connection

from app.batch import rate_text, runs
from app.ops.report_charts import LEFT, RIGHT, WIDTH, _num, elapsed, nice_top, time_ticks

DECISIONS_LISTED = 40
# What each action means on the page, in the legend's order.
ACTIONS = {
    "start": "start: a quarter of the rate measured unpaced",
    "alone": "alone: no other client, no limit",
    "client": "a client arrived: a quarter, fresh baseline",
    "cut": "cut: breach, halved",
    "ease": "ease: near breach, x0.8",
    "raise": "raise: calm and used, x1.25",
    "baseline": "baseline measured again",
}


@dataclass
class Mark:
    at_s: float  # seconds after the run started
    action: str
    allowance: int  # WAL bytes a second after it (alone: the one kept for later)
    ratio: float | None
    reason: str


@dataclass
class Steering:
    state: str
    reason: str
    wal_bytes_per_row: float | None
    target: float | None  # the breach threshold the run was steered by, where recorded
    readings: list[Mark] = field(default_factory=list)  # the signal, once a window
    decisions: list[Mark] = field(default_factory=list)


def collect(conn: Connection, run_id: int, sql, settings: dict | None) -> Steering | None:
    """The run's steering; None where the database has no steering tables or the run no row."""
    row = (runs.steering(conn, [run_id]) or {}).get(run_id)
    if row is None:
        return None
    marks = [Mark(**r) for r in conn.execute(sql("report.steer_decisions"), {"run_id": run_id}).mappings()]
    target = (settings or {}).get("max_app_latency_ratio")
    return Steering(row["state"], row["reason"] or "", row["wal_bytes_per_row"], target,
                    [m for m in marks if m.action == "reading"], [m for m in marks if m.action != "reading"])


def _alone_spans(decisions: list[Mark], end_s: float) -> list[tuple[float, float]]:
    spans, since = [], None
    for d in decisions:
        if d.action == "alone" and since is None:
            since = d.at_s
        elif d.action in ("client", "start") and since is not None:
            spans.append((since, d.at_s))
            since = None
    return spans + ([(since, end_s)] if since is not None else [])


def chart(s: Steering, buckets, span: float, height: int = 380) -> str:
    """Two panels over the run's time: rows a second (bars) with the allowance in rows a second
    (a step line, at the run's WAL per row), and the signal over its baseline with the target;
    each decision a vertical line across both, alone spans shaded."""
    plot_w = WIDTH - LEFT - RIGHT
    a_top, a_h, b_top, b_h = 24, 150, 214, 110
    base = b_top + b_h

    def x(v: float) -> float:
        return LEFT + plot_w * (min(max(v, 0), span) / span if span > 0 else 0)

    per_row = s.wal_bytes_per_row or 0
    steps = [(d.at_s, None if d.action == "alone" else d.allowance / per_row if per_row else None)
             for d in s.decisions]
    rates = [b.rate for b in buckets] + [v for _, v in steps if v is not None]
    a_max, a_step = nice_top(max(rates, default=1))
    ratios = [m.ratio for m in s.readings if m.ratio is not None]
    target = s.target or 2.0  # a signal far over the target is cut at 3x it: the target stays readable
    b_max, b_step = nice_top(max(min(max(ratios, default=0), 3 * target), 1.5 * target))
    out = [f'<svg class="chart steering" viewBox="0 0 {WIDTH} {height}" role="img"'
           f' aria-label="Rate, allowance and signal over time"><title>Rate, allowance and signal over time</title>']
    for lo, hi in _alone_spans(s.decisions, span):
        out.append(f'<rect class="alone-span" x="{_num(x(lo))}" y="{a_top}" width="{_num(max(x(hi) - x(lo), 1))}"'
                   f' height="{base - a_top}"/>')
    for top, h, vmax, vstep, fmt, label in ((a_top, a_h, a_max, a_step, lambda v: f"{v:,.0f}", "rows / s"),
                                           (b_top, b_h, b_max, b_step, lambda v: f"{v:g}x", "signal")):
        for i in range(int(round(vmax / vstep)) + 1):
            y = top + h * (1 - i * vstep / vmax)
            out.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_num(y)}" y2="{_num(y)}"/>'
                       f'<text class="tick" x="{LEFT - 8}" y="{_num(y + 4)}" text-anchor="end">{fmt(i * vstep)}</text>')
        out.append(f'<text class="axis-label" x="14" y="{top + h / 2:.0f}" text-anchor="middle"'
                   f' transform="rotate(-90 14 {top + h / 2:.0f})">{label}</text>')
    for b in buckets:
        h = a_h * min(b.rate, a_max) / a_max
        out.append(f'<rect class="bar" x="{_num(x(b.start_s))}" y="{_num(a_top + a_h - h)}"'
                   f' width="{_num(max(x(b.start_s + b.seconds) - x(b.start_s) - 1, 0.6))}" height="{_num(h)}"/>')
    points: list[str] = []  # the allowance as steps; broken while alone
    for (at, value), nxt in zip(steps, [t for t, _ in steps[1:]] + [span], strict=True):
        if value is None and points:
            out.append(f'<polyline class="allowance" points="{" ".join(points)}"/>')
            points = []
        if value is not None:
            y = _num(a_top + a_h * (1 - min(value, a_max) / a_max))
            points += [f"{_num(x(at))},{y}", f"{_num(x(nxt))},{y}"]
    if points:
        out.append(f'<polyline class="allowance" points="{" ".join(points)}"/>')
    signal = [f"{_num(x(m.at_s))},{_num(b_top + b_h * (1 - min(m.ratio, b_max) / b_max))}"
              for m in s.readings if m.ratio is not None]
    if signal:
        out.append(f'<polyline class="signal" points="{" ".join(signal)}"/>')
    if s.target:
        ty = b_top + b_h * (1 - min(s.target, b_max) / b_max)
        out.append(f'<line class="marker target" x1="{LEFT}" x2="{LEFT + plot_w + 6}" y1="{_num(ty)}" y2="{_num(ty)}"/>'
                   f'<text class="marker-label target" x="{LEFT + plot_w + 10}" y="{_num(ty + 4)}">'
                   f'target {s.target:g}x</text>')
    for d in s.decisions:
        out.append(f'<line class="decision {escape(d.action)}" x1="{_num(x(d.at_s))}" x2="{_num(x(d.at_s))}"'
                   f' y1="{a_top}" y2="{base}"><title>{escape(elapsed(d.at_s))} {escape(d.action)}:'
                   f' {escape(d.reason)}</title></line>')
    out.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{base}" y2="{base}"/>')
    for v, label in time_ticks(span):
        out.append(f'<text class="tick" x="{_num(x(v))}" y="{base + 19}" text-anchor="middle">{escape(label)}</text>')
    out.append(f'<text class="axis-label" x="{LEFT + plot_w / 2:.0f}" y="{height - 8}" text-anchor="middle">'
               'time since the run started</text></svg>')
    return "".join(out)


def section(s: Steering | None, buckets, span: float) -> str:
    head = '<section id="steering"><h2>Steering</h2>'
    if s is None:
        return head + '<p class="empty">This run was not steered (no steering tables, or no row).</p></section>'
    if not s.decisions:
        return head + f'<p class="empty">Not steered: {escape(s.reason)}</p></section>'
    seen = [a for a in ACTIONS if any(d.action == a for d in s.decisions)]
    legend = "".join(f'<span class="key"><svg viewBox="0 0 22 10"><line class="decision {a}" x1="0" x2="22"'
                     f' y1="5" y2="5"/></svg>{escape(ACTIONS[a])}</span>' for a in seen)
    per_row = f"{s.wal_bytes_per_row:,.0f} bytes of WAL per row" if s.wal_bytes_per_row else "the run's WAL per row"
    rows = "".join(f"<tr><td>{escape(elapsed(d.at_s))}</td><td>{escape(d.action)}</td>"
                   f"<td>{escape('no limit' if d.action == 'alone' else rate_text(d.allowance))}</td>"
                   f"<td>{'' if d.ratio is None else f'{d.ratio:.2f}x'}</td><td>{escape(d.reason)}</td></tr>"
                   for d in s.decisions[:DECISIONS_LISTED])
    more = len(s.decisions) - DECISIONS_LISTED
    return (head + f'<p class="note">Rows per second (bars) and the WAL allowance in rows per second at {per_row}'
            ' (line; none while alone, shaded); below, the probe\'s commit over its baseline once a signal window,'
            ' against the target. Each decision is a vertical line; hover one for its reason.'
            f' Last state: {escape(s.state)}.</p>{chart(s, buckets, span)}<p class="legend">{legend}</p>'
            '<table class="decisions"><thead><tr><th>at</th><th>decision</th><th>allowance</th><th>signal</th>'
            f'<th>why</th></tr></thead><tbody>{rows}</tbody></table>'
            + (f'<p class="note">{more:,} more in orgmig_steer_decision.</p>' if more > 0 else "") + "</section>")
