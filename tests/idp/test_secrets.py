"""No token, client secret or private key reaches a log line, an error or the output."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.auth0 import FakeAuth0
from tests.fakes.keycloak import FakeKeycloak
from tests.fakes.okta import FakeOkta
from tests.fakes.tenant import make_tenant
from tests.support.idp import failed_checks, run_export


@pytest.fixture(scope="module")
def tenant():
    return make_tenant(500, 20, seed=23)


@pytest.fixture(scope="module")
def key_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def secrets_sent(fake) -> set[str]:
    """Every credential the fake received: Authorization header values and their tokens, client
    secrets and client assertions in token request bodies."""
    found: set[str] = set()
    for r in fake.requests:
        auth = r.headers.get("authorization")
        if auth:
            found.add(auth)
            found.add(auth.split(" ", 1)[-1])
        if r.body:
            for part in r.body.decode("utf-8", "replace").replace("&", "\n").replace('"', "\n").splitlines():
                name, _, value = part.partition("=")
                if name in ("client_secret", "client_assertion") and value:
                    found.add(value)
    return {s for s in found if len(s) >= 8}


def assert_nothing_leaked(text: str, secrets: set[str]) -> None:
    leaked = [s[:6] + "..." for s in secrets if s in text]
    assert leaked == [], f"secrets in the output: {leaked}"


def test_okta_private_key_jwt_refreshes_tokens_and_logs_no_secret(key_pair, provider_env, snapshot_db,
                                                                  snapshot_engine):
    private, public = key_pair
    # Four-second tokens (renewed after two) and slow user pages: the export outlives a token.
    with FakeOkta(make_tenant(1000, 10, seed=24), client_public_key=public, token_ttl=4) as fake:
        provider_env(OKTA_BASE_URL=fake.base_url, OKTA_CLIENT_ID=fake.client_id, OKTA_PRIVATE_KEY=private)
        fake.faults.slow(0.6, 20, path_prefix="/api/v1/users")

        result = run_export(snapshot_db, "--provider", "okta", "-v")

        assert result.code == 0, result.stderr
        assert fake.issued_tokens >= 2
        # Tokens were renewed before they expired: no request was refused.
        assert fake.request_count(status=401) == 0
        sent = secrets_sent(fake)
        assert any(s.startswith("Bearer ") for s in sent)
        sent |= {line for line in private.splitlines() if len(line) > 20}
        assert_nothing_leaked(result.everything, sent)
        assert failed_checks(snapshot_engine) == []


def test_failures_log_no_secret(tenant, provider_env, snapshot_db):
    with FakeKeycloak(tenant) as kc, FakeAuth0(tenant) as a0:
        provider_env(**kc.settings(), **a0.settings())
        kc.faults.add_5xx(2, 500)
        a0.faults.add_429_storm(1, path_prefix="/api/v2/users")
        a0.faults.malformed_json(1, path_prefix="/oauth/token")
        outcomes = [run_export(snapshot_db, "--provider", "keycloak", "-v"),
                    run_export(snapshot_db, "--provider", "auth0", "-v")]
        kc.revoke_tokens()
        outcomes.append(run_export(snapshot_db, "--provider", "keycloak", "-v"))
        secrets = secrets_sent(kc) | secrets_sent(a0) | {kc.client_secret, a0.client_secret}
    assert [o.code for o in outcomes] == [0, 0, 0]
    for outcome in outcomes:
        assert_nothing_leaked(outcome.everything, secrets)


def test_settings_from_a_dotenv_file_with_a_key_file(tenant, key_pair, provider_env, tmp_path, snapshot_db):
    private, public = key_pair
    with FakeOkta(tenant, client_public_key=public) as fake:
        key_file = tmp_path / "okta.pem"
        key_file.write_text(private)
        # provider_env made tmp_path the working directory: `.env` there is read.
        (tmp_path / ".env").write_text(
            f"OKTA_BASE_URL={fake.base_url}\nOKTA_CLIENT_ID={fake.client_id}\nOKTA_PRIVATE_KEY_FILE={key_file}\n")

        result = run_export(snapshot_db, "--provider", "okta")

        assert result.code == 0, result.stderr
        assert fake.issued_tokens == 1
        assert_nothing_leaked(result.everything, secrets_sent(fake) | {private.splitlines()[1]})
