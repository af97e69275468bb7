"""`orgmig writeback --provider P` against the fake providers and a database whose links the
identity step made (the identity tests' synced template): every linked account gets the app's id
and nothing else on it changes, under the providers' rate limits and 429 storms; a partial failure
is reported per account and a rerun writes only what is left; a run after that writes nothing; no
token reaches any output. Killed or halted runs: test_writeback_interrupted.py; `--dry-run` and
what stops a write-back before it writes: test_writeback_checks.py."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.idp.test_secrets import assert_nothing_leaked, secrets_sent
from tests.support.identity import export
from tests.support.writeback import (
    ATTRIBUTE,
    PROVIDERS,
    WRITE_METHOD,
    WRITE_PATH,
    Case,
    comparable,
    users_by_id,
    writeback,
)


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


def test_the_attribute_name_comes_from_the_setting(case):
    c = case("auth0")
    out = writeback(c, ORGMIG_WRITEBACK_ATTRIBUTE="appUserId")
    assert out.code == 0, out.everything[-3000:]
    assert "write-back of app_metadata.appUserId" in out.stdout
    assert c.held("appUserId") == {uid: str(user_id) for uid, user_id in c.links().items()} and c.held() == {}
    for bad, why in (("email", "Auth0 reserves that app_metadata key"), ("a-b", "ORGMIG_WRITEBACK_ATTRIBUTE")):
        refused = writeback(c, ORGMIG_WRITEBACK_ATTRIBUTE=bad)
        assert refused.code == 2 and len(refused.errors) == 1 and why in refused.errors[0], refused.stderr
