"""The fake identity providers obey the contracts they model (plain httpx over loopback)."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import uuid
from datetime import UTC

import httpx
import pytest

from tests.fakes.auth0 import FakeAuth0
from tests.fakes.keycloak import FakeKeycloak
from tests.fakes.okta import FakeOkta
from tests.fakes.tenant import STATUSES, make_tenant

# --------------------------------------------------------------------------- helpers


def okta_client(okta: FakeOkta) -> httpx.Client:
    return httpx.Client(base_url=okta.base_url, headers={"Authorization": f"SSWS {okta.api_token}"}, timeout=10)


def okta_all(client: httpx.Client, url: str, params: dict | None = None) -> tuple[list[dict], int]:
    """Follow rel="next" verbatim until there is none; (items, pages)."""
    items: list[dict] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        r = client.get(next_url, params=params if pages == 0 else None)
        assert r.status_code == 200, r.text
        items += r.json()
        pages += 1
        next_url = r.links.get("next", {}).get("url")
        assert pages < 10_000
    return items, pages


def keycloak_client(kc: FakeKeycloak) -> httpx.Client:
    r = httpx.post(kc.token_url, data={"grant_type": "client_credentials"}, auth=(kc.client_id, kc.client_secret))
    assert r.status_code == 200, r.text
    return httpx.Client(base_url=kc.admin_url, headers={"Authorization": f"Bearer {r.json()['access_token']}"},
                        timeout=10)


def auth0_token(a0: FakeAuth0, **extra: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_id": a0.client_id, "client_secret": a0.client_secret,
            "audience": a0.audience, **extra}
    return httpx.post(a0.token_url, data=data)


def auth0_client(a0: FakeAuth0, **extra: str) -> httpx.Client:
    r = auth0_token(a0, **extra)
    assert r.status_code == 200, r.text
    return httpx.Client(base_url=f"{a0.base_url}/api/v2",
                        headers={"Authorization": f"Bearer {r.json()['access_token']}"}, timeout=10)


# --------------------------------------------------------------------------- tenant


def test_tenant_is_deterministic_and_awkward() -> None:
    a = make_tenant(users=400, groups=40, seed=11)
    b = make_tenant(users=400, groups=40, seed=11)
    assert [(u.id, u.login, u.email, u.status, u.last_updated) for u in a.users.values()] == \
        [(u.id, u.login, u.email, u.status, u.last_updated) for u in b.users.values()]
    assert a.memberships == b.memberships
    assert len(a.users) == 400 and len(a.groups) == 40
    users = list(a.users.values())
    assert any(not u.first_name.isascii() or not u.last_name.isascii() for u in users)
    assert any(u.email is None for u in users)
    assert any(not a.groups_of(u.id) for u in users)
    assert len(a.groups_of(users[3].id)) == 40  # one user in every group
    assert {u.status for u in users} == set(STATUSES)
    emails = [u.email.lower() for u in users if u.email]
    assert len(emails) != len(set(emails))  # the same address twice, in another case
    names = [g.name for g in a.groups.values()]
    assert "SR-PROD-ADMINS" in names
    assert any(n.startswith("SR-PROD-TENANT:") and n.endswith(":ADMIN") for n in names)
    assert any(":FACILITY_ACCESS:" in n for n in names)
    assert any(g.kind == "malformed" for g in a.groups.values())
    assert any(g.parent_id for g in a.groups.values())
    assert a.organizations and all(o.members for o in a.organizations.values())
    assert make_tenant(users=401, groups=40, seed=11).summary() != a.summary()




# --------------------------------------------------------------------------- Okta


def test_okta_paging_links_and_deprovisioned(start_fake, idp_tenant) -> None:
    okta = start_fake(FakeOkta)
    with okta_client(okta) as c:
        r = c.get("/api/v1/users", params={"limit": 120})
        links = r.headers.get_list("link")
        assert len(links) == 2 and links[0].endswith('rel="self"') and links[1].endswith('rel="next"')
        assert "after=" in r.links["next"]["url"] and "limit=120" in r.links["next"]["url"]
        assert r.links["next"]["url"].startswith(okta.base_url)
        assert r.headers["date"] and r.headers["x-rate-limit-limit"] == "600"
        users, pages = okta_all(c, "/api/v1/users", {"limit": 120})
        active = [u for u in idp_tenant.users.values() if u.status != "DEPROVISIONED"]
        assert len(users) == len(active) and pages == -(-len(active) // 120)
        assert all(u["status"] != "DEPROVISIONED" for u in users)
        assert users == okta.expected_users(include_deprovisioned=False)
        last = c.get(r.links["next"]["url"].replace("limit=120", "limit=1000"))
        assert len(last.json()) == len(active) - 120 and "next" not in last.links  # capped at 200, last page

        gone, _ = okta_all(c, "/api/v1/users", {"filter": 'status eq "DEPROVISIONED"'})
        assert gone and len(gone) == sum(u.status == "DEPROVISIONED" for u in idp_tenant.users.values())
        everyone, _ = okta_all(c, "/api/v1/users", {"search": 'status pr', "limit": 200})
        assert len(everyone) == len(idp_tenant.users)

        bad = c.get("/api/v1/users", params={"filter": 'profile.department eq "Lab"'})
        assert bad.status_code == 400 and bad.json()["errorCode"] == "E0000031"


def test_okta_incremental_filter_sees_touched_users(start_fake, idp_tenant) -> None:
    okta = start_fake(FakeOkta)
    since = "2030-01-01T00:00:00.000Z"
    victim = list(idp_tenant.users.values())[10]
    with okta_client(okta) as c:
        q = {"filter": f'lastUpdated gt "{since}" and (status eq "ACTIVE" or status eq "DEPROVISIONED")'}
        assert c.get("/api/v1/users", params=q).json() == []
        from datetime import datetime

        idp_tenant.touch_user(victim.id, datetime(2030, 2, 1, tzinfo=UTC), status="DEPROVISIONED")
        got = c.get("/api/v1/users", params=q).json()
        assert [u["id"] for u in got] == [okta.okta_user_id(victim.id)]
        assert got[0]["status"] == "DEPROVISIONED" and got[0]["lastUpdated"] == "2030-02-01T00:00:00.000Z"


def test_okta_groups_members_and_user_groups(start_fake, idp_tenant) -> None:
    okta = start_fake(FakeOkta)
    with okta_client(okta) as c:
        groups, _ = okta_all(c, "/api/v1/groups", {"limit": 7})
        assert groups == okta.expected_groups()
        assert len(groups) == len(idp_tenant.groups) + 1  # Okta's BUILT_IN Everyone group
        assert {g["type"] for g in groups} == {"OKTA_GROUP", "BUILT_IN"}
        big = max(idp_tenant.groups.values(), key=lambda g: len(idp_tenant.memberships[g.id]))
        gid = okta.okta_group_id(big.id)
        members, pages = okta_all(c, f"/api/v1/groups/{gid}/users", {"limit": 25})
        assert [m["id"] for m in members] == okta.expected_group_members(gid)
        assert len(members) == len(idp_tenant.memberships[big.id]) and pages > 1
        first = c.get(f"/api/v1/groups/{gid}/users", params={"limit": 5000}).json()
        assert len(first) == min(1000, len(members))
        uid = okta.okta_user_id(list(idp_tenant.users.values())[3].id)
        mine = c.get(f"/api/v1/users/{uid}/groups")
        assert "link" not in mine.headers or "next" not in mine.links
        assert len(mine.json()) == len(idp_tenant.groups) + 1
        schema = c.get("/api/v1/meta/schemas/user/default").json()
        assert set(schema["definitions"]["custom"]["properties"]) == set(idp_tenant.custom_attributes)
        nope = c.get("/api/v1/groups/00gDOESNOTEXIST0000/users")
        assert nope.status_code == 404 and nope.json()["errorCode"] == "E0000007"


def test_okta_rate_limit_429_with_reset(start_fake) -> None:
    okta = start_fake(FakeOkta, rate_limit_per_minute=3, window_seconds=1)
    with okta_client(okta) as c:
        for _ in range(5):
            r = c.get("/api/v1/users", params={"limit": 1})
            if r.status_code == 429:
                break
            assert int(r.headers["x-rate-limit-remaining"]) >= 0
        assert r.status_code == 429
        assert r.json()["errorCode"] == "E0000047"
        assert r.json()["errorSummary"] == "API call exceeded rate limit due to too many requests."
        assert set(r.json()) == {"errorCode", "errorSummary", "errorLink", "errorId", "errorCauses"}
        assert r.headers["x-rate-limit-limit"] == "3" and r.headers["x-rate-limit-remaining"] == "0"
        reset = int(r.headers["x-rate-limit-reset"])
        assert time.time() < reset <= time.time() + 2 and r.headers["date"]
        assert c.get("/api/v1/groups").status_code == 200  # another bucket
        time.sleep(okta.limiters["users"].seconds_until_reset() + 0.02)
        assert c.get("/api/v1/users", params={"limit": 1}).status_code == 200


def test_okta_concurrency_limit(start_fake) -> None:
    okta = start_fake(FakeOkta, concurrency_limit=2)
    okta.faults.slow(seconds=0.5, n=2)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=okta.base_url, timeout=10,
                                     headers={"Authorization": f"SSWS {okta.api_token}"}) as c:
            first = [asyncio.create_task(c.get("/api/v1/users", params={"limit": 1})) for _ in range(2)]
            await asyncio.sleep(0.2)
            third = await c.get("/api/v1/users", params={"limit": 1})
            return [*(await asyncio.gather(*first)), third]

    a, b, c = asyncio.run(burst())
    assert a.status_code == b.status_code == 200
    assert c.status_code == 429 and c.json()["errorCode"] == "E0000047"
    assert c.headers["x-rate-limit-limit"] == "0" and c.headers["x-rate-limit-remaining"] == "0"
    assert int(c.headers["x-rate-limit-reset"]) >= int(time.time())
    assert okta.max_inflight_seen == 3


def test_okta_private_key_jwt_token_scopes_and_expiry(start_fake) -> None:
    jwt = pytest.importorskip("jwt")
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    okta = start_fake(FakeOkta, client_public_key=jwk, token_ttl=0.6)

    def assertion(**over: object) -> str:
        now = int(time.time())
        claims = {"iss": okta.client_id, "sub": okta.client_id, "aud": okta.token_url, "iat": now,
                  "exp": now + 300, "jti": str(uuid.uuid4()), **over}
        return jwt.encode(claims, key, algorithm="RS256")

    poster = httpx.Client(timeout=10)

    def token(scope: str, signed: str) -> httpx.Response:
        return poster.post(okta.token_url, data={
            "grant_type": "client_credentials", "scope": scope, "client_assertion": signed,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})

    wrong_aud = token("okta.users.read", assertion(aud="https://elsewhere/oauth2/v1/token"))
    assert wrong_aud.status_code == 401 and "audience" in wrong_aud.json()["error_description"]
    forged = jwt.encode({"iss": okta.client_id, "sub": okta.client_id, "aud": okta.token_url,
                         "iat": int(time.time()), "exp": int(time.time()) + 60, "jti": "x"}, other_key,
                        algorithm="RS256")
    assert token("okta.users.read", forged).json()["error_description"] == "The client_assertion signature is invalid."
    assert token("okta.users.manage", assertion()).json()["error"] == "invalid_scope"
    no_scope = token("", assertion())
    assert no_scope.status_code == 400 and no_scope.json()["error"] == "invalid_scope"

    with httpx.Client(base_url=okta.base_url) as c:
        reused = assertion()
        r = token("okta.users.read", reused)
        assert r.status_code == 200 and r.json()["token_type"] == "Bearer" and r.json()["expires_in"] == 0.6
        c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        assert c.get("/api/v1/users", params={"limit": 2}).status_code == 200
        forbidden = c.get("/api/v1/groups")
        assert forbidden.status_code == 403 and forbidden.json()["errorCode"] == "E0000006"
        assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]
        assert token("okta.users.read", reused).json()["error"] == "invalid_client"  # jti replay
        time.sleep(0.65)
        expired = c.get("/api/v1/users")
        assert expired.status_code == 401
        assert expired.json()["errorCode"] == "E0000011" and expired.json()["errorSummary"] == "Invalid token provided"
        assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    poster.close()
    bad = httpx.get(f"{okta.base_url}/api/v1/users", headers={"Authorization": "SSWS not-the-token"})
    assert bad.status_code == 401 and bad.json()["errorCode"] == "E0000011"


def test_okta_faults(start_fake) -> None:
    okta = start_fake(FakeOkta)
    with okta_client(okta) as c:
        okta.faults.add_429_storm(n=2)
        assert [c.get("/api/v1/users").status_code for _ in range(3)] == [429, 429, 200]
        okta.faults.add_5xx(n=1, status=503)
        okta.faults.add_5xx(n=1, status=500)
        r503, r500 = c.get("/api/v1/users"), c.get("/api/v1/users")
        assert r503.status_code == 503 and "text/html" in r503.headers["content-type"]
        assert r500.status_code == 500 and r500.json()["errorCode"] == "E0000009"
        okta.faults.slow(seconds=0.3, n=1)
        t0 = time.perf_counter()
        assert c.get("/api/v1/users", params={"limit": 1}).status_code == 200
        assert time.perf_counter() - t0 >= 0.3
        okta.faults.truncate_body(n=1)
        with pytest.raises(httpx.RemoteProtocolError):
            c.get("/api/v1/users")
        okta.faults.malformed_json(n=1)
        r = c.get("/api/v1/users")
        assert r.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            r.json()
        okta.faults.drop_connection(n=1)
        with pytest.raises(httpx.RemoteProtocolError):
            c.get("/api/v1/users")
        okta.faults.repeat_cursor(path_prefix="/api/v1/users")
        first = c.get("/api/v1/users", params={"limit": 10})
        again = c.get(first.links["next"]["url"])
        assert first.links["next"]["url"] == str(first.request.url) and again.json() == first.json()
        assert again.links["next"]["url"] == str(again.request.url)
        okta.faults.clear()
        assert okta.faults.pending == []
        assert "after=" in c.get("/api/v1/users", params={"limit": 10}).links["next"]["url"]
    assert okta.request_count("/api/v1/users") == len(okta.requests) - 0
    assert [r.status for r in okta.requests[:3]] == [429, 429, 200]
    assert okta.requests[0].fault == "429" and okta.requests[0].query == {}
    assert okta.requests_matching(status=None)  # the dropped connection has no status
    assert okta.server_errors == []


def test_okta_100k_users_build_and_serve_quickly() -> None:
    t0 = time.perf_counter()
    tenant = make_tenant(users=100_000, groups=200, seed=7)
    assert time.perf_counter() - t0 < 6
    assert len(tenant.users) == 100_000 and len(tenant.groups) == 200
    with FakeOkta(tenant, rate_limit_per_minute=100_000) as okta, okta_client(okta) as c:
        r = c.get("/api/v1/users", params={"limit": 200})  # builds the index
        url = r.links["next"]["url"]
        t0 = time.perf_counter()
        for _ in range(5):
            r = c.get(url)
            assert r.status_code == 200 and len(r.json()) == 200
            url = r.links["next"]["url"]
        assert (time.perf_counter() - t0) / 5 < 0.25
        g = c.get("/api/v1/groups").json()
        assert len(g) == 201
        t0 = time.perf_counter()
        members = c.get(f"/api/v1/groups/{g[0]['id']}/users")
        assert members.status_code == 200 and time.perf_counter() - t0 < 1.5


# --------------------------------------------------------------------------- Keycloak


def test_keycloak_token_paging_and_shapes(start_fake, idp_tenant) -> None:
    kc = start_fake(FakeKeycloak, realm="acme", client_id="orgmig", client_secret="s3cret")
    bad = httpx.post(kc.token_url, data={"grant_type": "client_credentials", "client_id": "orgmig",
                                         "client_secret": "wrong"})
    assert bad.status_code == 401
    assert bad.json() == {"error": "unauthorized_client",
                          "error_description": "Invalid client or Invalid client credentials"}
    form = httpx.post(kc.token_url, data={"grant_type": "client_credentials", "client_id": "orgmig",
                                          "client_secret": "s3cret"})
    assert form.status_code == 200 and form.json()["expires_in"] == 300 and form.json()["refresh_expires_in"] == 0
    with keycloak_client(kc) as c:
        assert len(c.get("/users").json()) == 100  # default max
        users: list[dict] = []
        first = 0
        while True:
            page = c.get("/users", params={"first": first, "max": 50}).json()
            users += page
            first += 50
            if len(page) < 50:
                break
        assert users == kc.expected_users()
        assert c.get("/users/count").json() == len(idp_tenant.users) + 1
        sa = [u for u in users if u.get("serviceAccountClientId")]
        assert [u["username"] for u in sa] == ["service-account-orgmig"]
        no_email = [u for u in users if "email" not in u]
        assert len(no_email) > 1 and all(u["username"] == u["username"].lower() for u in users)
        brief = c.get("/users", params={"briefRepresentation": "true", "max": 5}).json()
        assert all("attributes" not in u and "requiredActions" not in u for u in brief)

        tops = c.get("/groups").json()
        assert all("attributes" not in g for g in tops)  # brief by default
        parent = next(g for g in tops if g["subGroupCount"])
        kids = c.get(f"/groups/{parent['id']}/children").json()
        assert {k["path"] for k in kids} == {"/Departments/Engineering", "/Departments/Ops~/On-Call"}
        big = max(idp_tenant.groups.values(), key=lambda g: len(idp_tenant.memberships[g.id]))
        gid = kc.group_id(big.id)
        assert len(c.get(f"/groups/{gid}/members").json()) == min(100, len(idp_tenant.memberships[big.id]))
        members: list[dict] = []
        first = 0
        while True:
            page = c.get(f"/groups/{gid}/members", params={"first": first, "max": 40}).json()
            members += page
            first += 40
            if len(page) < 40:
                break
        assert [m["id"] for m in members] == kc.expected_group_members(gid)
        uid = kc.user_id(list(idp_tenant.users.values())[3].id)
        assert len(c.get(f"/users/{uid}/groups").json()) == len(idp_tenant.groups)
        mappings = c.get(f"/users/{uid}/role-mappings").json()
        assert "default-roles-acme" in [r["name"] for r in mappings["realmMappings"]]
        assert len(c.get("/organizations").json()) == min(10, len(idp_tenant.organizations))
        org = kc.expected_organizations()[0]
        got = c.get(f"/organizations/{org['id']}/members", params={"max": 1000}).json()
        assert [m["id"] for m in got] == kc.expected_org_members(org["id"])
        assert all(m["membershipType"] == "UNMANAGED" for m in got)
        assert c.get("/users/not-a-user").json() == {"error": "User not found"}
    assert kc.server_errors == []


def test_keycloak_errors_expiry_and_faults(start_fake) -> None:
    kc = start_fake(FakeKeycloak, service_account_roles={"query-groups"}, token_ttl=0.8)
    with keycloak_client(kc) as c:
        assert c.get("/groups").status_code == 200
        forbidden = c.get("/users")
        assert forbidden.status_code == 403 and forbidden.json() == {"error": "HTTP 403 Forbidden"}
        kc.faults.add_429_storm(n=1)
        kc.faults.add_5xx(n=1, status=503)
        r429, r503 = c.get("/groups"), c.get("/groups")
        assert r429.status_code == 429 and r429.headers["retry-after"] == "1" and "nginx" in r429.text
        assert r503.status_code == 503
        kc.faults.repeat_cursor()
        assert c.get("/groups", params={"first": 5, "max": 5}).json() == c.get("/groups", params={"max": 5}).json()
        kc.faults.clear()
        time.sleep(0.85)
        expired = c.get("/groups")
        assert expired.status_code == 401 and expired.json() == {"error": "HTTP 401 Unauthorized"}
    unauth = httpx.get(f"{kc.admin_url}/users")
    assert unauth.status_code == 401 and unauth.headers["www-authenticate"] == "Bearer"


# --------------------------------------------------------------------------- Auth0


def test_auth0_token_rules(start_fake) -> None:
    a0 = start_fake(FakeAuth0)
    assert auth0_token(a0, client_secret="nope").json() == {"error": "access_denied",
                                                             "error_description": "Unauthorized"}
    wrong_aud = auth0_token(a0, audience="https://example.com/api/v2/")
    assert wrong_aud.status_code == 403 and wrong_aud.json()["error"] == "access_denied"
    r = auth0_token(a0)
    assert r.status_code == 200 and r.json()["expires_in"] == 86400 and r.json()["token_type"] == "Bearer"
    assert set(r.json()["scope"].split()) == set(a0.scopes)
    missing = httpx.get(f"{a0.base_url}/api/v2/users")
    assert missing.status_code == 401 and missing.json()["message"] == "Missing authentication"
    with auth0_client(a0, scope="read:users") as c:
        forbidden = c.get("/roles")
        assert forbidden.status_code == 403
        assert forbidden.json() == {"statusCode": 403, "error": "Forbidden",
                                    "message": "Insufficient scope, expected any of: read:roles",
                                    "errorCode": "insufficient_scope"}
    revoked = auth0_client(a0)
    assert revoked.get("/roles").status_code == 200
    a0.revoke_tokens()
    assert revoked.get("/roles").json()["message"] == "Invalid token"
    revoked.close()
    expired = httpx.get(f"{a0.base_url}/api/v2/users",
                        headers={"Authorization": f"Bearer {a0.mint_access_token(ttl=-5)}"})
    assert expired.status_code == 401
    assert expired.json()["message"] == "Expired token received for JSON Web Token validation"


def test_auth0_users_paging_ceiling_and_search(start_fake) -> None:
    t = make_tenant(users=1200, groups=20, seed=3)
    a0 = start_fake(FakeAuth0, tenant=t, rate_limit=1000, refill_per_second=1000)
    with auth0_client(a0) as c:
        bare = c.get("/users", params={"per_page": 100, "page": 0})
        assert isinstance(bare.json(), list) and len(bare.json()) == 100
        assert c.get("/users").json().__len__() == 50
        totals = c.get("/users", params={"per_page": 100, "page": 9, "include_totals": "true"}).json()
        assert (totals["start"], totals["limit"], totals["length"], totals["total"]) == (900, 100, 100, 1200)
        ceiling = c.get("/users", params={"per_page": 100, "page": 10})
        assert ceiling.status_code == 400 and ceiling.json()["statusCode"] == 400
        assert "1000" in ceiling.json()["message"]
        assert c.get("/users", params={"per_page": 101}).status_code == 400
        expected = a0.expected_users()
        seen = []
        for page in range(10):
            seen += c.get("/users", params={"per_page": 100, "page": page}).json()
        assert seen == expected[:1000]
        q = "updated_at:[2025-05-01 TO *]"
        recent = c.get("/users", params={"q": q, "search_engine": "v3", "per_page": 100,
                                         "include_totals": "true"}).json()
        assert recent["total"] == sum(u["updated_at"] >= "2025-05-01" for u in expected) > 0
        blocked = c.get("/users", params={"q": "blocked:true AND _exists_:email", "per_page": 100}).json()
        assert blocked and all(u.get("blocked") and u.get("email") for u in blocked)
        assert c.get("/users", params={"q": "updated_at:[2025 TO"}).status_code == 400


def test_auth0_export_job_ndjson_gzip_and_link_expiry(start_fake, idp_tenant) -> None:
    a0 = start_fake(FakeAuth0, export_delay=0.2, export_link_ttl=0.5)
    with auth0_client(a0) as c:
        created = c.post("/jobs/users-exports", json={
            "format": "json", "fields": [{"name": "user_id"}, {"name": "email"}, {"name": "updated_at"},
                                         {"name": "app_metadata"}, {"name": "identities[0].connection",
                                                                    "export_as": "connection"}]})
        assert created.status_code == 201 and created.json()["status"] == "pending"
        assert created.json()["type"] == "users_export" and created.json()["id"].startswith("job_")
        states = []
        while True:
            job = c.get(f"/jobs/{created.json()['id']}").json()
            states.append(job["status"])
            if job["status"] == "completed":
                break
            time.sleep(0.05)
        assert states[0] in ("pending", "processing") and "location" in job
        download = httpx.get(job["location"])
        assert download.status_code == 200 and download.headers["content-type"] == "application/gzip"
        lines = [json.loads(x) for x in gzip.decompress(download.content).decode().splitlines()]
        assert len(lines) == len(idp_tenant.users)
        by_id = {u["user_id"]: u for u in a0.expected_users()}
        for line in lines:
            u = by_id[line["user_id"]]
            assert line.get("email") == u.get("email") and line["updated_at"] == u["updated_at"]
            assert line["connection"] == u["identities"][0]["connection"]
        time.sleep(0.6)
        stale = httpx.get(job["location"])
        assert stale.status_code == 403 and b"Request has expired" in stale.content
        fresh = c.get(f"/jobs/{job['id']}").json()["location"]
        assert fresh != job["location"] and httpx.get(fresh).status_code == 200
        csv_job = c.post("/jobs/users-exports", json={"format": "csv", "connection_id": a0.connection_id,
                                                       "fields": [{"name": "user_id"}, {"name": "name"}]}).json()
        time.sleep(0.25)
        csv_url = c.get(f"/jobs/{csv_job['id']}").json()["location"]
        rows = gzip.decompress(httpx.get(csv_url).content).decode().splitlines()
        assert rows[0] == "user_id,name" and rows[1].startswith('"\'auth0|')  # CSV-injection escaping
        assert len(rows) - 1 == sum(u["user_id"].startswith("auth0|") for u in a0.expected_users())
        bad_conn = c.post("/jobs/users-exports", json={"format": "json", "connection_id": "con_nope"})
        assert bad_conn.status_code == 400 and bad_conn.json()["errorCode"] == "inexistent_connection"
        assert c.get("/jobs/job_0000000000000000").status_code == 404


def test_auth0_rate_limit_headers_and_429(start_fake) -> None:
    a0 = start_fake(FakeAuth0, rate_limit=3, refill_per_second=5)
    with auth0_client(a0) as c:
        statuses = []
        for _ in range(5):
            r = c.get("/roles")
            statuses.append(r.status_code)
            assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(r.headers)
            if r.status_code == 429:
                break
        assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429
        assert r.json() == {"statusCode": 429, "error": "Too Many Requests",
                            "message": "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining "
                                       "and X-RateLimit-Reset headers.", "errorCode": "too_many_requests"}
        assert r.headers["x-ratelimit-limit"] == "3" and r.headers["x-ratelimit-remaining"] == "0"
        reset = int(r.headers["x-ratelimit-reset"])
        assert time.time() <= reset <= time.time() + 1.5
        time.sleep(1 / 5 + 0.05)  # one token back
        assert c.get("/roles").status_code == 200
    roomy = start_fake(FakeAuth0, rate_limit=100)
    with auth0_client(roomy) as c:
        roomy.faults.add_429_storm(n=1, path_prefix="/api/v2/organizations")
        assert c.get("/roles").status_code == 200
        storm = c.get("/organizations")
        assert storm.status_code == 429 and storm.json()["errorCode"] == "too_many_requests"
        assert storm.headers["x-ratelimit-remaining"] == "0"
        assert c.get("/organizations").status_code == 200


def test_auth0_roles_and_organizations_checkpoints(start_fake, idp_tenant) -> None:
    a0 = start_fake(FakeAuth0, rate_limit=1000, refill_per_second=1000)
    with auth0_client(a0) as c:
        roles = c.get("/roles").json()
        assert roles == a0.expected_roles()
        totals = c.get("/roles", params={"include_totals": "true"}).json()
        assert set(totals) == {"start", "limit", "total", "roles"}
        role = max(roles, key=lambda r: len(a0.expected_role_users(r["id"])))
        got: list[dict] = []
        params: dict = {"take": 20}
        while True:
            page = c.get(f"/roles/{role['id']}/users", params=params).json()
            got += page["users"]
            if "next" not in page:
                break
            params = {"take": 20, "from": page["next"]}
        assert [u["user_id"] for u in got] == a0.expected_role_users(role["id"])
        orgs = c.get("/organizations", params={"take": 2})
        assert "next" in orgs.json() and len(orgs.json()["organizations"]) == 2
        org = a0.expected_organizations()[0]
        members: list[dict] = []
        params = {"take": 30, "fields": "user_id,email,name,picture,roles"}
        while True:
            page = c.get(f"/organizations/{org['id']}/members", params=params).json()
            members += page["members"]
            if "next" not in page:
                break
            params = {**params, "from": page["next"]}
        assert members == a0.expected_org_members(org["id"])
        who = members[0]
        roles_of = c.get(f"/organizations/{org['id']}/members/{who['user_id']}/roles").json()
        assert [r["id"] for r in roles_of] == [r["id"] for r in who["roles"]]
        a0.faults.repeat_cursor(path_prefix="/api/v2/roles")
        p1 = c.get(f"/roles/{role['id']}/users", params={"take": 5}).json()
        p2 = c.get(f"/roles/{role['id']}/users", params={"take": 5, "from": p1["next"]}).json()
        assert p2 == c.get(f"/roles/{role['id']}/users", params={"take": 5, "from": p1["next"]}).json()
        assert p2["next"] == p1["next"] or p2["users"] == p1["users"]
    assert a0.server_errors == []
