"""The page `orgmig report RUN_ID --html FILE` writes: one self-contained HTML file (its CSS,
report.css, inlined; its charts inline SVG; no script, font, image or link to fetch) that a DBA
reads at a glance or prints. Every text value goes through `html.escape`."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from html import escape
from pathlib import Path

from app import __version__
from app.batch import fmt_duration, fmt_rate
from app.ops import report_steering
from app.ops.report import Problem, Reason, RunReport, rate_buckets
from app.ops.report_charts import Bar, HBar, Marker, bar_chart, count_ticks, hbar_chart, progress_bar, time_ticks

MAX_COLUMNS = 600  # past this many batches, each column of the durations chart is a group of them


@cache
def _css() -> str:
    return (Path(__file__).with_name("report.css")).read_text(encoding="utf-8")


def count(n: int, one: str, many: str | None = None) -> str:
    """`1 row`, `2 rows`, `1 batch`, `3 batches`."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def fmt_int(n: int | float | None) -> str:
    return "—" if n is None else f"{n:,.0f}"


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:,.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s" if ms < 10_000 else f"{ms / 1000:.0f} s"
    return fmt_duration(ms / 1000)


def fmt_width(seconds: float) -> str:
    """A bucket width, to three figures: `0.103 s`, `2.02 s`, `5.01 min`, `1 h`."""
    if seconds < 60:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.3g} min" if seconds < 3600 else f"{seconds / 3600:.3g} h"


def fmt_when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _tile(key: str, value: str, note: str = "", *, small: bool = False, extra: str = "") -> str:
    return (f'<div class="tile"><div class="k">{escape(key)}</div>'
            f'<div class="v{" small" if small else ""}" title="{escape(value)}">{escape(value)}</div>{extra}'
            + (f'<div class="n">{escape(note)}</div>' if note else "") + "</div>")


SETTINGS = (  # orgmig_run.settings as the page names them, in this order; a 0 (but workers') reads "off"
    ("workers", "workers", fmt_int),
    ("batch_size", "batch size", lambda n: f"{n:,} rows"),
    ("pause_ms", "pause after each batch", fmt_ms),
    ("max_rows_per_second", "max rows/s", fmt_int),
    ("target_batch_ms", "target batch time", fmt_ms),
    ("lock_timeout_ms", "lock timeout", fmt_ms),
    ("statement_timeout_ms", "statement timeout", fmt_ms),
    ("max_batch_attempts", "attempts per batch", fmt_int),
    ("steer", "steering", lambda on: "on"),
    ("max_app_latency_ratio", "breach above", lambda r: f"{r:g}x the commit baseline"),
)


def settings_line(settings: dict | None) -> str:
    """`workers 3 · batch size 500 rows · pause after each batch off · …`, or why there is none."""
    if not settings:
        return "not recorded for this run"
    return " · ".join(f"{label} {'off' if settings[key] == 0 and key != 'workers' else form(settings[key])}"
                      for key, label, form in SETTINGS if key in settings)


def _header(r: RunReport) -> str:
    run, f, t = r.run, r.figures, r.totals
    title = f"Run {run.id} · {run.step} · {run.direction}"
    share = f" · {t.rows_done / t.total_rows:.1%}" if t.total_rows else " · nothing to do"
    end_note = {"running": "still running", "interrupted": "no live process holds it", "paused": "paused",
                "failed": "stopped on an error", "cancelled": "cancelled"}.get(run.state, "")
    batches_note = f"{f.failed:,} failed · {t.retried:,} retried"
    if f.claimed:
        batches_note += f" · {f.claimed:,} in flight" if run.live else f" · {f.claimed:,} left claimed"
    reported = sum(x.total for x in r.reasons)
    tiles = [
        _tile("Rows done", f"{t.rows_done:,}", f"of {t.total_rows:,}{share}",
              extra=progress_bar(t.rows_done, t.total_rows)),
        _tile("Duration", fmt_duration(t.seconds),
              "" if run.finished_at else ("so far" if run.live else "until its last batch")),
        _tile("Average rate", fmt_rate(t.rate), f"batch size {run.batch_size:,}"),
        _tile("Batches", f"{f.batches:,}", batches_note),
        _tile("Started", fmt_when(run.started_at), small=True),
        _tile("Finished", fmt_when(run.finished_at), end_note, small=True),
        _tile("Batch duration", f"{fmt_ms(f.median_ms)} median", f"p95 {fmt_ms(f.p95_ms)} · max {fmt_ms(f.max_ms)}")
        if f.median_ms is not None else _tile("Batch duration", "—", "no batch finished yet"),
        _tile("Reported rows", f"{reported:,}", f"{count(len(r.reasons), 'reason')} for this step"),
    ]
    error = run.last_error and run.last_error.strip().splitlines()[0]
    callout = (f'<div class="callout"><b>Last error:</b> {escape(error)}</div>' if error else "")
    return (f'<header class="run"><h1>{escape(title)}</h1>'
            f'<span class="pill {escape(run.state)}">{escape(run.state)}</span></header>'
            f'<p class="sub">Database {escape(r.database or "?")} · report generated {fmt_when(r.generated_at)}'
            f' · times in UTC, elapsed times from the run\'s start</p>'
            f'<div class="tiles">{"".join(tiles)}</div>'
            f'<p class="settings"><b>Settings</b> {escape(settings_line(run.settings))}</p>{callout}')


def _swatch(css: str) -> str:
    return f'<svg viewBox="0 0 22 10"><rect class="sw {css}" x="0" y="0" width="22" height="10" rx="2"/></svg>'


def _rate_section(r: RunReport) -> str:
    width, buckets = rate_buckets(r.timeline, r.totals.seconds)
    head = '<section id="rate"><h2>Rate over time</h2>'
    if not buckets:
        return head + '<p class="empty">No batch of this run has finished yet.</p></section>'
    span = buckets[-1].start_s + buckets[-1].seconds
    bars = [Bar(b.start_s, b.start_s + b.seconds, b.rate) for b in buckets]
    peak = max(b.rate for b in buckets)
    rate = r.totals.rate
    markers = [Marker(rate, f"avg {fmt_rate(rate)}", "average")] if rate else []
    chart = bar_chart(bars=bars, x_max=span, x_ticks=time_ticks(span), y_max=peak,
                      y_format=lambda v: f"{v:,.0f}" if v >= 10 or v == 0 else f"{v:.1f}",
                      x_label="seconds since the run started" if span < 10 else
                      f"time since the run started ({'h:mm:ss' if span >= 3600 else 'm:ss'})",
                      y_label="rows / s",
                      title="Rows per second over time", markers=markers)
    return (head + f'<p class="note">Rows of the batches that finished in each of {len(buckets):,} equal'
            f' buckets of {fmt_width(width)}, per second; peak {fmt_rate(peak)}. A gap is time with no batch'
            f' finishing (a pause, a wait on a lock, a stopped process).</p>{chart}</section>')


def _steering_section(r: RunReport) -> str:
    _, buckets = rate_buckets(r.timeline, r.totals.seconds)
    marks = r.steering.decisions + r.steering.readings if r.steering else []
    ends = [b.start_s + b.seconds for b in buckets[-1:]] + [m.at_s for m in marks]
    return report_steering.section(r.steering, buckets, max(ends + [1.0]))


def _durations_section(r: RunReport) -> str:
    f = r.figures
    points = [p for p in r.timeline if p.duration_ms is not None]
    head = '<section id="durations"><h2>Batch durations</h2>'
    if not points:
        return head + '<p class="empty">No batch of this run has finished yet.</p></section>'
    group = -(-len(points) // MAX_COLUMNS)  # ceil
    bars = []
    for i in range(0, len(points), group):
        chunk = points[i:i + group]
        bars.append(Bar(i, i + len(chunk), max(p.duration_ms for p in chunk),
                        "bar retried" if any(p.retried for p in chunk) else "bar"))
    markers = [Marker(v, f"{name} {fmt_ms(v)}", name) for name, v in (("median", f.median_ms), ("p95", f.p95_ms))
               if v is not None]
    longest = max(p.duration_ms for p in points)
    # Outliers (a batch that waited on a lock) would flatten the rest: past 5x the p95, the axis
    # stops at 3x the p95 and the taller bars are cut, their duration written on top.
    cap = 3 * f.p95_ms if f.p95_ms and longest > 5 * f.p95_ms else None
    chart = bar_chart(bars=bars, x_max=len(points), x_ticks=count_ticks(len(points)),
                      y_max=longest, y_cap=cap, y_format=fmt_ms,
                      x_label="batch, in the order they finished", y_label="duration",
                      title="Duration of each batch", markers=markers)
    grouped = f" Each column is the longest of {group:,} consecutive batches." if group > 1 else ""
    if cap:
        grouped += " Bars taller than the chart are cut at its top (▲), the longest labelled with their duration."
    legend = (f'<div class="legend"><span>{_swatch("bar")}one attempt</span>'
              f'<span>{_swatch("retried")}succeeded after a retry</span>'
              f'<span class="median">- - median {escape(fmt_ms(f.median_ms))}</span>'
              f'<span class="p95">··· p95 {escape(fmt_ms(f.p95_ms))}</span>'
              f'<span>max {escape(fmt_ms(f.max_ms))}</span></div>')
    return (head + f'<p class="note">{len(points):,} batches that succeeded, the time of the attempt that'
            f' succeeded.{grouped}</p>{legend}{chart}</section>')


def _problem_row(p: Problem, with_error: bool) -> str:
    error = f'<td class="err">{escape(p.error or "")}</td>' if with_error else ""
    return (f'<tr class="{escape(p.status)}"><td class="keys">{p.start_key:,}..{p.end_key:,}</td>'
            f'<td class="status">{escape(p.status)}</td><td class="num">{p.attempts:,}</td>'
            f'<td class="num">{fmt_int(p.rows_read) if p.status == "succeeded" else "—"}</td>'
            f'<td class="num">{fmt_ms(p.duration_ms)}</td><td class="when">{fmt_when(p.finished_at)}</td>{error}</tr>')


def _retries_section(r: RunReport) -> str:
    f, t = r.figures, r.totals
    head = '<section id="retries"><h2>Retries and failures</h2>'
    if not r.problems:
        return head + '<p class="empty">No batch needed a retry, and none failed.</p></section>'
    parts = []
    if t.retried:
        parts.append(f"{count(t.retried, 'batch', 'batches')} took more than one attempt"
                     f" ({count(t.extra_attempts, 'extra attempt')} in all)")
    if f.failed:
        parts.append(f"{f.failed:,} failed: nothing of {'it' if f.failed == 1 else 'them'} was written, and the"
                     f" same command, run again, redoes {'it' if f.failed == 1 else 'them'} first")
    note = ("; ".join(parts) + ". Errors are the first line the engine recorded (SQLSTATE and message, never"
            " a row's values); a batch that succeeded after retries keeps none.")
    with_error = any(p.error for p in r.problems)
    rows = "".join(_problem_row(p, with_error) for p in r.problems)
    more = f.problems - len(r.problems)
    tail = (f'<p class="note">… and {more:,} more, failed first then newest first; all of them:'
            f' <code>SELECT * FROM orgmig_batch WHERE run_id = {r.run.id} AND (attempts &gt; 1 OR status ='
            f" 'failed') ORDER BY finished_at</code></p>" if more > 0 else "")
    return (head + f'<p class="note">{escape(note)}</p><table><thead><tr><th>keys</th><th>status</th>'
            f'<th class="num">attempts</th><th class="num">rows</th><th class="num">duration</th>'
            f'<th>finished (UTC)</th>{"<th>error</th>" if with_error else ""}</tr></thead>'
            f'<tbody>{rows}</tbody></table>{tail}</section>')


def samples_text(x: Reason) -> str:
    """`user_settings 3, 17, 40 …`: the first reported rows of a reason, by source table."""
    by_table: dict[str, list[int]] = {}
    for sample in x.samples:
        by_table.setdefault(sample.table, []).append(sample.id)
    text = "; ".join(f"{table} {', '.join(f'{i}' for i in ids)}" for table, ids in by_table.items())
    return text + (" …" if x.total > len(x.samples) else "")


def _reasons_section(r: RunReport) -> str:
    head = '<section id="reasons"><h2>Reported rows by reason</h2>'
    if not r.reasons:
        return head + f'<p class="empty">No row reported for step {escape(r.run.step)}.</p></section>'
    total = sum(x.total for x in r.reasons)
    this_run = sum(x.this_run for x in r.reasons)
    rows = [HBar(x.reason, [(x.not_migrated, "not-migrated"), (x.total - x.not_migrated, "migrated")],
                 f"{x.total:,}" + (f"  ({x.total - x.not_migrated:,} migrated)" if x.not_migrated < x.total else ""))
            for x in r.reasons]
    chart = hbar_chart(rows, "Reported rows by reason")
    any_migrated = any(x.not_migrated < x.total for x in r.reasons)
    earlier = "" if this_run == total else f"; {this_run:,} of them recorded by this run, the rest by earlier runs"
    samples = "".join(f'<tr><td class="reason">{escape(x.reason)}</td><td class="ids">{escape(samples_text(x))}'
                      f'</td></tr>' for x in r.reasons)
    step = r.run.step.replace("'", "''")
    return (head + f'<p class="note">{count(total, "row")} of step {escape(r.run.step)} in orgmig_report'
            f'{escape(earlier)}.'
            f' Each row names its source row and reason; <code>orgmig_report</code> holds the detail.</p>'
            f'<div class="legend"><span>{_swatch("not-migrated")}not migrated</span>'
            + (f'<span>{_swatch("migrated")}migrated, with a note</span>' if any_migrated else "")
            + f'</div>{chart}<table class="samples"><thead><tr><th>reason</th><th>first reported rows'
              f' (source table, id)</th></tr></thead><tbody>{samples}</tbody></table>'
              f'<p class="note">All of them: <code>SELECT source_table, source_id, reason, detail FROM orgmig_report'
              f" WHERE step = '{escape(step)}' ORDER BY reason, source_table, source_id</code></p></section>")


def _error_section(r: RunReport) -> str:
    head = '<section id="last-error"><h2>Last error</h2>'
    if not (r.run.last_error and r.run.last_error.strip()):
        return head + '<p class="empty">None recorded for this run.</p></section>'
    return head + f'<pre class="error">{escape(r.run.last_error.strip())}</pre></section>'


def render(report: RunReport) -> str:
    """The whole page, as text."""
    run = report.run
    title = f"orgmig run {run.id} — {run.step} {run.direction} {run.state}"
    body = "".join((_header(report), _rate_section(report), _steering_section(report), _durations_section(report),
                    _retries_section(report), _reasons_section(report), _error_section(report)))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="color-scheme" content="light"><title>{escape(title)}</title>'
            f'<style>\n{_css()}</style></head>\n<body><main>{body}'
            f'<footer>orgmig {escape(__version__)} · from orgmig_run, orgmig_batch and orgmig_report of run'
            f' {run.id}</footer></main></body></html>\n')
