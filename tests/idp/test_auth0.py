"""`orgmig export --provider auth0` against a fake Auth0 tenant over loopback HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.idp.providers.auth0 import EXPORT_FIELDS
from tests.fakes.auth0 import FakeAuth0
from tests.fakes.tenant import make_tenant
from tests.support.idp import failed_checks, last_run, rows, run_export, snapshot


@pytest.fixture(scope="module")
def big_tenant():
    return make_tenant(2500, 40, seed=17)


@pytest.fixture(scope="module")
def small_tenant():
    return make_tenant(600, 20, seed=18)


def start(fake: FakeAuth0, provider_env) -> FakeAuth0:
    """Start the fake (its `with` block stops it) and point the AUTH0_* settings at it."""
    fake.start()
    provider_env(**fake.settings())
    return fake


def assert_snapshot_equals_fake(engine, fake: FakeAuth0, *, exported_fields: tuple[str, ...] | None = None) -> None:
    snap = snapshot(engine, "auth0")
    expected = {u["user_id"]: u for u in fake.expected_users()}
    assert snap["users"].keys() == expected.keys()
    for uid, e in expected.items():
        got = snap["users"][uid]
        raw = e if exported_fields is None else {k: v for k, v in e.items() if k in exported_fields}
        assert got["raw"] == raw, uid
        assert (got["email"], got["email_verified"], got["first_name"], got["last_name"], got["status"]) == (
            e.get("email"), e.get("email_verified"), e.get("given_name"), e.get("family_name"),
            "blocked" if e.get("blocked") else "active")
        assert got["attributes"] == {"app_metadata": e.get("app_metadata", {}),
                                     "user_metadata": e.get("user_metadata", {})}
        assert got["updated"] == e["updated_at"]
    roles = {r["id"]: r for r in fake.expected_roles()}
    assert {rid for kind, rid in snap["groups"] if kind == "role"} == roles.keys()
    for rid in roles:
        assert set(snap["members"].get(("role", rid), {})) == set(fake.expected_role_users(rid))
    orgs = {o["id"]: o for o in fake.expected_organizations()}
    assert {oid for kind, oid in snap["groups"] if kind == "organization"} == orgs.keys()
    for oid, o in orgs.items():
        assert snap["groups"][("organization", oid)]["attributes"] == o["metadata"]
        want = {m["user_id"]: sorted(r["name"] for r in m["roles"]) for m in fake.expected_org_members(oid)}
        got = {u: a.get("roles", []) for u, a in snap["members"].get(("organization", oid), {}).items()}
        assert got == want, o["name"]


def test_small_tenant_pages_through_users(small_tenant, provider_env, snapshot_db, snapshot_engine):
    with start(FakeAuth0(small_tenant), provider_env) as fake:
        result = run_export(snapshot_db, "--provider", "auth0")

        assert result.code == 0, result.stderr
        assert_snapshot_equals_fake(snapshot_engine, fake)
        assert fake.jobs == {}  # under 1,000 users: no export job
        pages = fake.requests_matching("/api/v2/users")
        assert [int(r.query["page"]) for r in pages] == list(range(6))
        assert all(r.query["per_page"] == "100" for r in pages)
        # Organizations and their members by checkpoint (from/take), never page numbers.
        assert all("page" not in r.query for r in fake.requests_matching("/api/v2/organizations"))
        assert fake.issued_tokens == 1
        assert failed_checks(snapshot_engine) == []


def test_large_tenant_uses_the_export_job(big_tenant, provider_env, snapshot_db, snapshot_engine):
    with start(FakeAuth0(big_tenant, export_delay=0.3), provider_env) as fake:
        result = run_export(snapshot_db, "--provider", "auth0")

        assert result.code == 0, result.stderr
        assert len(fake.jobs) == 1
        # Never asked past the 1,000-result ceiling.
        assert fake.request_count("/api/v2/users", status=400) == 0
        assert [r.query["page"] for r in fake.requests_matching("/api/v2/users")] == ["0"]
        assert_snapshot_equals_fake(snapshot_engine, fake, exported_fields=EXPORT_FIELDS)
        # The download link is pre-signed: the API token never went to it.
        downloads = fake.requests_matching("/exports/")
        assert downloads and all("authorization" not in r.headers for r in downloads)
        assert last_run(snapshot_engine, "auth0").users_count == 2500
        assert failed_checks(snapshot_engine) == []


def test_incremental_export_asks_for_updated_users(small_tenant, provider_env, snapshot_db, snapshot_engine):
    tenant = make_tenant(500, 20, seed=19)
    with start(FakeAuth0(tenant), provider_env) as fake:
        assert run_export(snapshot_db, "--provider", "auth0").code == 0
        since = datetime.now(UTC) - timedelta(seconds=1)
        changed = list(tenant.users.values())[:3]
        for u in changed:
            tenant.touch_user(u.id, last_name="Changed")
        tenant.set_status(changed[0].id, "SUSPENDED")
        fake.reset_requests()

        result = run_export(snapshot_db, "--provider", "auth0", "--since", since.isoformat())

        assert result.code == 0, result.stderr
        [page] = fake.requests_matching("/api/v2/users")
        assert page.query["q"].startswith("updated_at:[") and page.query["q"].endswith(" TO *]")
        run = last_run(snapshot_engine, "auth0")
        touched = rows(snapshot_engine,
                       "SELECT external_id, last_name, status FROM idp_user WHERE last_seen_run_id = :r", r=run.id)
        assert {(r.external_id, r.last_name) for r in touched} == {
            (fake.auth0_user_id(u.id), "Changed") for u in changed}
        assert snapshot(snapshot_engine, "auth0")["users"][fake.auth0_user_id(changed[0].id)]["status"] == "blocked"
        assert_snapshot_equals_fake(snapshot_engine, fake)


def test_rate_limit_bucket_and_faults_are_survived(small_tenant, provider_env, snapshot_db, snapshot_engine):
    # A small bucket: the client has to pace itself on x-ratelimit-* to get through.
    with start(FakeAuth0(small_tenant, rate_limit=10, refill_per_second=40.0), provider_env) as fake:
        fake.faults.add_429_storm(3, path_prefix="/api/v2/users")
        fake.faults.add_5xx(2, 503, path_prefix="/api/v2/organizations")
        fake.faults.truncate_body(2, path_prefix="/api/v2/roles")
        fake.faults.malformed_json(1, path_prefix="/api/v2/users")
        fake.faults.slow(0.5, 2, path_prefix="/api/v2/organizations")

        result = run_export(snapshot_db, "--provider", "auth0")

        assert result.code == 0, result.stderr
        assert fake.faults.pending == []
        assert_snapshot_equals_fake(snapshot_engine, fake)


def test_missing_scope_names_the_scope(small_tenant, provider_env, snapshot_db):
    scopes = {"read:users", "read:roles", "read:role_members", "read:organizations", "read:organization_members"}
    with start(FakeAuth0(small_tenant, scopes=scopes), provider_env):
        result = run_export(snapshot_db, "--provider", "auth0")
    assert result.code == 1
    [line] = result.messages
    assert "/api/v2/organizations/" in line and "returned 403" in line
    assert "read:organization_member_roles" in line


def test_wrong_secret_is_one_clear_line(small_tenant, provider_env, snapshot_db):
    with start(FakeAuth0(small_tenant), provider_env):
        provider_env(AUTH0_CLIENT_SECRET="definitely-not-the-secret")
        result = run_export(snapshot_db, "--provider", "auth0")
    assert result.code == 1
    [line] = result.messages
    assert line.startswith("orgmig export: POST /oauth/token returned 401")
    assert "AUTH0_CLIENT_SECRET" in line or "access_denied" in line
    assert "definitely-not-the-secret" not in result.everything


def test_repeating_checkpoint_stops_with_a_clear_error(small_tenant, provider_env, snapshot_db):
    with start(FakeAuth0(small_tenant), provider_env) as fake:
        fake.faults.repeat_cursor("/api/v2/organizations/")
        result = run_export(snapshot_db, "--provider", "auth0")
    assert result.code == 1
    [line] = result.messages
    assert "GET /api/v2/organizations/" in line and "cursor repeats" in line


def test_a_failed_export_job_is_started_again(provider_env, snapshot_db, snapshot_engine):
    tenant = make_tenant(1100, 10, seed=20)
    with start(FakeAuth0(tenant, export_delay=0.2), provider_env) as fake:
        fake.failing_exports = 1

        result = run_export(snapshot_db, "--provider", "auth0")

        assert result.code == 0, result.stderr
        assert len(fake.jobs) == 2
        assert last_run(snapshot_engine, "auth0").users_count == 1100
        assert_snapshot_equals_fake(snapshot_engine, fake, exported_fields=EXPORT_FIELDS)
