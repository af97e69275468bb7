"""The login-time endpoint over loopback (uvicorn on a free port, httpx as the caller)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import subprocess
import sys
import time

import httpx
import pytest

from app.ops.seed import seed_legacy
from tests.service.serving import TOKEN, free_port, serving
from tests.service.serving import migrate as _post
from tests.support.db import execute, scalar
from tests.support.migrate import ROOT, alembic_env, orgmig


@pytest.fixture
def engine(schema):
    return schema


@pytest.fixture
def service(engine):
    # The schema of every revision, then legacy rows the bulk run has not migrated (rows added
    # after it, as if the application signed users up in the legacy table meanwhile).
    seed_legacy(engine, 300, seed=21)
    with serving(engine.url, serve_pool_timeout_ms=10_000) as base:
        yield base


def _kc(engine, n: int = 0) -> str:
    return scalar(engine, "SELECT keycloak_user_id FROM user_settings WHERE keycloak_user_id ~ '^[a-f0-9-]{36}$'"
                          " GROUP BY keycloak_user_id ORDER BY min(id) OFFSET :n LIMIT 1", n=n)


def test_a_user_is_migrated_now_once(service, engine):
    kc = _kc(engine)
    first = _post(service, {"keycloak_user_id": kc})
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["migrated_now"] is True and answer["app_user_id"] > 0 and answer["org_id"]
    again = _post(service, {"keycloak_user_id": kc}).json()
    assert again == {**answer, "migrated_now": False}
    assert scalar(engine, 'SELECT count(*) FROM "user" WHERE keycloak_user_id = :k', k=kc) == 1
    assert httpx.get(f"{service}/healthz").json() == {"ok": True}


def test_tokens_bodies_and_unknown_users(service, engine):
    kc = _kc(engine)
    assert _post(service, {"keycloak_user_id": kc}, token=None).status_code == 401
    wrong = _post(service, {"keycloak_user_id": kc}, token="not-the-token")
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert scalar(engine, 'SELECT count(*) FROM "user"') == 0  # nothing done for them
    bad = httpx.post(f"{service}/v1/users/migrate", content=b"{not json", timeout=10,
                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert bad.status_code == 422 and bad.json()["error"].startswith("the body is not JSON")
    for body in ([], {"keycloak_user_id": ""}, {"keycloak_user_id": kc, "extra": 1}, {"provider": "ldap"},
                 {"provider": "okta"}, {"provider": "okta", "external_id": "x", "email": 5}):
        assert _post(service, body).status_code == 422, body
    missing = _post(service, {"keycloak_user_id": "nobody-at-all"})
    assert missing.status_code == 404 and TOKEN not in missing.text


def test_an_account_is_linked_by_subject_or_by_unique_email(service, engine):
    kc = _kc(engine, 1)
    by_subject = _post(service, {"provider": "keycloak", "external_id": kc})
    assert by_subject.status_code == 200 and by_subject.json()["migrated_now"] is True
    assert scalar(engine, "SELECT matched_by FROM user_identity WHERE external_id = :k", k=kc) == "subject"
    execute(engine, """INSERT INTO "user" (keycloak_user_id, email) VALUES ('app-only', '  Ann@Example.org ')""")
    by_email = _post(service, {"provider": "auth0", "external_id": "auth0|ann", "email": "ann@example.ORG",
                               "email_verified": True})
    assert by_email.status_code == 200, by_email.text
    ann = scalar(engine, """SELECT id FROM "user" WHERE keycloak_user_id = 'app-only'""")
    assert by_email.json() == {"app_user_id": ann, "org_id": None, "migrated_now": False}
    assert scalar(engine, "SELECT matched_by FROM user_identity WHERE external_id = 'auth0|ann'") == "email"
    # another account with the same email, verified or not, is not given Ann's data
    for verified in (False, True):
        other = _post(service, {"provider": "auth0", "external_id": "auth0|impostor", "email": "ann@example.org",
                                "email_verified": verified})
        assert other.status_code == 409 and "app_user_id" not in other.json()


def test_fifty_concurrent_calls_for_one_user_get_one_answer(service, engine):
    kc = _kc(engine, 2)
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        replies = list(pool.map(lambda _: _post(service, {"keycloak_user_id": kc}), range(50)))
    assert {r.status_code for r in replies} == {200}
    answers = {(r.json()["app_user_id"], r.json()["org_id"]) for r in replies}
    assert len(answers) == 1
    assert sum(r.json()["migrated_now"] for r in replies) == 1
    assert scalar(engine, 'SELECT count(*) FROM "user" WHERE keycloak_user_id = :k', k=kc) == 1


def test_past_the_rate_a_client_waits(engine):
    with serving(engine.url, serve_rate_per_minute=3) as base:
        replies = [_post(base, {"keycloak_user_id": "x"}) for _ in range(5)]
    assert [r.status_code for r in replies] == [404, 404, 404, 429, 429]
    assert 1 <= int(replies[-1].headers["retry-after"]) <= 61


def test_the_command_wants_a_token(engine):
    proc = orgmig(engine.url, "serve", "--port", str(free_port()))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("orgmig: orgmig serve needs callers to authenticate")
    assert "ORGMIG_SERVE_JWT_ISSUER" in proc.stderr and "ORGMIG_SERVE_TOKEN" in proc.stderr


def test_the_command_serves_and_logs_no_secret(engine):
    """`orgmig -v serve` as a process, debug logging on: the answers are right, and what it
    writes names neither the token (right or wrong) nor anything from a body."""
    seed_legacy(engine, 20, seed=22)
    kc = _kc(engine)
    port = free_port()
    child = subprocess.Popen([sys.executable, "-m", "app.cli", "-v", "serve", "--port", str(port)], cwd=ROOT,
                             env=alembic_env(engine.url, ORGMIG_SERVE_TOKEN=TOKEN),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            assert child.poll() is None and time.monotonic() < deadline, "orgmig serve did not start"
            time.sleep(0.1)
        migrated = _post(base, {"keycloak_user_id": kc})
        assert migrated.status_code == 200 and migrated.json()["migrated_now"] is True
        assert _post(base, {"keycloak_user_id": kc}, token="wrong-secret-token-0000").status_code == 401
        assert _post(base, {"provider": "okta", "external_id": "00u-secret-id",
                            "email": "secret.person@example.org"}).status_code == 404
        assert _post(base, {"keycloak_user_id": kc, "password": "hunter2-secret"}).status_code == 422
    finally:
        child.terminate()
        output = child.communicate(timeout=15)[0]
    assert "serving POST /v1/users/migrate" in output
    for secret in (TOKEN, "wrong-secret-token-0000", "00u-secret-id", "secret.person", "hunter2-secret", kc):
        assert secret not in output, secret
