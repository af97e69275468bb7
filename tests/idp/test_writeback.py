"""`orgmig writeback --provider P` against the fake providers and a database whose links the
identity step made (the identity tests' synced template): every linked account gets the app's id
and nothing else on it changes, under the providers' rate limits and 429 storms; a partial failure
is reported per account and a rerun writes only what is left; a run after that writes nothing;
`--dry-run` writes nothing; Okta's schema and Keycloak's user profile stop it with one line; no
token reaches any output."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from app.db import make_engine
from tests.fakes.auth0 import DEFAULT_SCOPES as AUTH0_READ
from tests.idp.test_secrets import assert_nothing_leaked, secrets_sent
from tests.support.identity import FAKES, Ids, build_tenant, export
from tests.support.idp import PROVIDER_PREFIXES
from tests.support.migrate import ROOT
from tests.support.writeback import (
    ATTRIBUTE,
    DRY_READS,
    PROVIDERS,
    WRITE_METHOD,
    WRITE_PATH,
    Case,
    comparable,
    fake_options,
    users_by_id,
    writeback,
)


@pytest.fixture
def case(identity_databases):
    made: list[Case] = []

    def make(provider: str, **options) -> Case:
        tenant = build_tenant(provider)
        if provider == "okta":
            tenant.custom_attributes["appUserId"] = "string"
        fake = FAKES[provider](tenant, **fake_options(provider, **options))
        fake.start()
        url = identity_databases.get(provider, "synced")
        c = Case(provider, url, make_engine(url, poolclass=NullPool), fake, Ids(provider, fake))
        made.append(c)
        return c

    yield make
    for c in made:
        c.fake.stop()
        c.engine.dispose()


def others_in_place(c: Case) -> None:
    """Give some accounts other data where the write lands, which must survive it."""
    for i, uid in enumerate(sorted(c.fake.tenant.users)[:40]):
        extra = {"auth0": {"plan": "gold", "prefs": {"theme": "dark", "n": i}},
                 "okta": {"department": "Ops"},
                 "keycloak": {"department": "Ops", "tags": ["a", "b"]}}[c.provider]
        c.fake.tenant.touch_user(uid, custom=extra)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_link_gets_its_id_and_nothing_else_changes(case, provider):
    c = case(provider)
    others_in_place(c)
    links = c.links()
    assert len(links) > 150
    before = users_by_id(c)

    dry = writeback(c, "--dry-run")
    assert dry.code == 0, dry.everything[-3000:]
    assert f"{len(links):,} linked accounts" in dry.stdout and f"{len(links):,} to write" in dry.stdout
    assert {r.method for r in c.fake.requests} <= {"GET", "POST"} and c.writes() == [] and c.held() == {}
    assert c.rows("SELECT * FROM orgmig_writeback") == []
    c.fake.reset_requests()

    first = writeback(c, ORGMIG_WRITEBACK_CONCURRENCY="3")
    assert first.code == 0, first.everything[-3000:]
    assert f"{len(links):,} written, 0 found set, 0 failed" in first.stdout
    assert c.held() == {uid: str(user_id) for uid, user_id in links.items()}
    after = users_by_id(c)
    attribute = ATTRIBUTE[provider]
    assert {k: comparable(provider, u, attribute) for k, u in after.items()} == \
        {k: comparable(provider, u, attribute) for k, u in before.items()}
    assert len(c.writes()) == len(links)  # one write per account, no retry needed
    assert c.fake.max_inflight_seen <= 4
    if provider == "auth0":
        assert {json.dumps(json.loads(r.body)) for r in c.writes()} == \
            {json.dumps({"app_metadata": {"app_user_id": str(u)}}) for u in links.values()}
        assert c.fake.request_count("/api/v2/jobs") == 0  # never the import job
        held = after[c.ids.user[sorted(c.fake.tenant.users)[0]]]["app_metadata"]
        assert held["plan"] == "gold" and held["prefs"] == {"theme": "dark", "n": 0}  # root keys merged
    elif provider == "okta":
        assert c.fake.request_count(method="PUT") == 0  # never a PUT
        assert {json.dumps(json.loads(r.body)) for r in c.writes()} == \
            {json.dumps({"profile": {"appUserId": str(u)}}) for u in links.values()}
        assert c.fake.request_count("/api/v1/meta/schemas/user/default") == 1
    else:
        # The full representation goes back, with the one attribute merged.
        for r in c.writes():
            sent = json.loads(r.body)
            assert sent == {**before[sent["id"]], "attributes": {**before[sent["id"]].get("attributes", {}),
                                                                 "appUserId": [str(links[c.ids.neutral[sent["id"]]])]}}
        assert c.fake.request_count(WRITE_PATH[provider], method="GET") == 2 * len(links)
    assert {r.status for r in c.rows("SELECT status FROM orgmig_writeback")} == {"written"}
    assert_nothing_leaked(first.everything, secrets_sent(c.fake))

    # Again: everything is set, nothing is sent.
    c.fake.reset_requests()
    second = writeback(c)
    assert second.code == 0, second.everything[-3000:]
    assert f"{len(links):,} were set by an earlier write-back" in second.stdout and "0 written" in second.stdout
    assert c.fake.requests == []

    # A later export sees the values: without the bookkeeping, the snapshot says the same.
    export(c.url, provider, c.fake)
    with c.engine.begin() as conn:
        conn.execute(text("DELETE FROM orgmig_writeback"))
    c.fake.reset_requests()
    third = writeback(c)
    assert third.code == 0, third.everything[-3000:]
    assert f"{len(links):,} hold it already (latest export)" in third.stdout
    assert c.fake.requests == []
    assert {r.status for r in c.rows("SELECT status FROM orgmig_writeback")} == {"present"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_partial_failure_is_reported_and_a_rerun_writes_only_what_is_left(case, provider):
    c = case(provider)
    links = c.links()
    gone = sorted(links)[5]
    c.fake.tenant.delete_user(gone)  # deleted in the provider since the export: gone, not failed
    c.fake.faults.add_5xx(n=7, status=500, path_prefix=WRITE_PATH[provider])

    first = writeback(c, ORGMIG_IDP_RETRY_ATTEMPTS="1")
    assert first.code == 1, first.everything[-3000:]
    assert f"{len(links) - 8:,} written, 0 found set, 7 failed, 1 gone at the provider" in first.stdout
    failed = c.rows("""SELECT w.external_id, w.http_status, w.error, r.detail FROM orgmig_writeback w
                       JOIN orgmig_report r ON r.step = :s AND r.source_id = w.user_id
                       WHERE w.status = 'failed'""", s=f"writeback:{provider}")
    assert len(failed) == 7
    assert [r.http_status for r in failed] == [500] * 7
    assert all(r.detail["http_status"] == 500 and "returned 500" in r.detail["error"] for r in failed)
    assert all("\n" not in r.error for r in failed)
    missing = c.rows("SELECT detail FROM orgmig_report WHERE step = :s AND reason = 'writeback_account_gone'",
                     s=f"writeback:{provider}")
    assert [c.ids.neutral[r.detail["external_id"]] for r in missing] == [gone]
    assert len(first.errors) == 9  # a line per failed account, one for the gone one, and where to look
    assert "7 accounts failed" in first.errors[-1] and f"writeback:{provider}" in first.errors[-1]
    assert len(c.held()) == len(links) - 8

    c.fake.reset_requests()
    second = writeback(c)
    assert second.code == 0, second.everything[-3000:]
    assert "7 written, 0 found set, 0 failed, 0 gone at the provider" in second.stdout
    assert "1 gone at the provider (found by an earlier write-back; not tried)" in second.stdout
    touched = {r.path.rsplit("/", 1)[-1] for r in c.fake.requests_matching(WRITE_PATH[provider])}
    assert touched == {r.external_id for r in failed}  # only what was left
    assert len(c.held()) == len(links) - 1
    reports = c.rows("SELECT reason, detail FROM orgmig_report WHERE step = :s", s=f"writeback:{provider}")
    assert [(r.reason, c.ids.neutral[r.detail["external_id"]]) for r in reports] == \
        [("writeback_account_gone", gone)]
    assert_nothing_leaked(first.everything + second.everything + json.dumps([r.detail for r in reports]),
                          secrets_sent(c.fake))

    c.fake.reset_requests()
    with c.engine.begin() as conn:  # the account's link goes (say the identity step unlinked it)
        conn.execute(text("DELETE FROM user_identity WHERE provider = :p AND external_id = :e"),
                     {"p": provider, "e": missing[0].detail["external_id"]})
    third = writeback(c)
    assert third.code == 0 and "0 written" in third.stdout and c.fake.requests == []
    assert c.rows("SELECT * FROM orgmig_report WHERE step = :s", s=f"writeback:{provider}") == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_account_deleted_at_the_provider_is_reported_once_and_not_tried_again(case, provider):
    c = case(provider)
    links = c.links()
    gone = sorted(links)[3]
    c.fake.tenant.delete_user(gone)

    first = writeback(c)
    assert first.code == 0, first.everything[-3000:]
    assert f"{len(links) - 1:,} written, 0 found set, 0 failed, 1 gone at the provider" in first.stdout
    assert len(first.errors) == 1
    assert first.errors[0].startswith("orgmig writeback: 1 account is gone at the provider (404")
    assert "reason = 'writeback_account_gone'" in first.errors[0]
    report = c.rows("SELECT source_id, reason, detail FROM orgmig_report WHERE step = :s", s=f"writeback:{provider}")
    assert [(r.source_id, r.reason) for r in report] == [(links[gone], "writeback_account_gone")]
    assert report[0].detail["http_status"] == 404
    assert {"auth0": "The user does not exist", "okta": "E0000007", "keycloak": "User not found"}[provider] \
        in report[0].detail["error"]
    assert c.rows("SELECT * FROM orgmig_writeback WHERE status = 'failed'") == []

    # Again, and again after a full export (which no longer has the account): nothing is sent to it,
    # nothing fails, the one report stays.
    for label in ("rerun", "after an export"):
        if label == "after an export":
            export(c.url, provider, c.fake)
        c.fake.reset_requests()
        again = writeback(c)
        assert again.code == 0, (label, again.everything[-3000:])
        assert "1 gone at the provider (found by an earlier write-back; not tried)" in again.stdout, label
        assert "0 written, 0 found set, 0 failed, 0 gone at the provider" in again.stdout, label
        assert again.errors == [] and c.fake.requests == [], label
        assert len(c.rows("SELECT * FROM orgmig_report WHERE step = :s", s=f"writeback:{provider}")) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rate_limits_and_429_storms_are_waited_out(case, provider):
    options = {"auth0": {"rate_limit": 10, "refill_per_second": 60.0},
               "okta": {"rate_limits": {"user-update": 40}},
               "keycloak": {"proxy_retry_after": 1}}[provider]
    c = case(provider, **options)
    links = c.links()
    c.fake.faults.add_429_storm(n=25, path_prefix=WRITE_PATH[provider])

    done = writeback(c, ORGMIG_WRITEBACK_CONCURRENCY="6")
    assert done.code == 0, done.everything[-3000:]
    assert c.held() == {uid: str(user_id) for uid, user_id in links.items()}
    refused = c.fake.request_count(WRITE_PATH[provider], status=429)
    assert refused >= 25
    # Every 429 was sent again and nothing else was: one successful write per account.
    assert len(c.writes()) - c.fake.request_count(WRITE_PATH[provider], method=WRITE_METHOD[provider],
                                                  status=429) == len(links)
    if provider != "keycloak":  # the headers pace the rest: few 429s beyond the storm
        assert refused <= 25 + len(links) // 4


def test_okta_stops_when_the_attribute_is_not_in_the_user_schema(case):
    c = case("okta")
    del c.fake.tenant.custom_attributes["appUserId"]
    out = writeback(c)
    assert out.code == 2, out.everything[-3000:]
    assert len(out.errors) == 1
    line = out.errors[0]
    assert "the user schema has no custom attribute 'appUserId'" in line and "Profile Editor" in line
    assert "/api/v1/meta/schemas/user/default" in line
    assert c.fake.request_count(method="POST") == 0 and c.fake.request_count(method="PUT") == 0
    assert c.rows("SELECT * FROM orgmig_writeback WHERE status <> 'present'") == []

    c.fake.tenant.custom_attributes["appUserId"] = "integer"
    wrong = writeback(c)
    assert wrong.code == 2 and "is of type 'integer'" in wrong.errors[0]
    # Another attribute by name, one the schema has.
    c.fake.tenant.custom_attributes["department"] = "string"
    other = writeback(c, ORGMIG_WRITEBACK_ATTRIBUTE="department")
    assert other.code == 0, other.everything[-3000:]
    assert c.held("department") == {uid: str(user_id) for uid, user_id in c.links().items()}


def test_keycloak_stops_when_its_user_profile_drops_the_attribute(case):
    c = case("keycloak", user_profile_attributes=set())
    out = writeback(c, ORGMIG_WRITEBACK_CONCURRENCY="2")
    assert out.code == 2, out.everything[-3000:]
    assert len(out.errors) == 1
    line = out.errors[0]
    assert "has no 'appUserId'" in line and "Keycloak 24+ drops undeclared attributes" in line
    assert "declare appUserId in Realm settings > User profile" in line
    assert 1 <= len(c.writes()) <= 2  # the workers stopped at the first drop
    assert c.held() == {}
    failed = c.rows("SELECT error FROM orgmig_writeback WHERE status = 'failed'")
    assert 1 <= len(failed) <= 2 and "Keycloak 24+" in failed[0].error
    assert_nothing_leaked(out.everything, secrets_sent(c.fake))

    c.fake.user_profile_attributes = frozenset({"appUserId"})  # declared now
    again = writeback(c)
    assert again.code == 0, again.everything[-3000:]
    assert len(c.held()) == len(c.links())


def test_auth0_credentials_without_the_scope_stop_with_one_line(case):
    c = case("auth0", scopes=AUTH0_READ)
    out = writeback(c)
    assert out.code == 2, out.everything[-3000:]
    assert len(out.errors) == 1
    assert "returned 403" in out.errors[0] and "update:users" in out.errors[0]
    assert c.held() == {}
    assert_nothing_leaked(out.everything, secrets_sent(c.fake))


def test_the_attribute_name_comes_from_the_setting(case):
    c = case("auth0")
    out = writeback(c, ORGMIG_WRITEBACK_ATTRIBUTE="appUserId")
    assert out.code == 0, out.everything[-3000:]
    assert "write-back of app_metadata.appUserId" in out.stdout
    assert c.held("appUserId") == {uid: str(user_id) for uid, user_id in c.links().items()} and c.held() == {}
    for bad, why in (("email", "Auth0 reserves that app_metadata key"), ("a-b", "ORGMIG_WRITEBACK_ATTRIBUTE")):
        refused = writeback(c, ORGMIG_WRITEBACK_ATTRIBUTE=bad)
        assert refused.code == 2 and len(refused.errors) == 1 and why in refused.errors[0], refused.stderr


def test_a_run_killed_midway_is_resumed_by_the_next_one(case):
    c = case("auth0")
    links = c.links()
    c.fake.faults.slow(seconds=0.05, n=10_000, path_prefix=WRITE_PATH["auth0"])
    env = {k: v for k, v in os.environ.items() if not k.startswith((*PROVIDER_PREFIXES, "ORGMIG_"))}
    env.update(c.fake.settings(), PYTHONPATH=str(ROOT), ORGMIG_WRITEBACK_CONCURRENCY="2")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "writeback", "--provider", "auth0", "--database-url",
                             c.url.render_as_string(hide_password=False)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(c.rows("SELECT 1 FROM orgmig_writeback")) < 30:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "nothing recorded within a minute"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    recorded = {r.external_id for r in c.rows("SELECT external_id FROM orgmig_writeback WHERE status = 'written'")}
    assert 30 <= len(recorded) < len(links)

    c.fake.faults.clear()
    c.fake.reset_requests()
    resumed = writeback(c)
    assert resumed.code == 0, resumed.everything[-3000:]
    rewritten = {r.path.rsplit("/", 1)[-1] for r in c.writes()}
    assert not rewritten & recorded  # what was recorded is not written again
    assert len(rewritten) == len(links) - len(recorded)
    assert c.held() == {uid: str(user_id) for uid, user_id in links.items()}


def test_a_provider_that_stops_answering_halts_the_run_and_the_next_one_finishes(case):
    c = case("okta")
    links = c.links()
    c.fake.faults.add_5xx(n=10_000, status=503, path_prefix=WRITE_PATH["okta"])
    down = writeback(c, ORGMIG_IDP_RETRY_ATTEMPTS="2", ORGMIG_IDP_BACKOFF_BASE_SECONDS="0.01",
                     ORGMIG_WRITEBACK_CONCURRENCY="2")
    assert down.code == 1, down.everything[-3000:]
    halted = next(line for line in down.errors if "halted after" in line)
    assert "returned 503" in halted and f"{len(links) - 26:,} accounts not tried" in halted
    assert len(c.writes()) <= 2 * 26  # no account beyond the 25 (and the one in flight) was tried
    c.fake.faults.clear()
    up = writeback(c)
    assert up.code == 0, up.everything[-3000:]
    assert c.held() == {uid: str(user_id) for uid, user_id in links.items()}


def test_okta_credentials_refused_stop_with_one_line(case):
    c = case("okta")
    wrong = "00" + "x" * 40
    out = writeback(c, OKTA_API_TOKEN=wrong)
    assert out.code == 2, out.everything[-3000:]
    assert len(out.errors) == 1 and "returned 401" in out.errors[0] and "OKTA_API_TOKEN" in out.errors[0]
    assert c.fake.request_count(method="POST") == 0
    assert_nothing_leaked(out.everything, secrets_sent(c.fake) | {wrong})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_dry_run_reads_where_the_value_lands_and_prints_json(case, provider):
    c = case(provider)
    links = c.links()
    out = writeback(c, "--dry-run", "--json")
    assert out.code == 0, out.everything[-3000:]
    summary = json.loads(out.stdout)
    assert summary == {"provider": provider, "attribute": ATTRIBUTE[provider], "target": summary["target"],
                       "dry_run": True, "links": len(links), "held_by_export": 0, "set_earlier": 0,
                       "gone_earlier": 0, "to_write": len(links), "requests": len(c.fake.requests),
                       "seconds": summary["seconds"], "check": summary["check"]}
    assert summary["target"].endswith(ATTRIBUTE[provider])
    assert [r.path for r in c.fake.requests if r.path in DRY_READS[provider]] == DRY_READS[provider]
    assert all(r.method == "GET" for r in c.fake.requests if r.path in DRY_READS[provider])
    assert c.writes() == [] and c.held() == {}
    assert summary["check"] == {"auth0": None, "okta": "the user schema has the custom string attribute appUserId"
                                " (/api/v1/meta/schemas/user/default)",
                                "keycloak": "the realm's user profile keeps unmanaged attributes"
                                " (unmanagedAttributePolicy ENABLED)"}[provider]
    assert_nothing_leaked(out.everything, secrets_sent(c.fake))

    # The real run, as JSON too.
    real = writeback(c, "--json")
    assert real.code == 0, real.everything[-3000:]
    done = json.loads(real.stdout)
    assert (done["dry_run"], done["written"], done["found_set"], done["failed"], done["gone"], done["not_tried"],
            done["halted"], done["failures"]) == (False, len(links), 0, 0, 0, 0, None, [])


def test_the_dry_run_fails_when_okta_s_schema_lacks_the_attribute(case):
    c = case("okta")
    del c.fake.tenant.custom_attributes["appUserId"]
    out = writeback(c, "--dry-run")
    assert out.code == 2, out.everything[-3000:]
    [line] = out.errors
    assert "the user schema has no custom attribute 'appUserId'" in line and "Profile Editor" in line
    assert out.stdout == ""
    assert {(r.method, r.path) for r in c.fake.requests} == {("GET", "/api/v1/meta/schemas/user/default")}


def test_the_dry_run_fails_when_keycloak_s_user_profile_would_drop_the_attribute(case):
    c = case("keycloak", user_profile_attributes=set())
    out = writeback(c, "--dry-run", "--json")
    assert out.code == 2, out.everything[-3000:]
    [line] = out.errors
    assert "the realm's user profile does not declare 'appUserId'" in line
    assert "declare appUserId in Realm settings > User profile" in line
    assert out.stdout == "" and c.writes() == [] and c.fake.request_count(method="PUT") == 0

    c.fake.user_profile_attributes = frozenset({"appUserId"})
    declared = writeback(c, "--dry-run")
    assert declared.code == 0 and "checked: the realm's user profile declares appUserId" in declared.stdout


def test_nothing_to_write_reads_nothing(case):
    c = case("okta")
    assert writeback(c).code == 0
    c.fake.reset_requests()
    out = writeback(c, "--dry-run")
    assert out.code == 0 and "0 to write" in out.stdout and "checked" not in out.stdout
    assert c.fake.requests == []


@pytest.mark.parametrize("provider", ["auth0", "okta"])
def test_an_unreachable_provider_stops_the_write_back_with_one_line(case, provider):
    """Auth0's first writes meet it (no check before them), Okta's schema read does: either way one
    line naming the variable, exit 2, and no account recorded as failed."""
    c = case(provider)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    variable = f"{provider.upper()}_BASE_URL"
    out = writeback(c, **{variable: f"http://127.0.0.1:{port}"})
    assert out.code == 2, out.everything[-3000:]
    [line] = out.errors
    assert f"cannot reach 127.0.0.1:{port} (connection refused" in line and f"check {variable}" in line
    assert c.rows("SELECT * FROM orgmig_writeback") == [] and c.rows("SELECT * FROM orgmig_report WHERE step = :s",
                                                                       s=f"writeback:{provider}") == []
