"""httpx clients of the fakes as a caller authenticates to each, for the tests of the fakes."""

from __future__ import annotations

import httpx

from tests.fakes.auth0 import FakeAuth0
from tests.fakes.keycloak import FakeKeycloak
from tests.fakes.okta import FakeOkta


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
