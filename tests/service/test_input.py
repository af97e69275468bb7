"""What `orgmig serve` does with hostile or unlucky input and load: bounded bodies, strict parsing,
JSON for every error, prompt 503s when the database is locked or the pool is full, the rate limit
before authentication, proxy headers only from listed proxies, one access-log line per request."""

from __future__ import annotations

import concurrent.futures
import logging
import socket
import time

import httpx
import pytest
from sqlalchemy import text

from tests.service.serving import TOKEN, migrate, serving

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def base(schema):
    with serving(schema.url, serve_max_body_bytes=4096) as url:
        yield url


def _raw(base: str, body: bytes, path: str = "/v1/users/migrate") -> httpx.Response:
    return httpx.post(f"{base}{path}", content=body, headers=AUTH, timeout=30)


def test_a_body_past_the_cap_is_refused_without_reading_it(base):
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /v1/users/migrate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 200000000\r\n\r\n{")
        started = time.monotonic()
        answer = b""
        while b'"}' not in answer:
            answer += sock.recv(4096)
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413") and time.monotonic() - started < 5
    assert '"error":"the body is larger than 4,096 bytes"' in answer

    def chunks():  # no Content-Length: chunked, 1 MB in all
        for _ in range(64):
            yield b" " * 16384
    streamed = httpx.post(f"{base}/v1/users/migrate", content=chunks(), headers=AUTH, timeout=30)
    assert streamed.status_code == 413
    padded = _raw(base, b'{"keycloak_user_id": "nobody"}' + b" " * 3000)  # under the cap
    assert padded.status_code == 404


@pytest.mark.parametrize(("body", "says"), [
    (b"[" * 2000 + b"]" * 2000, "the body is not JSON"),  # nested deeper than 1,024 levels
    (b'{"keycloak_user_id": "\\ud800"}', "the body is not JSON"),
    (b'{"keycloak_user_id": "\xff\xfe"}', "the body is not JSON"),
    (b'{"keycloak_user_id": "a\\u0000b"}', "keycloak_user_id: Value error, must not contain a NUL character"),
    (b'{"provider": "okta", "external_id": "00u\\u0000x"}', "external_id: Value error, must not contain a NUL"),
    (b'{"provider": "okta", "external_id": "x", "email_verified": "true"}', "email_verified: Input should be"),
    (b'{"provider": "okta", "external_id": 5}', "external_id: Input should be a valid string"),
    (b'{"provider": "ldap", "external_id": "x"}', "provider: Input should be"),
    (b'{"keycloak_user_id": "x", "password": "p"}', "password: Extra inputs are not permitted"),
    (b'{"keycloak_user_id": "   "}', "keycloak_user_id: Value error, must not be blank"),
    (b'["keycloak_user_id"]', "the body must be a JSON object"),
    (b"", "the body is not JSON"),
])
def test_every_malformed_body_is_a_422_with_what_is_wrong(base, body, says):
    reply = _raw(base, body)
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["error"].startswith(says), reply.json()


def test_unknown_paths_and_methods_answer_json(base):
    missing = httpx.get(f"{base}/v2/nothing", timeout=10)
    assert missing.status_code == 404 and missing.json() == {"error": "no such endpoint"}
    wrong = httpx.get(f"{base}/v1/users/migrate", headers=AUTH, timeout=10)
    assert wrong.status_code == 405 and wrong.json() == {"error": "GET is not allowed here"}


def test_the_openapi_document_describes_the_endpoints(base):
    doc = httpx.get(f"{base}/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) >= {"/v1/users/migrate", "/v1/users/{app_user_id}/collections/legacy",
                                 "/v1/users/{app_user_id}/collections/migrate",
                                 "/v1/users/{app_user_id}/collections/import-anonymous"}
    account = doc["components"]["schemas"]["MigrateAccount"]
    assert account["properties"]["email_verified"]["type"] == "boolean"
    assert account["additionalProperties"] is False and account["required"] == ["provider", "external_id"]
    assert set(doc["paths"]["/v1/users/migrate"]["post"]["responses"]) >= {"200", "401", "403", "404", "409",
                                                                            "413", "422", "429", "503"}


def test_a_locked_table_answers_503_promptly_and_a_full_pool_too(schema):
    with serving(schema.url, serve_pool_size=2, serve_pool_timeout_ms=300, serve_lock_timeout_ms=500) as url, \
            schema.connect() as holder:
        holder.execute(text("BEGIN; LOCK TABLE user_identity IN ACCESS EXCLUSIVE MODE"))
        body = {"provider": "okta", "external_id": "00ulocked", "email": "a@example.org", "email_verified": True}
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(30) as pool:
            replies = list(pool.map(lambda _: migrate(url, body), range(30)))
        took = time.monotonic() - started
        holder.execute(text("ROLLBACK"))
    assert {r.status_code for r in replies} == {503}, [r.text for r in replies if r.status_code != 503]
    assert all(r.headers["retry-after"] == "1" for r in replies)
    said = {r.json()["error"] for r in replies}
    assert said <= {"the database is busy; try again", "the service is busy (no free database connection); try again"}
    assert "the service is busy (no free database connection); try again" in said
    assert took < 15, took  # not the table lock's length: each call gives up within its timeouts


def test_the_rate_limit_comes_before_the_token(schema):
    with serving(schema.url, serve_rate_per_minute=5) as url:
        replies = [migrate(url, {"keycloak_user_id": "x"}, token="wrong-token-0000000000") for _ in range(8)]
    assert [r.status_code for r in replies] == [401] * 5 + [429] * 3


def test_forwarded_addresses_count_only_from_listed_proxies(schema, caplog):
    caplog.set_level(logging.INFO, logger="app.service.access")
    forwarded = [{"X-Forwarded-For": f"203.0.113.{n}"} for n in range(5)]
    with serving(schema.url, serve_rate_per_minute=3) as url:
        direct = [migrate(url, {"keycloak_user_id": "x"}, headers=h).status_code for h in forwarded]
    assert direct == [404, 404, 404, 429, 429]  # one client: the peer; the header is not believed
    with serving(schema.url, serve_rate_per_minute=3, serve_trusted_proxies="127.0.0.1/32") as url:
        proxied = [migrate(url, {"keycloak_user_id": "x"}, headers=h).status_code for h in forwarded]
        spoofed = [migrate(url, {"keycloak_user_id": "x"}, headers={"X-Forwarded-For": "198.51.100.7, 127.0.0.1"})
                   for _ in range(4)]
    assert proxied == [404] * 5  # five clients behind the proxy
    assert [r.status_code for r in spoofed] == [404, 404, 404, 429]
    lines = [r.getMessage() for r in caplog.records if r.name == "app.service.access"]
    assert any(line.startswith("POST /v1/users/migrate 404 ") and line.endswith(" 203.0.113.4") for line in lines)
    assert any(line.endswith(" 198.51.100.7") for line in lines)
    assert all(TOKEN not in line and "keycloak_user_id" not in line for line in lines)


def test_connections_the_server_closed_cost_one_503_at_most(schema, base):
    assert migrate(base, {"keycloak_user_id": "nobody"}).status_code == 404
    with schema.connect() as conn:
        ended = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                  " WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    assert ended >= 1
    replies = [migrate(base, {"keycloak_user_id": "nobody"}) for _ in range(3)]
    assert [r.status_code for r in replies][-1] == 404
    assert all(r.status_code in (404, 503) for r in replies) and sum(r.status_code == 503 for r in replies) <= 1
    assert all(r.headers.get("retry-after") for r in replies if r.status_code == 503)
