"""`orgmig export --provider okta` against a fake Okta over loopback HTTP, into PostgreSQL."""

from __future__ import annotations

import json
import math
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fakes.okta import FakeOkta
from tests.fakes.tenant import make_tenant
from tests.support.idp import failed_checks, fingerprint, last_run, rows, run_export, snapshot

USERS, GROUPS = 3000, 40


@pytest.fixture(scope="module")
def tenant():
    return make_tenant(USERS, GROUPS, seed=11)


@pytest.fixture(scope="module")
def small_tenant():
    return make_tenant(700, 20, seed=12)


@pytest.fixture
def small_okta(small_tenant, provider_env):
    with FakeOkta(small_tenant) as fake:
        provider_env(**fake.settings())
        yield fake


@pytest.fixture
def okta(tenant, provider_env):
    with FakeOkta(tenant) as fake:
        provider_env(**fake.settings())
        yield fake


def strip(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("_links", "_embedded")}


def assert_snapshot_equals_fake(engine, fake: FakeOkta) -> None:
    snap = snapshot(engine, "okta")
    expected_users = {u["id"]: u for u in fake.expected_users()}
    assert snap["users"].keys() == expected_users.keys()
    for uid, e in expected_users.items():
        got = snap["users"][uid]
        assert got["raw"] == strip(e), uid
        assert (got["status"], got["login"], got["email"], got["first_name"], got["last_name"]) == (
            e["status"], e["profile"]["login"], e["profile"]["email"], e["profile"]["firstName"],
            e["profile"]["lastName"])
        assert got["updated"] == e["lastUpdated"] and got["created"] == e["created"]
    expected_groups = {g["id"]: g for g in fake.expected_groups()}
    assert {gid for _, gid in snap["groups"]} == expected_groups.keys()
    for gid, e in expected_groups.items():
        got = snap["groups"][("group", gid)]
        assert (got["name"], got["group_type"], got["raw"]) == (e["profile"]["name"], e["type"], strip(e))
        if e["type"] == "BUILT_IN":
            assert ("group", gid) not in snap["members"]  # Everyone: every user, not listed
        else:
            assert set(snap["members"].get(("group", gid), {})) == set(fake.expected_group_members(gid)), gid


def minimum_requests(fake: FakeOkta) -> int:
    users = fake.expected_users()
    deprovisioned = sum(1 for u in users if u["status"] == "DEPROVISIONED")
    groups = fake.expected_groups()
    members = sum(max(1, math.ceil(len(fake.expected_group_members(g["id"])) / 1000))
                  for g in groups if g["type"] != "BUILT_IN")
    return (max(1, math.ceil((len(users) - deprovisioned) / 200)) + max(1, math.ceil(deprovisioned / 200))
            + max(1, math.ceil(len(groups) / 10000)) + members)


def test_full_export_equals_the_tenant(okta, snapshot_db, snapshot_engine):
    result = run_export(snapshot_db, "--provider", "okta")

    assert result.code == 0, result.stderr
    assert "okta export run" in result.stdout and f"{USERS} users" in result.stdout
    assert_snapshot_equals_fake(snapshot_engine, okta)
    statuses = {r.status for r in rows(snapshot_engine, "SELECT DISTINCT status FROM idp_user")}
    assert {"DEPROVISIONED", "SUSPENDED", "STAGED", "ACTIVE"} <= statuses
    # The plain list leaves DEPROVISIONED users out: they were asked for on their own.
    filters = {r.query.get("filter") for r in okta.requests_matching("/api/v1/users")}
    assert 'status eq "DEPROVISIONED"' in filters
    # Memberships were read per group, never per user.
    assert okta.request_count("/api/v1/users/") == 0
    assert len(okta.requests) == minimum_requests(okta)
    run = last_run(snapshot_engine, "okta")
    assert (run.status, run.users_count, run.requests) == ("finished", USERS, len(okta.requests))
    assert failed_checks(snapshot_engine) == []


def test_reexport_of_an_unchanged_tenant_is_identical(small_okta, snapshot_db, snapshot_engine):
    assert run_export(snapshot_db, "--provider", "okta").code == 0
    first = fingerprint(snapshot_engine, "okta")
    second_run = run_export(snapshot_db, "--provider", "okta")

    assert second_run.code == 0
    assert fingerprint(snapshot_engine, "okta") == first
    assert [r.status for r in rows(snapshot_engine, "SELECT status FROM idp_export_run ORDER BY id")] == [
        "finished", "finished"]


def test_a_finished_export_leaves_the_accounts_tables_analyzed(small_okta, snapshot_db, snapshot_engine):
    """A sync or a reconcile straight after the export is planned with statistics of the snapshot
    as it is (without, the comparison joins every account by nested loops: minutes for seconds)."""
    analyzed = ("SELECT tablename, count(*) AS n FROM pg_stats"
                " WHERE tablename IN ('idp_user', 'idp_group', 'idp_membership') GROUP BY tablename")
    with snapshot_engine.begin() as conn:  # the database is shared by the module's tests: no statistics left
        conn.exec_driver_sql("DELETE FROM pg_statistic WHERE starelid IN ('idp_user'::regclass,"
                             " 'idp_group'::regclass, 'idp_membership'::regclass)")
    assert rows(snapshot_engine, analyzed) == []

    assert run_export(snapshot_db, "--provider", "okta").code == 0

    assert sorted(r.tablename for r in rows(snapshot_engine, analyzed)) == ["idp_group", "idp_membership", "idp_user"]
    # the planner's row count is what was exported (an unanalyzed table reads -1: never counted)
    [estimate] = rows(snapshot_engine, "SELECT reltuples FROM pg_class WHERE relname = 'idp_user'")
    assert estimate.reltuples == len(small_okta.expected_users())


def test_incremental_export_fetches_only_what_changed(provider_env, snapshot_db, snapshot_engine):
    tenant = make_tenant(800, 20, seed=5)
    with FakeOkta(tenant) as fake:
        provider_env(**fake.settings())
        assert run_export(snapshot_db, "--provider", "okta").code == 0
        full_run = last_run(snapshot_engine, "okta").id

        since = datetime.now(UTC) - timedelta(seconds=1)
        users = list(tenant.users.values())
        renamed, suspended, retired = users[10], users[11], users[12]
        tenant.touch_user(renamed.id, first_name="Renamed")
        tenant.set_status(suspended.id, "SUSPENDED")
        tenant.set_status(retired.id, "DEPROVISIONED")
        newcomer = tenant.add_user(login="new.user@example.com", email="new.user@example.com",
                                   first_name="New", last_name="User")
        target_group = next(g for g in tenant.groups.values() if g.kind == "role")
        tenant.add_member(target_group.id, newcomer.id)
        fake.reset_requests()

        result = run_export(snapshot_db, "--provider", "okta", "--since", since.isoformat())

        assert result.code == 0, result.stderr
        changed = {fake.okta_user_id(u.id) for u in (renamed, suspended, retired, newcomer)}
        # One page of changed users, one of changed DEPROVISIONED users.
        assert fake.request_count("/api/v1/users") == 2
        assert all("lastUpdated gt" in r.query["filter"] for r in fake.requests_matching("/api/v1/users"))
        # Only the members of the one group whose membership changed were read again.
        assert {r.path for r in fake.requests_matching("/api/v1/groups/")} == {
            f"/api/v1/groups/{fake.okta_group_id(target_group.id)}/users"}
        snap = snapshot(snapshot_engine, "okta")
        assert snap["users"][fake.okta_user_id(renamed.id)]["first_name"] == "Renamed"
        assert snap["users"][fake.okta_user_id(suspended.id)]["status"] == "SUSPENDED"
        assert snap["users"][fake.okta_user_id(retired.id)]["status"] == "DEPROVISIONED"
        assert fake.okta_user_id(newcomer.id) in snap["members"][("group", fake.okta_group_id(target_group.id))]
        incremental_run = last_run(snapshot_engine, "okta").id
        touched = {r.external_id for r in rows(snapshot_engine,
                                                "SELECT external_id FROM idp_user WHERE last_seen_run_id = :r",
                                                r=incremental_run)}
        assert touched == changed
        untouched = rows(snapshot_engine, "SELECT count(*) AS n FROM idp_user WHERE last_seen_run_id = :r", r=full_run)
        assert untouched[0].n == 800 - 3
        assert_snapshot_equals_fake(snapshot_engine, fake)
        assert failed_checks(snapshot_engine) == []


def test_rate_limits_and_faults_are_survived(small_tenant, provider_env, snapshot_db, snapshot_engine):
    # One-second windows: a 429 says "wait until the window resets", which is then near.
    with FakeOkta(small_tenant, window_seconds=1) as fake:
        provider_env(**fake.settings())
        _faults_survived(fake, snapshot_db, snapshot_engine)


def _faults_survived(okta, snapshot_db, snapshot_engine):
    okta.faults.add_429_storm(2, path_prefix="/api/v1/users")
    okta.faults.add_5xx(2, 503, path_prefix="/api/v1/groups")
    okta.faults.add_5xx(1, 500, path_prefix="/api/v1/users")
    okta.faults.slow(0.6, 2, path_prefix="/api/v1/users")
    okta.faults.truncate_body(2, path_prefix="/api/v1/users")
    okta.faults.malformed_json(1, path_prefix="/api/v1/groups/")
    okta.faults.drop_connection(1, path_prefix="/api/v1/groups/")

    result = run_export(snapshot_db, "--provider", "okta")

    assert result.code == 0, result.stderr
    assert okta.faults.pending == []
    assert_snapshot_equals_fake(snapshot_engine, okta)
    labels = [part for r in okta.requests if r.fault for part in r.fault.split("+")]
    assert len(labels) == 11
    assert "429 rate limited" in result.logs


def test_exhausted_window_waits_for_the_reset(small_tenant, provider_env, snapshot_db, snapshot_engine):
    with FakeOkta(small_tenant, rate_limits={"users": 3}, window_seconds=1) as fake:
        provider_env(**fake.settings())
        result = run_export(snapshot_db, "--provider", "okta")
        assert result.code == 0, result.stderr
        assert_snapshot_equals_fake(snapshot_engine, fake)
        # The client slowed down before the limit: no window saw a 429.
        assert fake.request_count("/api/v1/users", status=429) == 0


def test_wrong_token_is_one_clear_line(small_okta, provider_env, snapshot_db):
    provider_env(OKTA_API_TOKEN="00wrongTokenValue1234567890")

    result = run_export(snapshot_db, "--provider", "okta")

    assert result.code == 1
    lines = result.messages
    assert len(lines) == 1
    assert "returned 401" in lines[0] and "OKTA_API_TOKEN" in lines[0] and "/api/v1/" in lines[0]
    assert "00wrongTokenValue1234567890" not in result.everything


def test_missing_scope_names_the_scope(small_tenant, provider_env, snapshot_db):
    with FakeOkta(small_tenant, api_token_scopes={"okta.users.read"}) as fake:
        provider_env(**fake.settings())
        result = run_export(snapshot_db, "--provider", "okta")
    assert result.code == 1
    [line] = result.messages
    assert "GET /api/v1/groups returned 403" in line and "okta.groups.read" in line


def test_repeating_cursor_stops_with_a_clear_error(small_okta, snapshot_db, snapshot_engine):
    small_okta.faults.repeat_cursor("/api/v1/users")

    result = run_export(snapshot_db, "--provider", "okta")

    assert result.code == 1
    [line] = result.messages
    assert "GET /api/v1/users" in line and "cursor repeats" in line
    assert last_run(snapshot_engine, "okta").status == "failed"


def users_checkpoint(engine) -> tuple[str | None, int]:
    """The plain users listing's checkpoint: the `after` of the page a resume reads first (None:
    the first page) and the pages written before it (none, when no page was written yet)."""
    found = rows(engine, "SELECT cursor, pages FROM idp_export_cursor WHERE stream = 'users'")
    if not found:
        return None, 0
    [checkpoint] = found
    after = parse_qs(urlsplit(checkpoint.cursor).query)["after"][0] if checkpoint.cursor else None
    return after, checkpoint.pages


def test_endless_empty_pages_stop_with_a_clear_error_and_a_rerun_or_restart_gets_out(small_okta, snapshot_db,
                                                                                   snapshot_engine):
    everyone = {u["id"] for u in small_okta.expected_users()}
    users = [u["id"] for u in small_okta.expected_users(include_deprovisioned=False)]
    real_pages = math.ceil(len(users) / 200)

    def plain_requests() -> list:
        return [r for r in small_okta.requests_matching("/api/v1/users") if "filter" not in r.query]

    # The plain listing, after its real pages: `[]` and a fresh cursor, forever. Only that one: the
    # deprovisioned listing (same path) ends, so it never stops the export first and cancels this
    # listing wherever it had got to.
    small_okta.faults.empty_pages("/api/v1/users", query={"filter": None})

    result = run_export(snapshot_db, "--provider", "okta")

    assert result.code == 1
    [line] = result.messages
    assert line.startswith("orgmig export: okta: GET /api/v1/users: 3 empty pages in a row, each with a next-page"
                           " cursor (listing users)")
    assert "--restart" in line
    plain = plain_requests()
    assert len(plain) == real_pages + 3  # read for ever no more
    failed = last_run(snapshot_engine, "okta")
    assert failed.status == "failed"
    # The checkpoint is the cursor of a page with items, not one an empty page handed out. Pages are
    # written behind the reads, so how many were written when the listing stopped varies: the
    # checkpoint is the cursor that read the page after them.
    after, pages = users_checkpoint(snapshot_engine)
    assert pages < real_pages and after == plain[pages].query.get("after")

    # The provider still answers that way: the rerun resumes at the checkpoint, not read from the
    # start, and stops again, as quickly.
    small_okta.reset_requests()
    again = run_export(snapshot_db, "--provider", "okta")
    assert again.code == 1 and again.messages == [line]
    plain = plain_requests()
    assert plain[0].query.get("after") == after
    assert len(plain) == real_pages - pages + 3

    # Fixed at the provider: the plain rerun resumes and finishes with every account.
    small_okta.faults.clear()
    done = run_export(snapshot_db, "--provider", "okta")
    assert done.code == 0, done.everything[-3000:]
    assert f"okta export run {failed.id} finished (full, resumed)" in done.stdout
    assert {r.external_id for r in rows(snapshot_engine, "SELECT external_id FROM idp_user")} == everyone

    # Both listings of /api/v1/users endless (whichever stops first cancels the other): --restart
    # sets the unfinished run aside, says so, and exports every account.
    small_okta.faults.empty_pages("/api/v1/users")
    stopped = run_export(snapshot_db, "--provider", "okta")
    assert stopped.code == 1 and "3 empty pages in a row" in stopped.messages[0]
    stuck = last_run(snapshot_engine, "okta")
    small_okta.faults.clear()
    restarted = run_export(snapshot_db, "--provider", "okta", "--restart")
    assert restarted.code == 0, restarted.everything[-3000:]
    assert f"(full, unfinished run {stuck.id} abandoned)" in restarted.stdout
    assert rows(snapshot_engine, "SELECT status FROM idp_export_run WHERE id = :i", i=stuck.id)[0].status == "abandoned"
    assert last_run(snapshot_engine, "okta").status == "finished"
    assert {r.external_id for r in rows(snapshot_engine, "SELECT external_id FROM idp_user")} == everyone


def test_both_user_listings_endless_a_rerun_after_the_fix_resumes_with_every_account(small_okta, snapshot_db,
                                                                                     snapshot_engine):
    # The plain and the deprovisioned listing: whichever stops the export first cancels the other
    # wherever it had got to (its fetched pages written or not): a rerun resumes both all the same.
    small_okta.faults.empty_pages("/api/v1/users")
    for _ in range(2):
        stopped = run_export(snapshot_db, "--provider", "okta")
        assert stopped.code == 1 and "3 empty pages in a row" in stopped.messages[0]
    failed = last_run(snapshot_engine, "okta")

    small_okta.faults.clear()
    done = run_export(snapshot_db, "--provider", "okta")
    assert done.code == 0, done.everything[-3000:]
    assert f"okta export run {failed.id} finished (full, resumed)" in done.stdout
    assert snapshot(snapshot_engine, "okta")["users"].keys() == {u["id"] for u in small_okta.expected_users()}


def test_json_summary(small_okta, snapshot_db, snapshot_engine):
    result = run_export(snapshot_db, "--provider", "okta", "--json")
    assert result.code == 0, result.everything[-3000:]
    summary = json.loads(result.stdout)
    run = last_run(snapshot_engine, "okta")
    counts = rows(snapshot_engine, """SELECT (SELECT count(*) FROM idp_user) AS users,
                                             (SELECT count(*) FROM idp_group) AS groups,
                                             (SELECT count(*) FROM idp_membership) AS memberships""")[0]
    assert summary == {"provider": "okta", "run_id": run.id, "mode": "full", "since": None, "resumed": False,
                       "abandoned_run_id": None, "users": counts.users, "groups": counts.groups,
                       "memberships": counts.memberships, "requests": len(small_okta.requests),
                       "pages": summary["pages"], "seconds": summary["seconds"]}
    assert summary["pages"] >= 4 and summary["seconds"] > 0

    since = run_export(snapshot_db, "--provider", "okta", "--since", "2025-05-01T00:00:00Z", "--json")
    assert since.code == 0 and json.loads(since.stdout)["since"] == "2025-05-01T00:00:00+00:00"
    assert json.loads(since.stdout)["mode"] == "incremental"


def test_missing_configuration_is_a_usage_error(provider_env, snapshot_db):
    result = run_export(snapshot_db, "--provider", "okta")
    assert result.code == 2
    assert result.messages == ["orgmig export: okta configuration: OKTA_BASE_URL is not set"]


def test_bad_since_is_a_usage_error(small_okta, snapshot_db):
    result = run_export(snapshot_db, "--provider", "okta", "--since", "last tuesday")
    assert result.code == 2 and "--since" in result.stderr


def test_a_body_that_stays_malformed_is_one_clear_line(small_okta, provider_env, snapshot_db):
    provider_env(ORGMIG_IDP_RETRY_ATTEMPTS="2")
    small_okta.faults.malformed_json(10, path_prefix="/api/v1/groups")

    result = run_export(snapshot_db, "--provider", "okta")

    assert result.code == 1
    [line] = result.messages
    assert line.startswith("orgmig export: GET /api/v1/groups returned 200: malformed JSON body")
    assert line.endswith("(gave up after 2 attempts)")


def test_a_next_link_to_another_host_is_not_followed(provider_env, snapshot_db):
    """The API token travels with every request: a `rel="next"` link to another host is refused."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            body = b"[]"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if self.path.startswith("/api/v1/users"):
                self.send_header("Link", '<http://203.0.113.9/api/v1/users?after=x>; rel="next"')
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        provider_env(OKTA_BASE_URL=f"http://127.0.0.1:{server.server_address[1]}",
                     OKTA_API_TOKEN="00tokenThatMustStayHome123")
        result = run_export(snapshot_db, "--provider", "okta")
    finally:
        server.shutdown()
        server.server_close()
    assert result.code == 1
    [line] = result.messages
    assert "GET /api/v1/users" in line and "203.0.113.9" in line and "not following it" in line
    assert "00tokenThatMustStayHome123" not in result.everything


def test_the_org_concurrency_limit_lowers_requests_in_flight(small_tenant, provider_env, snapshot_db,
                                                             snapshot_engine):
    with FakeOkta(small_tenant, concurrency_limit=3) as fake:
        provider_env(**fake.settings())
        fake.faults.slow(0.2, 30, path_prefix="/api/v1/groups/")  # keep member requests in flight

        result = run_export(snapshot_db, "--provider", "okta", "--concurrency", "6")

        assert result.code == 0, result.stderr
        assert_snapshot_equals_fake(snapshot_engine, fake)
        refused = fake.request_count(status=429)
        assert 1 <= refused <= 4  # each one lowered the number of requests in flight
        assert fake.max_inflight_seen <= 6
