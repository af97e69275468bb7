"""The fake Keycloak obeys the contracts it models (plain httpx over loopback)."""

from __future__ import annotations

import time

import httpx

from tests.fakes.clients import keycloak_client
from tests.fakes.keycloak import FakeKeycloak


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
