"""What `orgmig writeback` checks before it writes: `--dry-run` reads where the value lands and
writes nothing; Okta's user schema, Keycloak's user profile, Auth0's scopes, refused credentials
and an unreachable provider each stop it with one line (exit 2) and no token in any output."""

from __future__ import annotations

import json
import socket

import pytest

from tests.fakes.auth0 import DEFAULT_SCOPES as AUTH0_READ
from tests.idp.test_secrets import assert_nothing_leaked, secrets_sent
from tests.support.writeback import ATTRIBUTE, DRY_READS, PROVIDERS, writeback


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


def test_nothing_to_write_reads_nothing(case):
    c = case("okta")
    assert writeback(c).code == 0
    c.fake.reset_requests()
    out = writeback(c, "--dry-run")
    assert out.code == 0 and "0 to write" in out.stdout and "checked" not in out.stdout
    assert c.fake.requests == []


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


def test_the_dry_run_fails_when_okta_s_schema_lacks_the_attribute(case):
    c = case("okta")
    del c.fake.tenant.custom_attributes["appUserId"]
    out = writeback(c, "--dry-run")
    assert out.code == 2, out.everything[-3000:]
    [line] = out.errors
    assert "the user schema has no custom attribute 'appUserId'" in line and "Profile Editor" in line
    assert out.stdout == ""
    assert {(r.method, r.path) for r in c.fake.requests} == {("GET", "/api/v1/meta/schemas/user/default")}


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


def test_auth0_credentials_without_the_scope_stop_with_one_line(case):
    c = case("auth0", scopes=AUTH0_READ)
    out = writeback(c)
    assert out.code == 2, out.everything[-3000:]
    assert len(out.errors) == 1
    assert "returned 403" in out.errors[0] and "update:users" in out.errors[0]
    assert c.held() == {}
    assert_nothing_leaked(out.everything, secrets_sent(c.fake))


def test_okta_credentials_refused_stop_with_one_line(case):
    c = case("okta")
    wrong = "00" + "x" * 40
    out = writeback(c, OKTA_API_TOKEN=wrong)
    assert out.code == 2, out.everything[-3000:]
    assert len(out.errors) == 1 and "returned 401" in out.errors[0] and "OKTA_API_TOKEN" in out.errors[0]
    assert c.fake.request_count(method="POST") == 0
    assert_nothing_leaked(out.everything, secrets_sent(c.fake) | {wrong})


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
