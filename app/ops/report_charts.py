"""Inline SVG charts for `orgmig report`: plain shapes and text, styled by the page's CSS (class
names below), scaled to the page's width through their viewBox, no script. Every text value is
escaped here, whatever its origin."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 1000  # viewBox units; the SVG is drawn at the width of its section
LEFT, RIGHT, TOP, BOTTOM = 92, 165, 24, 40  # plot margins: y labels left, marker labels right


@dataclass
class Bar:
    x0: float  # in data units along the x axis
    x1: float
    value: float
    css: str = "bar"


@dataclass
class Marker:
    """A horizontal line across the plot at `value`, labelled at its right end."""

    value: float
    label: str
    css: str


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def nice_top(value: float, ticks: int = 4) -> tuple[float, float]:
    """A round top for an axis holding `value`, and the step between its `ticks` or so gridlines."""
    if value <= 0:
        return 1.0, 0.25
    raw = value / ticks
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return math.ceil(value / step - 1e-9) * step, step


def elapsed(seconds: float) -> str:
    """Seconds since the start as `m:ss`, or `h:mm:ss` past an hour."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def time_ticks(span_s: float, most: int = 8) -> list[tuple[float, str]]:
    """Round ticks over [0, span_s]: `m:ss` (`h:mm:ss`), or plain seconds under ten seconds."""
    steps = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
    step = next((t for t in steps if span_s / t <= most), steps[-1])
    label = (lambda v: f"{v:g} s") if span_s < 10 else elapsed
    return [(round(i * step, 3), label(round(i * step, 3))) for i in range(int(span_s / step + 1e-9) + 1)]


def count_ticks(n: int, most: int = 10) -> list[tuple[float, str]]:
    """Ticks for items 1..n drawn in [0, n]: item k sits at k - 0.5."""
    if n <= 0:
        return []
    step = max(nice_top(n, most)[1], 1)
    ks = [1] + [int(k) for k in range(int(step), n + 1, int(step)) if k > 1]
    return [(k - 0.5, f"{k:,}") for k in ks]


def bar_chart(*, bars: Sequence[Bar], x_max: float, x_ticks: Sequence[tuple[float, str]], y_max: float,
              y_format: Callable[[float], str], x_label: str, y_label: str, title: str,
              markers: Sequence[Marker] = (), y_cap: float | None = None, height: int = 270) -> str:
    """Vertical bars over [0, x_max] x [0, y_max] with gridlines, axis labels and markers. With
    `y_cap` below y_max, the axis stops near y_cap: taller bars are cut at the top and carry
    their value there (the few largest), so outliers do not flatten everything else."""
    shown = min(y_max, y_cap) if y_cap else y_max
    top, step = nice_top(max([shown] + [m.value for m in markers]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM

    def x(v: float) -> float:
        return LEFT + plot_w * (v / x_max if x_max > 0 else 0)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - min(v, top) / top)

    out = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}"'
           f' preserveAspectRatio="xMidYMid meet"><title>{escape(title)}</title>']
    for i in range(int(round(top / step)) + 1):
        v = i * step
        out.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{_num(y(v))}" y2="{_num(y(v))}"/>'
                   f'<text class="tick" x="{LEFT - 8}" y="{_num(y(v) + 4)}" text-anchor="end">'
                   f'{escape(y_format(v))}</text>')
    for b in bars:
        x0, x1 = x(b.x0), x(b.x1)
        gap = min((x1 - x0) * 0.18, 3) if x1 - x0 > 4 else 0
        h = max(plot_h * min(b.value, top) / top, 1 if b.value > 0 else 0)
        out.append(f'<rect class="{escape(b.css)}" x="{_num(x0 + gap / 2)}" y="{_num(TOP + plot_h - h)}"'
                   f' width="{_num(max(x1 - x0 - gap, 0.6))}" height="{_num(h)}"/>')
    cut = sorted((b for b in bars if b.value > top), key=lambda b: -b.value)
    centres = sorted((x(b.x0) + x(b.x1)) / 2 for b in cut)
    for cx in centres:
        out.append(f'<path class="cut" d="M{_num(cx - 5)} {TOP - 2} L{_num(cx + 5)} {TOP - 2}'
                   f' L{_num(cx)} {TOP - 9} Z"/>')
    labelled: list[float] = []
    for b in cut if len(cut) <= 6 else ():  # more labels would be a row of noise
        cx = (x(b.x0) + x(b.x1)) / 2
        if any(abs(cx - p) <= 80 for p in labelled):
            continue
        labelled.append(cx)
        # beside the run of triangles it belongs to, not over a neighbour's
        left, right = cx, cx
        while any(0 < c - right < 14 for c in centres):
            right = min(c for c in centres if 0 < c - right < 14)
        while any(0 < left - c < 14 for c in centres):
            left = max(c for c in centres if 0 < left - c < 14)
        anchor = "end" if cx > LEFT + plot_w - 40 else "start"
        out.append(f'<text class="cut-label" x="{_num(left - 9 if anchor == "end" else right + 9)}" y="{TOP - 3}"'
                   f' text-anchor="{anchor}">{escape(y_format(b.value))}</text>')
    base = TOP + plot_h
    out.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{base}" y2="{base}"/>')
    last_label_x = -1e9
    for v, label in x_ticks:
        tx = x(v)
        if tx - last_label_x < 9 * len(label) or tx > LEFT + plot_w + 1:
            continue  # keep labels apart
        last_label_x = tx
        out.append(f'<line class="axis" x1="{_num(tx)}" x2="{_num(tx)}" y1="{base}" y2="{base + 5}"/>'
                   f'<text class="tick" x="{_num(tx)}" y="{base + 19}" text-anchor="middle">{escape(label)}</text>')
    out.append(f'<text class="axis-label" x="{LEFT + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle">'
               f'{escape(x_label)}</text>'
               f'<text class="axis-label" x="14" y="{TOP + plot_h / 2:.0f}" text-anchor="middle"'
               f' transform="rotate(-90 14 {TOP + plot_h / 2:.0f})">{escape(y_label)}</text>')
    # Labels at their lines, top to bottom, at least a line apart, the stack kept above the x axis.
    ordered = sorted(markers, key=lambda m: -m.value)
    label_y: list[float] = []
    for m in ordered:
        label_y.append(max(y(m.value) + 4, label_y[-1] + 15) if label_y else y(m.value) + 4)
    overflow = (label_y[-1] - (TOP + plot_h + 4)) if label_y else 0
    for m, ty in zip(ordered, label_y, strict=True):
        my, ty = y(m.value), ty - max(overflow, 0)
        out.append(f'<line class="marker {escape(m.css)}" x1="{LEFT}" x2="{LEFT + plot_w + 6}"'
                   f' y1="{_num(my)}" y2="{_num(my)}"/>'
                   f'<text class="marker-label {escape(m.css)}" x="{LEFT + plot_w + 10}" y="{_num(ty)}">'
                   f'{escape(m.label)}</text>')
    out.append("</svg>")
    return "".join(out)


@dataclass
class HBar:
    label: str
    parts: Sequence[tuple[float, str]]  # (value, css class), stacked left to right
    note: str  # the figure written after the bar


def hbar_chart(rows: Sequence[HBar], title: str, row_h: int = 30) -> str:
    """Horizontal bars, one per row, labelled on the left, the figure at the bar's end."""
    # sized for the printed page's larger text (report.css), so the screen's has room to spare
    label_w = min(max((len(r.label) for r in rows), default=8) * 10.5 + 16, 380)
    note_w = min(max((len(r.note) for r in rows), default=6) * 9.5 + 16, 330)
    plot_w = WIDTH - label_w - note_w
    top = max((sum(v for v, _ in r.parts) for r in rows), default=1) or 1
    height = row_h * len(rows) + 8
    out = [f'<svg class="chart hbars" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">'
           f'<title>{escape(title)}</title>']
    for i, r in enumerate(rows):
        y0 = 4 + i * row_h
        out.append(f'<text class="hbar-label" x="{label_w - 10}" y="{y0 + row_h / 2 + 5:.0f}" text-anchor="end">'
                   f'{escape(r.label)}</text>')
        x0 = float(label_w)
        for value, css in r.parts:
            w = plot_w * value / top
            if value > 0:
                w = max(w, 2)
                out.append(f'<rect class="{escape(css)}" x="{_num(x0)}" y="{y0 + 5}" width="{_num(w)}"'
                           f' height="{row_h - 10}"/>')
            x0 += w
        out.append(f'<text class="hbar-note" x="{_num(x0 + 8)}" y="{y0 + row_h / 2 + 5:.0f}">{escape(r.note)}</text>')
    out.append("</svg>")
    return "".join(out)


def progress_bar(done: int, total: int) -> str:
    share = min(done / total, 1.0) if total > 0 else (1.0 if done else 0.0)
    return (f'<svg class="progress" viewBox="0 0 200 10" preserveAspectRatio="none" role="img"'
            f' aria-label="{share:.0%} done"><rect class="progress-bg" x="0" y="0" width="200" height="10" rx="3"/>'
            f'<rect class="progress-fg" x="0" y="0" width="{200 * share:.1f}" height="10" rx="3"/></svg>')
