"""Who may call `orgmig serve`: access tokens the identity provider (the fake Auth0, over
loopback) issued by client credentials to an allowed application, checked against its JWKS; every
forged, foreign or stale token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.config import Settings
from app.service.auth import Jwks, JwtCheck, from_settings
from tests.fakes.auth0 import FakeAuth0
from tests.service.serving import TOKEN, free_port, migrate, serving
from tests.support.migrate import orgmig

API = "https://orgmig.example/login-migration"
JWKS = "/.well-known/jwks.json"


@pytest.fixture
def provider(start_fake) -> FakeAuth0:
    fake = start_fake(FakeAuth0)
    fake.apis.add_api(API)
    return fake


def _settings(fake: FakeAuth0, *clients: str, **more) -> Settings:
    return Settings(serve_jwt_issuer=f"{fake.base_url}/", serve_jwt_audience=API,
                    serve_jwt_client_ids=",".join(clients), **more)


def _client_token(fake: FakeAuth0, client: tuple[str, str]) -> str:
    reply = httpx.post(fake.token_url, data={"grant_type": "client_credentials", "client_id": client[0],
                                             "client_secret": client[1], "audience": API}, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()["access_token"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict, claims: dict, signature: bytes = b"") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(signature)}"


@pytest.fixture
def served(schema, provider):
    caller, other = provider.apis.add_client(), provider.apis.add_client()
    authenticate = from_settings(_settings(provider, caller[0]), refetch_interval=1.0)
    with serving(schema.url, authenticate) as base:
        yield base, caller, other


def _status(base: str, token: str) -> int:
    # an authorized call for a user nobody has answers 404
    return migrate(base, {"keycloak_user_id": "nobody"}, token=token).status_code


def test_a_token_of_the_allowed_client_is_accepted_and_forgeries_are_not(served, provider):
    base, caller, other = served
    good = _client_token(provider, caller)
    assert _status(base, good) == 404
    claims = jwt.decode(good, options={"verify_signature": False})
    kid, key = provider.apis.signing_key
    now = int(time.time())

    def signed(changes: dict, with_key=key, headers: dict | None = None) -> str:
        return jwt.encode({**claims, **changes}, with_key, algorithm="RS256", headers=headers or {"kid": kid})

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    header_hs = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing_input = ".".join(_unsigned(header_hs, claims).split(".")[:2]).encode()
    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    hs_with_public_key = signing_input.decode() + "." + _b64(mac)
    refused = {
        "alg none": _unsigned({"alg": "none", "typ": "JWT", "kid": kid}, claims),
        "HMAC made with the public key": hs_with_public_key,
        "another key, the same key id": signed({}, with_key=stranger),
        "wrong issuer": signed({"iss": "https://evil.example/"}),
        "wrong audience": signed({"aud": "https://another-api.example/"}),
        "expired": signed({"iat": now - 7200, "exp": now - 3600}),
        "no expiry": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, key, algorithm="RS256",
                                headers={"kid": kid}),
        "unknown key id": signed({}, headers={"kid": "not-a-key-of-the-provider"}),
        "a signature cut off": good[: good.rindex(".") + 5],
        "the static token's place, no static token configured": TOKEN,
    }
    for what, token in refused.items():
        reply = migrate(base, {"keycloak_user_id": "nobody"}, token=token)
        assert reply.status_code == 401, what
        assert reply.headers["www-authenticate"] == "Bearer" and "error" in reply.json(), what
    # a valid token of another application of the same tenant: known, but not allowed
    foreign = migrate(base, {"keycloak_user_id": "nobody"}, token=_client_token(provider, other))
    assert foreign.status_code == 403 and foreign.json() == {"error": "this client may not call the migration"}


def test_a_rotated_key_is_fetched_once_and_made_up_key_ids_do_not_flood_the_provider(served, provider):
    base, caller, _ = served
    fetched = provider.request_count(JWKS)
    assert fetched == 1  # at start
    provider.apis.rotate()
    time.sleep(1.1)  # past the (shortened) refetch interval
    assert _status(base, _client_token(provider, caller)) == 404  # signed with the new key
    assert provider.request_count(JWKS) == 2
    claims = jwt.decode(_client_token(provider, caller), options={"verify_signature": False})
    kid, key = provider.apis.signing_key
    started = time.monotonic()
    for _ in range(20):
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": secrets.token_hex(8)})
        assert _status(base, token) == 401
    # at most one fetch per (shortened, 1 s) interval, however many made-up ids: on a quiet
    # machine the 20 calls take well under a second, so one more fetch at most
    intervals = math.ceil(time.monotonic() - started)
    assert provider.request_count(JWKS) <= 2 + intervals


def test_the_static_token_and_provider_tokens_side_by_side(schema, provider):
    caller = provider.apis.add_client()
    authenticate = from_settings(_settings(provider, caller[0], serve_token=TOKEN))
    with serving(schema.url, authenticate) as base:
        assert _status(base, TOKEN) == 404
        assert _status(base, _client_token(provider, caller)) == 404
        assert _status(base, TOKEN[:-1] + "x") == 401


@pytest.mark.parametrize(("env", "says"), [
    ({}, "orgmig serve needs callers to authenticate"),
    ({"ORGMIG_SERVE_JWT_ISSUER": "https://tenant.example/"}, "ORGMIG_SERVE_JWT_AUDIENCE, ORGMIG_SERVE_JWT_CLIENT_IDS"),
    ({"ORGMIG_SERVE_JWT_ISSUER": "http://tenant.example/", "ORGMIG_SERVE_JWT_AUDIENCE": API,
      "ORGMIG_SERVE_JWT_CLIENT_IDS": "abc"}, "the key set must come over https"),
    ({"ORGMIG_SERVE_JWT_ISSUER": "https://tenant.example/", "ORGMIG_SERVE_JWT_AUDIENCE": API,
      "ORGMIG_SERVE_JWT_CLIENT_IDS": "abc", "ORGMIG_SERVE_JWT_ALGORITHMS": "HS256"}, "HS256 not accepted"),
    ({"ORGMIG_SERVE_TOKEN": "short"}, "shorter than 16 characters"),
])
def test_the_command_refuses_a_configuration_that_lets_anyone_in(engine, env, says):
    proc = orgmig(engine.url, "serve", "--port", str(free_port()), **env)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr


def test_the_command_names_an_unreachable_key_set(engine):
    port = free_port()
    proc = orgmig(engine.url, "serve", "--port", str(free_port()), ORGMIG_SERVE_JWT_ISSUER=f"http://127.0.0.1:{port}/",
                  ORGMIG_SERVE_JWT_AUDIENCE=API, ORGMIG_SERVE_JWT_CLIENT_IDS="abc")
    assert proc.returncode == 2
    assert f"the JWKS at http://127.0.0.1:{port}/.well-known/jwks.json could not be fetched" in proc.stderr


def test_a_remembered_token_is_refused_once_it_expires(provider):
    """A verified token is remembered until it expires, never after: the next call re-checks it."""
    client = provider.apis.add_client()
    jwks = Jwks(f"{provider.base_url}/.well-known/jwks.json", ("RS256",))
    jwks.fetch()
    check = JwtCheck(f"{provider.base_url}/", API, frozenset({client[0]}), jwks, leeway=0)
    token = provider.apis.mint(f"{provider.base_url}/", client[0], API, ttl=2)
    assert check(token).status == 200 and check(token).status == 200
    assert provider.request_count(JWKS) == 1
    time.sleep(2.2)
    late = check(token)
    assert late.status == 401 and late.message == "the token has expired"
