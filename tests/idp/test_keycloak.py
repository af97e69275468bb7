"""`orgmig export --provider keycloak` against a fake Keycloak over loopback HTTP."""

from __future__ import annotations

import pytest

from tests.fakes.keycloak import FakeKeycloak
from tests.fakes.tenant import make_tenant
from tests.support.idp import failed_checks, fingerprint, last_run, run_export, snapshot

USERS, GROUPS = 2500, 40


@pytest.fixture(scope="module")
def tenant():
    return make_tenant(USERS, GROUPS, seed=13)


@pytest.fixture(scope="module")
def small_tenant():
    return make_tenant(400, 20, seed=14)


@pytest.fixture
def small_keycloak(small_tenant, provider_env):
    with FakeKeycloak(small_tenant) as fake:
        provider_env(**fake.settings())
        yield fake


@pytest.fixture
def keycloak(tenant, provider_env):
    with FakeKeycloak(tenant) as fake:
        provider_env(**fake.settings())
        yield fake


def assert_snapshot_equals_fake(engine, fake: FakeKeycloak) -> None:
    snap = snapshot(engine, "keycloak")
    expected = {u["id"]: u for u in fake.expected_users()}
    assert snap["users"].keys() == expected.keys()
    for uid, e in expected.items():
        got = snap["users"][uid]
        assert got["raw"] == {k: v for k, v in e.items() if k != "access"}, uid
        assert (got["login"], got["email"], got["email_verified"], got["first_name"], got["last_name"],
                got["status"], got["attributes"]) == (
            e["username"], e.get("email"), e["emailVerified"], e.get("firstName"), e.get("lastName"),
            "enabled" if e["enabled"] else "disabled", e.get("attributes", {}))
    groups = {g["id"]: g for g in fake.expected_groups()}
    assert {gid for kind, gid in snap["groups"] if kind == "group"} == groups.keys()
    for gid, e in groups.items():
        got = snap["groups"][("group", gid)]
        assert (got["name"], got["group_type"], got["parent_external_id"]) == (e["name"], e["path"], e.get("parentId"))
        assert set(snap["members"].get(("group", gid), {})) == set(fake.expected_group_members(gid)), e["path"]
    roles = {r["id"]: r for r in fake.expected_realm_roles()}
    assert {rid for kind, rid in snap["groups"] if kind == "role"} == roles.keys()
    for rid, r in roles.items():
        members = {u for u, rs in ((u, fake.expected_user_roles(u)) for u in expected) if r["name"] in rs}
        assert set(snap["members"].get(("role", rid), {})) == members, r["name"]
    orgs = {o["id"]: o for o in fake.expected_organizations()}
    assert {oid for kind, oid in snap["groups"] if kind == "organization"} == orgs.keys()
    for oid, o in orgs.items():
        got = snap["members"].get(("organization", oid), {})
        assert set(got) == set(fake.expected_org_members(oid)), o["name"]
        assert all(a == {"membershipType": "UNMANAGED"} for a in got.values())


def test_full_export_equals_the_realm(keycloak, snapshot_db, snapshot_engine):
    result = run_export(snapshot_db, "--provider", "keycloak")

    assert result.code == 0, result.stderr
    assert_snapshot_equals_fake(snapshot_engine, keycloak)
    # Subgroups came from /children; memberships per group, role and organization, never per user.
    assert keycloak.request_count(f"/admin/realms/{keycloak.realm}/users/") == 0
    assert keycloak.request_count(f"/admin/realms/{keycloak.realm}/groups/", method="GET") > 0
    # `max` is always sent: a default of 10 (organizations, subgroups) must not end the paging early.
    paged = [r for r in keycloak.requests if r.path.startswith("/admin/")]
    assert all("max" in r.query for r in paged)
    assert keycloak.issued_tokens == 1
    assert last_run(snapshot_engine, "keycloak").status == "finished"
    assert failed_checks(snapshot_engine) == []


def test_since_runs_a_full_export_and_says_so(small_keycloak, snapshot_db, snapshot_engine):
    assert run_export(snapshot_db, "--provider", "keycloak").code == 0
    first = fingerprint(snapshot_engine, "keycloak")

    result = run_export(snapshot_db, "--provider", "keycloak", "--since", "2025-01-01")

    assert result.code == 0
    assert "no updated-since filter" in result.logs
    assert last_run(snapshot_engine, "keycloak").mode == "full"
    assert fingerprint(snapshot_engine, "keycloak") == first


def test_proxy_faults_and_token_expiry_are_survived(small_tenant, provider_env, snapshot_db, snapshot_engine):
    with FakeKeycloak(small_tenant, token_ttl=2) as fake:
        provider_env(**fake.settings())
        users = f"/admin/realms/{fake.realm}/users"
        fake.faults.add_429_storm(2, path_prefix=users)
        fake.faults.add_5xx(2, 502, path_prefix=users)
        fake.faults.truncate_body(2, path_prefix=f"/admin/realms/{fake.realm}/groups")
        fake.faults.slow(0.5, 1, path_prefix=users)
        fake.revoke_tokens()

        result = run_export(snapshot_db, "--provider", "keycloak")

        assert result.code == 0, result.stderr
        assert fake.faults.pending == []
        assert_snapshot_equals_fake(snapshot_engine, fake)


def test_missing_role_names_the_role(small_tenant, provider_env, snapshot_db):
    with FakeKeycloak(small_tenant, service_account_roles={"query-groups", "view-realm", "manage-realm"}) as fake:
        provider_env(**fake.settings())
        result = run_export(snapshot_db, "--provider", "keycloak")
    assert result.code == 1
    [line] = result.messages
    assert f"GET /admin/realms/{fake.realm}/" in line and "returned 403" in line and "view-users" in line


def test_wrong_secret_is_one_clear_line(small_keycloak, provider_env, snapshot_db):
    provider_env(KEYCLOAK_CLIENT_SECRET="not-the-secret-at-all")
    result = run_export(snapshot_db, "--provider", "keycloak")
    assert result.code == 1
    [line] = result.messages
    assert "POST /realms/acme/protocol/openid-connect/token returned 401" in line
    assert "not-the-secret-at-all" not in result.everything


def test_page_that_never_ends_stops_with_a_clear_error(small_keycloak, snapshot_db, snapshot_engine):
    keycloak = small_keycloak
    keycloak.faults.repeat_cursor(f"/admin/realms/{keycloak.realm}/users")
    result = run_export(snapshot_db, "--provider", "keycloak")
    assert result.code == 1
    [line] = result.messages
    assert f"GET /admin/realms/{keycloak.realm}/users" in line and "does not end" in line
