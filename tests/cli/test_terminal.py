"""The terminal's rough edges, each as a person meets it: `-v` after the verb, per-verb help,
numbers and plurals, a watch into a pipe, NO_COLOR, the seed summary's secret counts, the
downgrade summary, demo's --database-url, long id lists."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time

import pytest

from app.cli.collections import _line
from app.ops import migrations
from app.ops.seed import seed_legacy
from tests.support.migrate import ROOT, alembic_env, orgmig, run_alembic

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/nodb"


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | env
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=120)


def test_v_is_accepted_after_the_verb_as_before_it():
    for args in (["-v", "status"], ["status", "-v"], ["collections", "plan", "-v", "--redis-url", "redis://x:1"]):
        done = _cli(*args, "--database-url", UNREACHABLE)
        assert done.returncode == 2, done.stderr
        assert "unrecognized arguments" not in done.stderr and done.stderr.startswith("orgmig: cannot connect")


@pytest.mark.parametrize(("verb", "words"), [
    ("verify", ["failing checks first", "--failed-only", "Exit codes: 0 every check passed"]),
    ("demo", ["embedded PostgreSQL", "orgmig_demo", "Exit codes:"]),
    ("seed-legacy", ["run `alembic upgrade 0001` first", "same seed", "Exit codes: 0 seeded"]),
    ("report", ["first column of `orgmig status`", "Exit codes: 0 written"]),
])
def test_each_verb_explains_itself_in_its_help(verb, words):
    helped = _cli(verb, "--help")
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    for w in words:
        assert w in text, (verb, w)


def test_seed_legacy_says_its_secret_counts_are_values(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0001")
    done = orgmig(engine.url, "seed-legacy", "--users", "1000", "--seed", "3")
    assert done.returncode == 0, done.stderr
    values = [line for line in done.stdout.splitlines() if "secret values" in line]
    assert values and all(line.split()[-2] == "*" for line in values)
    assert done.stdout.splitlines()[-1].strip() == (
        "* values, not rows: each row has 4 secret columns (llm_api_key, llm_api_key_for_byor, search_api_key,"
        " sandbox_api_key), each NULL or one value")


def test_demo_refuses_a_database_url_naming_another_database():
    done = _cli("demo", "--database-url", "postgresql://someone@127.0.0.1:1/shop")
    assert done.returncode == 2
    assert done.stderr == ("orgmig: orgmig demo uses a database of its own, orgmig_demo, dropped and created again"
                           " on each run, and --database-url names database shop: give the server's URL without a"
                           " database (or with /orgmig_demo), such as"
                           " postgresql+psycopg://someone@127.0.0.1:1/orgmig_demo\n")


def test_summaries_count_in_words_and_the_downgrade_says_what_is_left(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    seed_legacy(engine, 1, seed=1)
    up = run_alembic(engine.url, "upgrade", "0004")
    assert up.returncode == 0, up.stderr
    assert re.search(r"user_settings_to_org upgrade finished: 1 row in [\d.]+ s \([\d,.]+ rows/s\), 1 batch, 0 retried",
                     up.stderr), up.stderr
    down = run_alembic(engine.url, "downgrade", "0003")
    assert down.returncode == 0, down.stderr
    (line,) = [ln for ln in down.stderr.splitlines() if "migrated: " in ln]
    assert line.split("[app.summary]")[1].strip().startswith("after the downgrade: legacy rows: 1; migrated: 0;")


def test_status_watch_into_a_pipe_prints_each_refresh_as_it_comes(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "0003")
    watch = subprocess.Popen([sys.executable, "-m", "app.cli", "status", "--watch", "0.2"], cwd=ROOT,
                             env=alembic_env(engine.url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        while sum("current revision: 0003" in line for line in seen) < 2:
            seen.append(watch.stdout.readline())  # blocks until each refresh is flushed
        watch.terminate()  # SIGTERM, as a service manager stops it
        rest, err = watch.communicate(timeout=10)
    finally:
        if watch.poll() is None:
            watch.kill()
    assert watch.returncode == 0 and "Traceback" not in err
    # Into a pipe nothing is wrapped: the database line is whole, however long.
    assert all(len(line) < 10_000 for line in seen)
    assert f"database: {engine.url.render_as_string(hide_password=True)}" in "".join(seen)


def test_no_color_leaves_no_styling_at_all_on_a_terminal(engine, alembic_cfg):
    migrations.upgrade(alembic_cfg, "head")

    def on_a_terminal(**env: str) -> bytes:
        pid, fd = pty.fork()
        if pid == 0:  # the child: stdout is the terminal
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "-m", "app.cli", "status"],
                      {**alembic_env(engine.url), "TERM": "xterm-256color", "COLUMNS": "200", **env})
        out = b""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.waitpid(pid, 0)
        return out

    assert b"\x1b[3m" in on_a_terminal()  # styled on a terminal: the tables' titles are in italics
    plain = on_a_terminal(NO_COLOR="1")
    assert b"batch runs" in plain and b"\x1b[" not in plain


def test_a_plan_line_lists_a_few_ids_of_a_long_list():
    line = _line({"old_id": "abc", "status": "reported", "reason": "email_shared_by_old_accounts",
                  "old_ids": [f"id{i}" for i in range(114)]})
    assert '"old_ids": ["id0", "id1", "id2", "id3", "id4", "and 109 more (--json lists them)"]' in line
    move = _line({"old_id": "abc", "status": "move", "user_id": 7, "collections": 1, "members": 3000})
    assert move.endswith("-> user 7: 1 collection, 3,000 members")
