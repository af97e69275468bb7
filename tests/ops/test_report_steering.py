"""`orgmig report`'s steering section, from a real steered run of the toy step on PostgreSQL: the
run starts alone (no limit), an application arrives (a quarter, a fresh baseline), its commits
stall once (a cut), then it leaves (alone again). The page marks each decision, draws the signal
and the allowance, and lists why; in Chromium it shows (the PNG is looked at by colour)."""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
from sqlalchemy import text

from app.ops.report import collect
from app.ops.report_html import render
from app.ops.report_json import as_json
from tests.batch.test_alone import alone_then_a_client
from tests.batch.test_steering import _wait_for
from tests.ops.test_report import CHROMIUM, _section, _visible_text, screenshot
from tests.support.png import read_png

AMBER, RED, PURPLE = (0xD9, 0x8C, 0x1F), (0xB4, 0x23, 0x18), (0x7A, 0x3D, 0xB8)  # report.css


@pytest.fixture
def steered_run(toy):
    """Run 1 of the toy step: alone, an application, a stall of its commits, alone again."""
    def stall(watch) -> None:
        with watch.connect() as conn, conn.begin():  # the probe's commit waits 1.5 s
            conn.execute(text("SELECT 1 FROM orgmig_steer FOR UPDATE"))
            time.sleep(1.5)
        _wait_for(watch, "SELECT count(*) FROM orgmig_steer_decision WHERE action = 'cut'")

    worker, result = alone_then_a_client(toy, stall)
    assert not worker.is_alive() and result["r"].rows_done == 1000
    return toy


def test_the_page_marks_each_decision_and_draws_the_signal(steered_run, tmp_path):
    report = collect(steered_run, 1)
    actions = [d.action for d in report.steering.decisions]
    assert actions[:2] == ["start", "alone"] and {"client", "baseline", "cut"} <= set(actions), actions
    assert len(report.steering.readings) >= 3 and report.steering.target == 20.0
    page = render(report)
    section = _section(page, "steering")
    for action in set(actions):
        assert f'<line class="decision {action}"' in section
    assert '<polyline class="signal"' in section and '<polyline class="allowance"' in section
    assert '<rect class="alone-span"' in section and "target 20x" in section
    words = " ".join(re.sub(r"<[^>]+>", " ", section).split())
    assert "a client of the database arrived (pid " in words and "breach: signal" in words
    assert "steering on · breach above 20x the commit baseline" in _visible_text(page)
    data = as_json(report)["steering"]
    assert [d["action"] for d in data["decisions"]] == actions and data["readings"]

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium): the page is not looked at")
    html, png = tmp_path / "run.html", tmp_path / "run.png"
    # the steering section alone, at the top of the page
    top = re.sub(r'<section id="rate">.*?</section>', "", page, flags=re.S)
    html.write_text(top, encoding="utf-8")
    screenshot(html, png, height=1400)
    colours = Counter(read_png(png.read_bytes()).pixels(step=1))
    assert colours[AMBER] > 300, "no allowance drawn"
    assert colours[RED] > 100, "no cut or target drawn"
    assert colours[PURPLE] > 50, "the client's arrival is not marked"
