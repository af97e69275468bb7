"""`orgmig report RUN_ID --html FILE`: the page of a real upgrade (its figures, its reasons, no
external reference), of a run with retries and a failed batch (errors escaped, never a row's
values), the one-line errors, and the page as a person sees it: a headless Chromium screenshot."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from app.batch import MigrationError, run_step
from app.batch.summary import fmt_duration, fmt_rate
from app.ops import migrations
from app.ops.report import Point, collect, rate_buckets
from app.ops.report_html import fmt_ms, render
from app.ops.seed import seed_legacy
from tests.batch.toy_copy import ROWS, ToyCopy
from tests.batch.toy_copy.fixtures import options
from tests.support.db import execute, fetch_all, scalar
from tests.support.migrate import orgmig, run_alembic
from tests.support.png import png_size, read_png

HEADINGS = ("Rate over time", "Batch durations", "Retries and failures", "Reported rows by reason", "Last error")
# Anything a browser would fetch: a URL in src/href/url(), an import, a script, a linked file.
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(|@import|<script|<link|<img|<iframe""",
                      re.IGNORECASE)


def _section(page: str, ident: str) -> str:
    start = page.index(f'<section id="{ident}">')
    return page[start:page.index("</section>", start)]


def _visible_text(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.split("</style>", 1)[1]))


def test_the_page_of_a_real_upgrade(engine, alembic_cfg, tmp_path):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 2_000, seed=4)
    migrations.upgrade(migrations.alembic_config(engine.url, {"batch_size": "100", "workers": "1"}), "head")
    run_id = scalar(engine, "SELECT id FROM orgmig_run WHERE step = 'user_settings_to_org'")
    path = tmp_path / "run.html"

    p = orgmig(engine.url, "report", str(run_id), "--html", str(path))

    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == (f"run {run_id} (user_settings_to_org upgrade, finished, 2,000/2,000 rows):"
                                f" report written to {path}")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    words = _visible_text(page)
    assert f"Run {run_id} · user_settings_to_org · upgrade" in words and "finished" in words
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in page
    assert "Rows done 2,000 of 2,000 · 100.0%" in words
    succeeded = scalar(engine, f"SELECT count(*) FROM orgmig_batch WHERE run_id = {run_id} AND status = 'succeeded'")
    assert succeeded == 20
    assert f"Batches {succeeded}" in words
    median = scalar(engine, "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) FROM orgmig_batch"
                            f" WHERE run_id = {run_id} AND status = 'succeeded'")
    assert f"{fmt_ms(median)} median" in words
    # one bar per batch, in the order they finished, with the median and p95 lines
    durations = _section(page, "durations")
    assert durations.count('<rect class="bar') == succeeded
    assert 'class="marker median"' in durations and 'class="marker p95"' in durations
    assert 'class="marker average"' in _section(page, "rate")
    assert _section(page, "rate").count('<rect class="bar') >= 1
    # reported rows: a bar and its count per reason, as orgmig_report has them
    reasons = dict(fetch_all(engine,
        "SELECT reason, count(*) FROM orgmig_report WHERE step = 'user_settings_to_org' GROUP BY reason"))
    assert set(reasons) >= {"missing_keycloak_user_id", "duplicate_keycloak_user_id"}
    chart = _section(page, "reasons")
    for reason, count in reasons.items():
        assert re.search(rf">{reason}</text>.*?>{count:,}(?:  \(|</text>)", chart), reason
    assert f"Reported rows {sum(reasons.values()):,}" in words
    assert "No batch needed a retry, and none failed." in words
    assert "None recorded for this run." in words
    # a second report of the same run replaces the file
    assert orgmig(engine.url, "report", str(run_id), "--html", str(path)).returncode == 0
    assert [f.name for f in tmp_path.iterdir()] == ["run.html"]


CONSOLE = re.compile(r"user_settings_to_org upgrade finished: (?P<rows>[\d,]+) rows in (?P<duration>[^(]+?)"
                     r" \((?P<rate>[^)]+)\), (?P<batches>[\d,]+) batches, (?P<retried>[\d,]+) retried")
SETTINGS = {"workers": 2, "batch_size": 100, "pause_ms": 20, "max_rows_per_second": 4_000, "target_batch_ms": 0,
            "lock_timeout_ms": 2_000, "statement_timeout_ms": 60_000, "max_batch_attempts": 5, "steer": True,
            "max_app_latency_ratio": 2.0}


def test_the_page_the_json_and_the_console_show_the_same_run(engine, alembic_cfg, tmp_path):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 2_000, seed=4)
    deploy = run_alembic(engine.url, "upgrade", "head", **{f"ORGMIG_{k.upper()}": str(v) for k, v in SETTINGS.items()})
    assert deploy.returncode == 0, deploy.stderr
    console = CONSOLE.search(deploy.stderr)
    assert console, deploy.stderr
    run_id = scalar(engine, "SELECT id FROM orgmig_run WHERE step = 'user_settings_to_org'")
    path = tmp_path / "run.html"

    assert orgmig(engine.url, "report", str(run_id), "--html", str(path)).returncode == 0
    as_json = orgmig(engine.url, "report", str(run_id), "--json")

    # the page says what the console said, figure for figure
    words = _visible_text(path.read_text(encoding="utf-8"))
    assert console["rows"] == "2,000" and console["batches"] == "20" and console["retried"] == "0"
    assert f"Rows done {console['rows']} of 2,000" in words
    assert f"Duration {console['duration']} Average rate {console['rate']}" in words
    assert f"Batches {console['batches']} 0 failed · {console['retried']} retried" in words
    # ... and so does the JSON, with the settings the run was started with
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert set(data) == {"run", "settings", "rows_done", "total_rows", "seconds", "rows_per_second", "batches",
                         "rate_buckets", "problems", "reported", "steering", "database", "generated_at"}
    assert (data["rows_done"], data["total_rows"]) == (2_000, 2_000)
    assert fmt_duration(data["seconds"]) == console["duration"] and fmt_rate(data["rows_per_second"]) == console["rate"]
    assert data["rows_per_second"] == data["rows_done"] / data["seconds"]
    assert data["settings"] == SETTINGS and list(data["settings"]) == list(SETTINGS)
    assert "Settings workers 2 · batch size 100 rows · pause after each batch 20 ms · max rows/s 4,000 ·" \
           " target batch time off · lock timeout 2.0 s · statement timeout 1 min 00 s · attempts per batch 5" in words
    run = data["run"]
    assert (run["id"], run["step"], run["direction"], run["status"], run["state"], run["live"]) == \
        (run_id, "user_settings_to_org", "upgrade", "finished", "finished", False)
    assert run["finished_at"] and run["last_error"] is None and data["database"] == engine.url.database
    batches = data["batches"]
    assert (batches["total"], batches["succeeded"], batches["failed"], batches["retried"]) == (20, 20, 0, 0)
    assert batches["median_ms"] == scalar(engine, "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)"
                                                  f" FROM orgmig_batch WHERE run_id = {run_id}")
    buckets = data["rate_buckets"]["buckets"]
    assert sum(b["rows"] for b in buckets) == 2_000 and buckets[0]["start_s"] == 0
    assert abs(len(buckets) * data["rate_buckets"]["seconds"] - data["seconds"]) < 1e-6
    assert data["problems"] == {"total": 0, "shown": []}
    # reported rows by reason, each with its first rows, as orgmig_report has them
    with engine.connect() as conn:
        expected = {reason: (n, ids) for reason, n, ids in conn.execute(text(
            "SELECT reason, count(*), (array_agg(source_id ORDER BY source_id))[1:5] FROM orgmig_report"
            " WHERE step = 'user_settings_to_org' GROUP BY reason"))}
    assert {x["reason"]: (x["total"], [s["id"] for s in x["samples"]]) for x in data["reported"]} == expected
    assert {s["table"] for x in data["reported"] for s in x["samples"]} == {"user_settings"}
    for x in data["reported"]:
        assert x["this_run"] == x["total"] and set(x) == {"reason", "total", "not_migrated", "this_run", "samples"}
        ids = ", ".join(str(s["id"]) for s in x["samples"])
        assert f"{x['reason']} user_settings {ids}" in words


def _hold_toy_b(toy, seconds: float | None):
    """An open transaction holding toy_b's lock, released after `seconds` (None: by the caller)."""
    blocker = toy.connect()
    blocker.execute(text("LOCK TABLE toy_b IN ACCESS EXCLUSIVE MODE"))
    timer = threading.Timer(seconds, blocker.rollback) if seconds is not None else None
    if timer:
        timer.start()
    return blocker, timer


def test_retries_a_failed_batch_and_the_last_error_are_shown_escaped(toy, tmp_path):
    blocker, timer = _hold_toy_b(toy, 1.0)
    try:
        run_step(toy, ToyCopy(), "upgrade", options(lock_timeout_ms=100, max_batch_attempts=50, batch_size=100))
    finally:
        timer.join()
        blocker.close()
    # a second step's run that fails: the lock held for longer than its attempts last
    blocker, _ = _hold_toy_b(toy, None)
    try:
        with pytest.raises(MigrationError):
            run_step(toy, _Failing(), "upgrade", options(lock_timeout_ms=50, max_batch_attempts=2, batch_size=100))
    finally:
        blocker.rollback()
        blocker.close()
    failed_id = scalar(toy, "SELECT id FROM orgmig_run WHERE step = 'toy_copy_again'")
    # what a person could put in the bookkeeping, escaped on the page
    execute(toy, f"UPDATE orgmig_run SET last_error = last_error || ' <b>&amp;</b>' WHERE id = {failed_id}")
    execute(toy, "INSERT INTO orgmig_report (step, source_table, source_id, reason, migrated, run_id)"
                 f" VALUES ('toy_copy_again', 'toy_a', 3, '<odd & reason>', true, {failed_id})")

    retried = render(collect(toy, 1))
    words = _visible_text(retried)
    assert "finished" in words and f"Rows done {ROWS:,} of {ROWS:,}" in words
    table = _section(retried, "retries")
    assert "<td class=\"status\">succeeded</td>" in table and "took more than one attempt" in table
    assert "succeeded after a retry" in _section(retried, "durations")
    assert 'class="bar retried"' in _section(retried, "durations")
    assert "no_payload" in _section(retried, "reasons") and f">{ROWS // 50:,}</text>" in _section(retried, "reasons")

    path = tmp_path / "failed.html"
    p = orgmig(toy.url, "report", str(failed_id), "--html", str(path))
    assert p.returncode == 0, p.stderr
    page = path.read_text(encoding="utf-8")
    assert not EXTERNAL.search(page)
    words = _visible_text(page)
    assert '<span class="pill failed">failed</span>' in page
    assert "Last error: 55P03 canceling statement due to lock timeout" in words
    assert "Batch duration — no batch finished yet" in words and "1 row of step toy_copy_again" in words
    assert "55P03 canceling statement due to lock timeout" in _section(page, "retries")
    assert '<tr class="failed">' in _section(page, "retries") and "1 failed" in words
    assert "&lt;b&gt;&amp;amp;&lt;/b&gt;" in _section(page, "last-error") and "<b>&amp;</b>" not in page
    assert "&lt;odd &amp; reason&gt;" in _section(page, "reasons") and "<odd" not in page
    # nothing of the rows' values: the toy's payloads are 'row N'
    assert not re.search(r"row \d", words)


class _Failing(ToyCopy):
    name = "toy_copy_again"

    def upgrade(self, conn, batch):
        conn.execute(text("INSERT INTO toy_b SELECT * FROM toy_a WHERE false"))  # waits for toy_b's lock
        return super().upgrade(conn, batch)


def test_an_unknown_run_and_a_bad_argument_are_one_line_and_exit_2(engine, alembic_cfg, tmp_path):
    path = tmp_path / "r.html"
    bare = orgmig(engine.url, "report", "1", "--html", str(path))
    assert bare.returncode == 2 and "no run 1: this database has no orgmig_run table" in bare.stderr
    migrations.upgrade(alembic_cfg, "0003")
    for args, message in (
        (["report", "42", "--html", str(path)], "orgmig: no run 42 in orgmig_run (`orgmig status` lists the runs)"),
        (["report", "abc", "--html", str(path)], "orgmig: run_id must be a whole number"),
        (["report", "1", "--html", str(tmp_path)], "is a directory"),
    ):
        p = orgmig(engine.url, *args)
        assert p.returncode == 2, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and message in p.stderr
        assert "Traceback" not in p.stderr
    assert not path.exists()


def test_rate_buckets_are_even_cover_the_run_and_keep_every_row():
    times = [0.5, 1.2, 1.9, 30.0, 59.0, 60.2] * 30  # 180 batches, 30 at each time
    points = [Point(at_s=t, rows=10, duration_ms=50, retried=False) for t in times]
    width, buckets = rate_buckets(points, elapsed_s=60.5, target=60)
    # 2 s buckets, stretched to 60.5 / 30 s each so that 30 of them cover the run exactly
    assert len(buckets) == 30 and width == 60.5 / 30 and sum(b.rows for b in buckets) == 1_800
    assert {b.seconds for b in buckets} == {width}, "every bucket as wide as the others"
    assert buckets[0].start_s == 0 and abs(buckets[-1].start_s + buckets[-1].seconds - 60.5) < 1e-9
    assert [b.rows for b in buckets if b.rows] == [900, 300, 600]
    # the last bucket holds the batches of its own time, its rate over its own width
    assert buckets[-1].rows == 600 and buckets[-1].rate == 600 / width
    # few batches, few buckets: about five batches each, not a saw of ones and twos
    steady = [Point(at_s=0.33 * i, rows=200, duration_ms=30, retried=False) for i in range(1, 34)]
    width, buckets = rate_buckets(steady, elapsed_s=11.0)
    assert len(buckets) == 6 and width == 11.0 / 6 and {b.seconds for b in buckets} == {width}
    assert rate_buckets([], 10.0) == (0.0, [])


# -- as a person sees it ------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
BLUE, AMBER, GREEN = (0x2F, 0x6D, 0xB5), (0xD9, 0x8C, 0x1F), (0x23, 0x80, 0x4F)  # report.css


def screenshot(html: Path, png: Path, width: int = 1280, height: int = 1600) -> None:
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--run-all-compositor-stages-before-draw",
         f"--user-data-dir={png.parent / 'chromium-profile'}", f"--window-size={width},{height}",
         f"--screenshot={png}", html.resolve().as_uri()],
        check=True, capture_output=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium),"
                                             " so the report's screenshot cannot be taken")
def test_the_page_as_a_person_sees_it(toy, tmp_path):
    blocker, timer = _hold_toy_b(toy, 0.6)
    try:
        run_step(toy, ToyCopy(sleep_ms_per_row=0.2), "upgrade", options(lock_timeout_ms=100, max_batch_attempts=50))
    finally:
        timer.join()
        blocker.close()
    html, png = tmp_path / "run.html", tmp_path / "run.png"
    page = render(collect(toy, 1))
    html.write_text(page, encoding="utf-8")
    # the rate chart's buckets are drawn side by side, each as wide as the others
    widths = re.findall(r'<rect class="bar[^"]*" x="[\d.]+" y="[\d.]+" width="([\d.]+)"', _section(page, "rate"))
    assert len(widths) >= 2 and len(set(widths)) == 1, widths
    assert "Settings workers 1 · batch size 50 rows · pause after each batch off" in _visible_text(page)

    screenshot(html, png)

    data = png.read_bytes()
    assert png_size(data) == (1280, 1600)
    image = read_png(data)
    colours = Counter(image.pixels(step=2))
    background, share = colours.most_common(1)[0]
    assert share < 0.75 * sum(colours.values()), "the page is (nearly) one colour"
    assert len(colours) > 200, "too few colours for text and charts"
    assert colours[BLUE] > 2_000, "no chart bars drawn"
    assert colours[AMBER] > 100, "the retried batch is not drawn"
    assert colours[GREEN] > 200, "no progress bar drawn"
    ink = sum(n for (r, g, b), n in colours.items() if max(r, g, b) - min(r, g, b) < 40 and r + g + b < 450)
    assert ink > 3_000, "hardly any text"  # dark grey pixels, a quarter of them sampled


def test_an_installation_whose_run_table_has_no_settings_column_runs_and_reports(engine, alembic_cfg):
    """A database whose revision 0003 was applied by an orgmig that had no orgmig_run.settings
    and no steering tables: runs go on (recording no settings, unsteered, saying why) and their
    report and `orgmig status` work instead of failing."""
    migrations.upgrade(alembic_cfg, "0003")
    execute(engine, "ALTER TABLE orgmig_run DROP COLUMN settings; DROP TABLE orgmig_steer_decision, orgmig_steer")
    seed_legacy(engine, 300, seed=5)
    deploy = run_alembic(engine.url, "-x", "batch_size=5", "-x", "workers=1", "upgrade", "head")
    assert deploy.returncode == 0, deploy.stderr[-2000:]
    assert "orgmig_steer is missing (this database's revision 0003 came from an earlier orgmig)" in deploy.stderr
    assert orgmig(engine.url, "status").returncode == 0
    run_id = scalar(engine, "SELECT max(id) FROM orgmig_run WHERE step = 'user_settings_to_org'")
    as_json = orgmig(engine.url, "report", str(run_id), "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["settings"] is None
