"""The fakes' write endpoints obey the contracts they model: Auth0's PATCH merging app_metadata at
its root, Okta's partial POST and replacing PUT of a profile checked against the user schema,
Keycloak's PUT replacing the whole user and the user profile of Keycloak 24+ dropping undeclared
attributes (plain httpx over loopback)."""

from __future__ import annotations

import httpx

from tests.fakes.auth0 import FakeAuth0
from tests.fakes.clients import auth0_client, keycloak_client, okta_client
from tests.fakes.keycloak import FakeKeycloak
from tests.fakes.okta import FakeOkta


def _active(tenant, skip: int = 10):
    """A user with an email and no custom attribute, past the tenant's special cases."""
    return next(u for u in list(tenant.users.values())[skip:] if u.email and u.status == "ACTIVE")


# --------------------------------------------------------------------------- Auth0


def test_auth0_patch_merges_app_metadata_at_its_root(start_fake, idp_tenant) -> None:
    a0 = start_fake(FakeAuth0, scopes={"read:users", "update:users"})
    u = _active(idp_tenant)
    idp_tenant.touch_user(u.id, custom={"plan": "gold", "prefs": {"a": 1, "b": 2}, "gone": "x"})
    aid = a0.auth0_user_id(u.id)
    with auth0_client(a0) as c:
        before = c.get(f"/users/{aid}").json()
        r = c.patch(f"/users/{aid}", json={"app_metadata": {"app_user_id": "42", "prefs": {"c": 3}, "gone": None}})
        assert r.status_code == 200, r.text
        assert r.json()["app_metadata"] == {"plan": "gold", "prefs": {"c": 3}, "app_user_id": "42"}
        after = c.get(f"/users/{aid}").json()
        assert after["app_metadata"] == r.json()["app_metadata"]
        assert {k: v for k, v in after.items() if k not in ("app_metadata", "updated_at")} == \
            {k: v for k, v in before.items() if k not in ("app_metadata", "updated_at")}
        assert after["updated_at"] > before["updated_at"]
        assert c.patch(f"/users/{aid}", json={"user_metadata": {"theme": "dark"}}).json()["user_metadata"]["theme"] \
            == "dark"
        assert "app_metadata" not in c.patch(f"/users/{aid}", json={"app_metadata": {}}).json()  # {} empties it
        bad = c.patch(f"/users/{aid}", json={"app_metadata": "x"})
        assert bad.status_code == 400 and bad.json()["errorCode"] == "invalid_body"
        assert c.patch(f"/users/{aid}", json={"email": "x@y"}).status_code == 400
        missing = c.patch("/users/auth0|000000000000000000000000", json={"app_metadata": {"k": "v"}})
        assert missing.status_code == 404 and missing.json()["errorCode"] == "inexistent_user"
        assert int(r.headers["x-ratelimit-limit"]) == a0.rate_limit and "x-ratelimit-reset" in r.headers
    with auth0_client(start_fake(FakeAuth0, scopes={"read:users"})) as c:
        denied = c.patch(f"/users/{aid}", json={"app_metadata": {"k": "v"}})
        assert denied.status_code == 403 and denied.json()["errorCode"] == "insufficient_scope"


def test_auth0_patch_is_rate_limited_like_every_call(start_fake, idp_tenant) -> None:
    a0 = start_fake(FakeAuth0, scopes={"update:users"}, rate_limit=3, refill_per_second=1.0)
    aid = a0.auth0_user_id(_active(idp_tenant).id)
    with auth0_client(a0) as c:
        codes = [c.patch(f"/users/{aid}", json={"app_metadata": {"n": i}}).status_code for i in range(5)]
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:]


# --------------------------------------------------------------------------- Okta


def test_okta_post_is_partial_and_put_replaces_the_profile(start_fake, idp_tenant) -> None:
    idp_tenant.custom_attributes["appUserId"] = "string"
    okta = start_fake(FakeOkta)
    u = _active(idp_tenant)
    idp_tenant.touch_user(u.id, custom={"department": "Ops", "employeeNumber": "123"})
    oid = okta.okta_user_id(u.id)
    with okta_client(okta) as c:
        before = c.get(f"/api/v1/users/{oid}").json()["profile"]
        r = c.post(f"/api/v1/users/{oid}", json={"profile": {"appUserId": "42"}})
        assert r.status_code == 200, r.text
        assert r.json()["profile"] == {**before, "appUserId": "42"}
        assert int(r.headers["X-Rate-Limit-Remaining"]) == okta.limiters["user-update"].limit - 1
        cleared = c.post(f"/api/v1/users/{oid}", json={"profile": {"department": None}}).json()["profile"]
        assert "department" not in cleared and cleared["appUserId"] == "42"  # an explicit null clears
        unknown = c.post(f"/api/v1/users/{oid}", json={"profile": {"nope": "1"}})
        assert unknown.status_code == 400 and unknown.json()["errorCode"] == "E0000001"
        assert "Property name 'nope' is not defined in profile" in unknown.text
        wrong = c.post(f"/api/v1/users/{oid}", json={"profile": {"appUserId": 42}})
        assert wrong.status_code == 400 and "appUserId: The field is of the wrong type" in wrong.text
        assert c.post(f"/api/v1/users/{oid}", json={"profile": {"firstName": None}}).status_code == 400
        # PUT: the profile as given, every other property gone; the required ones must be there.
        base = {k: before[k] for k in ("login", "email", "firstName", "lastName")}
        assert c.put(f"/api/v1/users/{oid}", json={"profile": {"appUserId": "7"}}).status_code == 400
        replaced = c.put(f"/api/v1/users/{oid}", json={"profile": {**base, "appUserId": "7"}})
        assert replaced.status_code == 200
        assert {k: v for k, v in replaced.json()["profile"].items() if v is not None} == {**base, "appUserId": "7"}
        assert c.post("/api/v1/users/00uNOPE", json={"profile": {}}).status_code == 404
    with httpx.Client(base_url=okta.base_url, timeout=10,
                      headers={"Authorization": f"Bearer {okta.mint_access_token({'okta.users.read'})}"}) as c:
        assert c.post(f"/api/v1/users/{oid}", json={"profile": {"appUserId": "1"}}).status_code == 403


def test_okta_schema_lists_the_custom_attributes(start_fake, idp_tenant) -> None:
    okta = start_fake(FakeOkta)
    with okta_client(okta) as c:
        custom = c.get("/api/v1/meta/schemas/user/default").json()["definitions"]["custom"]["properties"]
        assert "appUserId" not in custom and custom["department"]["type"] == "string"
        idp_tenant.custom_attributes["appUserId"] = "string"
        custom = c.get("/api/v1/meta/schemas/user/default").json()["definitions"]["custom"]["properties"]
        assert custom["appUserId"]["type"] == "string"


def test_okta_schema_takes_a_custom_attribute_over_http(start_fake, idp_tenant) -> None:
    okta = start_fake(FakeOkta)
    u = _active(idp_tenant)
    oid = okta.okta_user_id(u.id)
    with okta_client(okta) as c:
        refused = c.post(f"/api/v1/users/{oid}", json={"profile": {"appUserId": "42"}})
        assert refused.status_code == 400 and "appUserId" in refused.text
        add = {"definitions": {"custom": {"id": "#custom", "type": "object", "required": [],
                                          "properties": {"appUserId": {"title": "App user id", "type": "string"}}}}}
        r = c.post("/api/v1/meta/schemas/user/default", json=add)
        assert r.status_code == 200, r.text
        assert r.json()["definitions"]["custom"]["properties"]["appUserId"]["type"] == "string"
        assert c.get("/api/v1/meta/schemas/user/default").json()["definitions"]["custom"]["properties"][
            "appUserId"]["type"] == "string"
        assert c.post(f"/api/v1/users/{oid}", json={"profile": {"appUserId": "42"}}).json()["profile"][
            "appUserId"] == "42"
        for bad in ({"appUserId": {"type": "uuid"}}, {"email": {"type": "string"}}, {}):
            wrong = c.post("/api/v1/meta/schemas/user/default", json={"definitions": {"custom": {"properties": bad}}})
            assert wrong.status_code == 400 and wrong.json()["errorCode"] == "E0000001", bad
        gone = c.post("/api/v1/meta/schemas/user/default",
                      json={"definitions": {"custom": {"properties": {"appUserId": None}}}})
        assert "appUserId" not in gone.json()["definitions"]["custom"]["properties"]
    with okta_client(start_fake(FakeOkta, api_token_scopes={"okta.schemas.read"})) as c:
        assert c.post("/api/v1/meta/schemas/user/default", json=add).status_code == 403


def test_keycloak_user_profile_configuration(start_fake, idp_tenant) -> None:
    with keycloak_client(start_fake(FakeKeycloak)) as c:  # view-users: may read it
        open_profile = c.get("/users/profile").json()
        assert open_profile["unmanagedAttributePolicy"] == "ENABLED"
        assert [a["name"] for a in open_profile["attributes"]] == ["username", "email", "firstName", "lastName"]
    with keycloak_client(start_fake(FakeKeycloak, user_profile_attributes={"appUserId"})) as c:
        declared = c.get("/users/profile").json()
        assert "unmanagedAttributePolicy" not in declared and declared["attributes"][-1]["name"] == "appUserId"


# --------------------------------------------------------------------------- Keycloak

WRITER_ROLES = {"view-users", "manage-users"}


def test_keycloak_put_replaces_the_whole_user(start_fake, idp_tenant) -> None:
    kc = start_fake(FakeKeycloak, service_account_roles=WRITER_ROLES)
    u = _active(idp_tenant)
    idp_tenant.touch_user(u.id, custom={"department": "Ops", "tags": ["a", "b"]})
    uid = kc.user_id(u.id)
    with keycloak_client(kc) as c:
        rep = c.get(f"/users/{uid}").json()
        assert rep["attributes"] == {"department": ["Ops"], "tags": ["a", "b"]}
        full = {**rep, "attributes": {**rep["attributes"], "appUserId": ["42"]}}
        r = c.put(f"/users/{uid}", json=full)
        assert r.status_code == 204 and r.content == b""
        assert c.get(f"/users/{uid}").json() == full
        # What a PUT omits is removed: the email, the names, the other attributes.
        assert c.put(f"/users/{uid}", json={"attributes": {"appUserId": ["42"]}}).status_code == 204
        partial = c.get(f"/users/{uid}").json()
        assert partial["attributes"] == {"appUserId": ["42"]}
        assert not {"email", "firstName", "lastName"} & set(partial) and partial["username"] == rep["username"]
        renamed = c.put(f"/users/{uid}", json={**rep, "username": "someone-else"})
        assert renamed.status_code == 400 and renamed.json()["errorMessage"] == "error-user-attribute-read-only"
        assert c.put(f"/users/{kc.user_id('nope')}", json=rep).status_code == 404
    with keycloak_client(start_fake(FakeKeycloak)) as c:  # view-users only
        assert c.put(f"/users/{uid}", json=rep).status_code == 403


def test_keycloak_user_profile_drops_undeclared_attributes(start_fake, idp_tenant) -> None:
    kc = start_fake(FakeKeycloak, service_account_roles=WRITER_ROLES, user_profile_attributes={"department"})
    u = _active(idp_tenant)
    idp_tenant.touch_user(u.id, custom={"department": "Ops", "legacy": "kept"})
    uid = kc.user_id(u.id)
    with keycloak_client(kc) as c:
        rep = c.get(f"/users/{uid}").json()
        assert rep["attributes"] == {"department": ["Ops"]}  # the undeclared one is not shown
        r = c.put(f"/users/{uid}", json={**rep, "attributes": {**rep["attributes"], "appUserId": ["42"]}})
        assert r.status_code == 204  # accepted...
        assert c.get(f"/users/{uid}").json()["attributes"] == {"department": ["Ops"]}  # ...and dropped
    assert idp_tenant.users[u.id].custom == {"department": "Ops", "legacy": "kept"}  # stored, untouched
