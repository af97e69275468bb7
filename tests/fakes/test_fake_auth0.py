"""The fake Auth0 obeys the contracts it models (plain httpx over loopback)."""

from __future__ import annotations

import gzip
import json
import time

import httpx

from tests.fakes.auth0 import FakeAuth0
from tests.fakes.clients import auth0_client, auth0_token
from tests.fakes.tenant import make_tenant


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
