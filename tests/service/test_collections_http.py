"""GeneNetwork's per-user collections over HTTP (`orgmig serve`), against the machine's Redis:
the offer, the move and its repeat, the anonymous import, the refusals, and Redis down while the
login-time migration goes on answering."""

from __future__ import annotations

import httpx
import pytest

from tests.service.serving import TOKEN, free_port, migrate, post, serving
from tests.support.collections import add_account, add_collections, add_users, legacy_collection, new_value


@pytest.fixture
def base(schema, redis_url, rdb):
    with serving(schema.url, redis_url=redis_url) as url:
        yield url


def _get(base: str, path: str, token: str | None = TOKEN) -> httpx.Response:
    return httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=30)


def _two_collections() -> list[dict]:
    return [legacy_collection("5d7a7f4e-1111-4c6b-9c43-2f7e7a1b0c01", "BXD traits", ["a", "b"]),
            legacy_collection("5d7a7f4e-2222-4c6b-9c43-2f7e7a1b0c02", "Liver", ["c"])]


def test_the_offer_the_move_and_its_repeat(base, schema, rdb):
    (ann,) = add_users(schema, "Ann@Example.org")
    add_account(rdb, "gn-ann", "ann@example.org ")
    add_collections(rdb, "gn-ann", _two_collections())
    offer = _get(base, f"/v1/users/{ann}/collections/legacy")
    assert offer.status_code == 200, offer.text
    assert offer.json() == {"app_user_id": ann, "can_migrate": True, "reason": None, "collections": 2,
                            "names": ["BXD traits", "Liver"], "members": 3}
    assert new_value(rdb, ann) is None  # the offer moves nothing
    moved = post(base, f"/v1/users/{ann}/collections/migrate")
    assert moved.status_code == 200, moved.text
    assert moved.json()["counts"]["moved"] == 1 and moved.json()["reported"] == {}
    assert [c["name"] for c in new_value(rdb, ann)] == ["BXD traits", "Liver"]
    again = post(base, f"/v1/users/{ann}/collections/migrate")
    assert again.status_code == 200 and again.json()["counts"] == {"done": 1}
    assert len(new_value(rdb, ann)) == 2
    after = _get(base, f"/v1/users/{ann}/collections/legacy").json()
    assert after["can_migrate"] is False and after["reason"] == "migrated_already"


def test_nothing_moves_where_the_email_is_several_accounts_and_no_other_id_is_told(base, schema, rdb):
    (bob,) = add_users(schema, "bob@example.org")
    for old in ("gn-bob-1", "gn-bob-2"):
        add_account(rdb, old, "bob@example.org")
        add_collections(rdb, old, _two_collections())
    offer = _get(base, f"/v1/users/{bob}/collections/legacy")
    assert offer.status_code == 200
    assert offer.json()["reason"] == "email_shared_by_old_accounts" and offer.json()["can_migrate"] is False
    assert "gn-bob" not in offer.text
    moved = post(base, f"/v1/users/{bob}/collections/migrate")
    assert moved.status_code == 200 and "moved" not in moved.json()["counts"] and "gn-bob" not in moved.text
    assert new_value(rdb, bob) is None
    (carol,) = add_users(schema, "carol@example.org")
    assert _get(base, f"/v1/users/{carol}/collections/legacy").json()["reason"] == "no_old_account"


def test_an_unknown_user_a_missing_token_and_a_malformed_body(base, schema, rdb):
    for reply in (_get(base, "/v1/users/987654/collections/legacy"),
                  post(base, "/v1/users/987654/collections/migrate"),
                  post(base, "/v1/users/987654/collections/import-anonymous", {"anon_id": "x"})):
        assert reply.status_code == 404 and reply.json()["reason"] == "unknown_app_user", reply.text
    assert _get(base, "/v1/users/1/collections/legacy", token=None).status_code == 401
    (dan,) = add_users(schema, "dan@example.org")
    for body in ({}, {"anon_id": ""}, {"anon_id": 5}, {"anon_id": "x", "more": 1}):
        assert post(base, f"/v1/users/{dan}/collections/import-anonymous", body).status_code == 422, body
    assert _get(base, "/v1/users/not-a-number/collections/legacy").status_code == 404


def test_an_anonymous_session_is_imported_once_and_a_registered_id_is_refused(base, schema, rdb):
    (eve,) = add_users(schema, "eve@example.org")
    add_collections(rdb, "anon-3f1c", _two_collections())
    first = post(base, f"/v1/users/{eve}/collections/import-anonymous", {"anon_id": "anon-3f1c"})
    assert first.status_code == 200 and first.json()["counts"]["moved"] == 1, first.text
    assert len(new_value(rdb, eve)) == 2
    again = post(base, f"/v1/users/{eve}/collections/import-anonymous", {"anon_id": "anon-3f1c"})
    assert again.status_code == 200 and again.json()["counts"] == {"done": 1}
    add_account(rdb, "gn-frank", "frank@example.org")
    add_collections(rdb, "gn-frank", _two_collections())
    refused = post(base, f"/v1/users/{eve}/collections/import-anonymous", {"anon_id": "gn-frank"})
    assert refused.status_code == 409 and refused.json()["reason"] == "registered_account"
    assert len(new_value(rdb, eve)) == 2


def test_redis_down_is_a_503_and_the_migration_goes_on(schema):
    with serving(schema.url, redis_url=f"redis://127.0.0.1:{free_port()}/1") as base:
        (gil,) = add_users(schema, "gil@example.org")
        down = _get(base, f"/v1/users/{gil}/collections/legacy")
        assert down.status_code == 503 and down.headers["retry-after"] == "5"
        assert down.json() == {"error": "the collections store (Redis) does not answer; try again"}
        assert migrate(base, {"keycloak_user_id": "nobody"}).status_code == 404
