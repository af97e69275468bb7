"""The fake Okta obeys the contracts it models (plain httpx over loopback)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC

import httpx
import pytest

from tests.fakes.base import encode_cursor
from tests.fakes.clients import okta_all, okta_client
from tests.fakes.okta import FakeOkta
from tests.fakes.tenant import make_tenant


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
        okta.faults.empty_pages("/api/v1/users", query={"filter": None})  # the plain listing only
        past = {"after": encode_cursor("~")}  # after the last user
        end = c.get("/api/v1/users", params=past)
        following = c.get(end.links["next"]["url"])
        assert end.json() == following.json() == []
        assert following.links["next"]["url"] != end.links["next"]["url"]
        assert "next" not in c.get("/api/v1/users", params={**past, "filter": 'status eq "DEPROVISIONED"'}).links
        okta.faults.clear()
        assert c.get(following.links["next"]["url"]).json()["errorCode"] == "E0000031"  # expired with the fault
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
