"""A killed export resumes from its last committed page and ends as an uninterrupted one would."""

from __future__ import annotations

import math
import signal
import threading
import time
from urllib.parse import quote

import pytest
from sqlalchemy import text

from app.config import get_settings
from tests.fakes.okta import FakeOkta
from tests.fakes.tenant import make_tenant
from tests.support.db import THIS_DATABASE, scalar
from tests.support.idp import export_subprocess, failed_checks, fingerprint, last_run, rows, run_export
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def tenant():
    return make_tenant(3000, 30, seed=21)


def plain_user_pages(fake: FakeOkta) -> list:
    """Requests of the plain user listing (DEPROVISIONED users are a filtered listing)."""
    return [r for r in fake.requests_matching("/api/v1/users") if "filter" not in r.query]


def test_sigkill_mid_export_then_resume(tenant, provider_env, snapshot_db, snapshot_engine):
    with FakeOkta(tenant) as fake:
        env = {"OKTA_BASE_URL": fake.base_url, "OKTA_API_TOKEN": fake.api_token}
        provider_env(**env)
        # An uninterrupted export, for comparison.
        assert run_export(snapshot_db, "--provider", "okta").code == 0
        uninterrupted = fingerprint(snapshot_engine, "okta")
        total_pages = len(plain_user_pages(fake))
        with snapshot_engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE idp_membership, idp_group, idp_user, idp_export_cursor, idp_export_run")

        # Slow user pages so the kill lands in the middle of the listing.
        fake.faults.slow(0.15, 10_000, path_prefix="/api/v1/users")
        fake.reset_requests()
        proc = export_subprocess(snapshot_db, env, "--provider", "okta")
        wait_until(lambda: (scalar(snapshot_engine, "SELECT max(pages) FROM idp_export_cursor WHERE stream = 'users'")
                            or 0) >= 3, 30, alive=proc, what="the export getting going")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL

        killed = last_run(snapshot_engine, "okta")
        assert killed.status == "running"
        [users_cursor] = rows(snapshot_engine, "SELECT pages, cursor, done FROM idp_export_cursor "
                                               "WHERE run_id = :r AND stream = 'users'", r=killed.id)
        assert not users_cursor.done and users_cursor.cursor
        fake.faults.clear()
        fake.reset_requests()

        result = run_export(snapshot_db, "--provider", "okta")

        assert result.code == 0, result.stderr
        assert "resumed" in result.stdout
        # It went on from the page after the last committed one, not from zero.
        resumed_pages = plain_user_pages(fake)
        assert resumed_pages and all("after" in r.query for r in resumed_pages)
        assert len(resumed_pages) == total_pages - users_cursor.pages
        assert resumed_pages[0].query["after"] in users_cursor.cursor
        finished = last_run(snapshot_engine, "okta")
        assert (finished.id, finished.status) == (killed.id, "finished")
        assert fingerprint(snapshot_engine, "okta") == uninterrupted
        assert failed_checks(snapshot_engine) == []


def test_failed_export_resumes_after_the_cause_is_fixed(tenant, provider_env, snapshot_db, snapshot_engine):
    with FakeOkta(tenant) as fake:
        provider_env(**fake.settings(), ORGMIG_IDP_RETRY_ATTEMPTS="3")
        group = fake.okta_group_id(next(iter(tenant.groups)))
        fake.faults.add_5xx(3, 500, path_prefix=f"/api/v1/groups/{group}/users")
        failed = run_export(snapshot_db, "--provider", "okta")
        assert failed.code == 1
        [line] = failed.messages
        assert f"GET /api/v1/groups/{group}/users returned 500" in line and "gave up after 3 attempts" in line
        run = last_run(snapshot_engine, "okta")
        assert run.status == "failed" and "returned 500" in run.last_error
        done = {r.stream for r in rows(snapshot_engine, "SELECT stream FROM idp_export_cursor WHERE done")}
        fake.faults.clear()
        fake.reset_requests()

        result = run_export(snapshot_db, "--provider", "okta")

        assert result.code == 0, result.stderr
        # Finished streams were not read again; the others went on from their cursors.
        again = {f"members:{r.path.split('/')[4]}" for r in fake.requests_matching("/api/v1/groups/")}
        assert f"members:{group}" in again and not again & done
        assert all("after" in r.query for r in plain_user_pages(fake))
        assert [r.status for r in rows(snapshot_engine, "SELECT status FROM idp_export_run")] == ["finished"]
        assert failed_checks(snapshot_engine) == []


def test_a_page_write_that_times_out_on_a_lock_is_retried(provider_env, snapshot_db, snapshot_engine):
    tenant = make_tenant(400, 10, seed=22)
    lock_ms = get_settings().lock_timeout_ms
    with FakeOkta(tenant) as fake:
        provider_env(**fake.settings())
        held = threading.Event()

        def hold_lock() -> None:
            with snapshot_engine.begin() as conn:
                conn.exec_driver_sql("LOCK TABLE idp_export_cursor IN EXCLUSIVE MODE")
                held.set()
                # Held until the export waits for it (however slow the host), then for longer
                # than one lock timeout, so at least one page write times out and is retried.
                with snapshot_engine.connect() as watcher:
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline and not watcher.exec_driver_sql(
                            "SELECT count(*) FROM pg_locks WHERE NOT granted"
                            f" AND relation = 'idp_export_cursor'::regclass AND {THIS_DATABASE}").scalar():
                        watcher.rollback()
                        time.sleep(0.02)
                time.sleep(lock_ms / 1000 + 0.3)

        holder = threading.Thread(target=hold_lock)
        holder.start()
        held.wait(5)
        result = run_export(snapshot_db, "--provider", "okta")
        holder.join()

    assert result.code == 0, result.stderr
    assert "55P03" in result.logs and "retrying" in result.logs
    assert last_run(snapshot_engine, "okta").users_count == 400
    assert failed_checks(snapshot_engine) == []


def killed_at(engine, run_id: int, stream: str, cursor: str, *, pages: int, items: int) -> None:
    """The run as a kill -9 leaves it (`running`), with this checkpoint of `stream`, whether or not
    a page of it had been written."""
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO idp_export_cursor (run_id, stream, cursor, pages, items)"
                          " VALUES (:run, :stream, :cursor, :pages, :items)"
                          " ON CONFLICT (run_id, stream) DO UPDATE SET cursor = EXCLUDED.cursor, done = false,"
                          " pages = EXCLUDED.pages, items = EXCLUDED.items"),
                     {"run": run_id, "stream": stream, "cursor": cursor, "pages": pages, "items": items})
        conn.execute(text("UPDATE idp_export_run SET status = 'running', last_error = NULL WHERE id = :run"),
                     {"run": run_id})


def test_a_checkpoint_left_on_an_expired_cursor_starts_its_listing_over(provider_env, snapshot_db, snapshot_engine):
    tenant = make_tenant(700, 12, seed=23)
    with FakeOkta(tenant) as fake:
        provider_env(**fake.settings())
        everyone = sorted(u["id"] for u in fake.expected_users())
        listed = len(fake.expected_users(include_deprovisioned=False))
        real_pages = math.ceil(listed / 200)
        # The plain user listing does not end: after its real pages, `[]` and a fresh cursor each time.
        fake.faults.empty_pages("/api/v1/users", query={"filter": None})
        stopped = run_export(snapshot_db, "--provider", "okta")
        assert stopped.code == 1 and "3 empty pages in a row" in stopped.messages[0]
        run = last_run(snapshot_engine, "okta")

        # What a kill -9 just after the last real page committed (before the third empty page, so
        # before the rewind) leaves: the listing's checkpoint on the next link that page handed
        # out (the first empty page's, as the provider sent it), after every real page.
        first_empty = plain_user_pages(fake)[real_pages]
        assert first_empty.query["after"] and first_empty.status == 200
        link = f"{fake.base_url}{first_empty.path}?" + "&".join(f"{k}={quote(v, safe='')}"
                                                                 for k, v in first_empty.query_list)
        killed_at(snapshot_engine, run.id, "users", link, pages=real_pages, items=listed)
        # Fixed at the provider: the listing ends, and the cursors of its empty pages are refused
        # as expired (400 E0000031).
        fake.faults.clear()
        fake.reset_requests()

        result = run_export(snapshot_db, "--provider", "okta")

        assert result.code == 0, result.everything[-3000:]
        assert f"okta export run {run.id} finished (full, resumed)" in result.stdout
        [line] = [line for line in result.logs.splitlines() if "restarted" in line]
        assert line.startswith("WARNING app.idp okta: listing users restarted from its first page: the provider"
                               " refused the cursor of its checkpoint as invalid or expired (GET /api/v1/users"
                               " returned 400: E0000031")
        # The expired cursor asked for once, then the listing from its first page to its end.
        plain = plain_user_pages(fake)
        assert plain[0].query["after"] == first_empty.query["after"] and plain[0].status == 400
        assert "after" not in plain[1].query and len(plain) == 1 + real_pages
        # Every account exactly once, the deprovisioned ones too.
        assert sorted(r.external_id for r in rows(snapshot_engine, "SELECT external_id FROM idp_user")) == everyone
        assert last_run(snapshot_engine, "okta").users_count == len(everyone)
        [users] = rows(snapshot_engine, "SELECT done, pages, items FROM idp_export_cursor WHERE stream = 'users'")
        assert (users.done, users.pages, users.items) == (True, real_pages, listed)
        assert failed_checks(snapshot_engine) == []


def test_a_checkpoint_refused_for_another_reason_stops_naming_restart(provider_env, snapshot_db, snapshot_engine):
    tenant = make_tenant(700, 12, seed=24)
    with FakeOkta(tenant) as fake:
        provider_env(**fake.settings())
        fake.faults.empty_pages("/api/v1/users", query={"filter": None})
        assert run_export(snapshot_db, "--provider", "okta").code == 1
        run = last_run(snapshot_engine, "okta")
        fake.faults.clear()
        # A checkpoint the provider refuses, not as an expired cursor (400 E0000001: a page size
        # it does not take): every rerun sends it again.
        refused = f"{fake.base_url}/api/v1/users?after=00u&limit=0"
        killed_at(snapshot_engine, run.id, "users", refused, pages=1, items=200)

        for _ in range(2):
            result = run_export(snapshot_db, "--provider", "okta")
            assert result.code == 1
            assert result.messages == [
                "orgmig export: GET /api/v1/users returned 400: E0000001: Api validation failed: limit (asking for"
                " the checkpoint of listing users: while it is refused, `orgmig export --provider okta --restart`"
                " sets this run aside and starts a new one)"]
            assert "restarted" not in result.logs
            [users] = rows(snapshot_engine, "SELECT cursor FROM idp_export_cursor WHERE stream = 'users'"
                                            " AND run_id = :r", r=run.id)
            assert users.cursor == refused

        restarted = run_export(snapshot_db, "--provider", "okta", "--restart")
        assert restarted.code == 0, restarted.everything[-3000:]
        assert f"unfinished run {run.id} abandoned" in restarted.stdout
        assert sorted(r.external_id for r in rows(snapshot_engine, "SELECT external_id FROM idp_user")) == sorted(
            u["id"] for u in fake.expected_users())


def test_a_checkpoint_of_another_okta_base_url_is_not_followed(provider_env, snapshot_db, snapshot_engine):
    """The token goes with every request: a run resumed after OKTA_BASE_URL changed does not send
    it to the host its checkpoints name, and says how to start over."""
    tenant = make_tenant(700, 12, seed=25)
    with FakeOkta(tenant) as before, FakeOkta(tenant) as now:
        provider_env(**before.settings())
        before.faults.empty_pages("/api/v1/users", query={"filter": None})
        assert run_export(snapshot_db, "--provider", "okta").code == 1
        run = last_run(snapshot_engine, "okta")
        # Its checkpoints are links of that host (the users listing's at least, however far it got).
        killed_at(snapshot_engine, run.id, "users", f"{before.base_url}/api/v1/users?limit=200", pages=0, items=0)
        before.reset_requests()
        provider_env(**now.settings())

        result = run_export(snapshot_db, "--provider", "okta")

        assert result.code == 1
        [line] = result.messages
        port = before.base_url.rsplit(":", 1)[1]
        assert f"failed: the stored next-page link points to 127.0.0.1:{port}, outside OKTA_BASE_URL" in line
        assert line.endswith(": while it is refused, `orgmig export --provider okta --restart` sets this run aside"
                             " and starts a new one)")
        assert before.requests == []
        restarted = run_export(snapshot_db, "--provider", "okta", "--restart")
        assert restarted.code == 0, restarted.everything[-3000:]
        assert f"unfinished run {run.id} abandoned" in restarted.stdout
        assert before.requests == []
        assert sorted(r.external_id for r in rows(snapshot_engine, "SELECT external_id FROM idp_user")) == sorted(
            u["id"] for u in now.expected_users())
