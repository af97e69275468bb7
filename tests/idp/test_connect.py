"""A provider that cannot be reached, or a base URL copied with the API's own path: one line naming
the variable and the host, exit 2, within a few seconds (a closed loopback port, a host name that
does not resolve), and a base URL ending in the API path refused with the value to set."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.idp.config import KeycloakSettings, load
from app.idp.errors import IdpConnectError, IdpError
from app.idp.http import HttpCore, RetryPolicy
from tests.support.idp import last_run, run_export

SETTINGS = {
    "okta": {"OKTA_API_TOKEN": "00" + "t" * 40},
    "keycloak": {"KEYCLOAK_REALM": "acme", "KEYCLOAK_CLIENT_ID": "orgmig", "KEYCLOAK_CLIENT_SECRET": "s" * 20},
    "auth0": {"AUTH0_CLIENT_ID": "orgmig", "AUTH0_CLIENT_SECRET": "s" * 20},
}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("provider", ["okta", "keycloak", "auth0"])
@pytest.mark.parametrize("where", ["closed port", "unresolvable host"])
def test_an_unreachable_provider_is_one_line_naming_the_variable_and_host_and_exit_2(provider, where, provider_env,
                                                                                    snapshot_db, snapshot_engine):
    port = closed_port()
    host = f"127.0.0.1:{port}" if where == "closed port" else "nonexistent.invalid"
    variable = f"{provider.upper()}_BASE_URL"
    provider_env(**{variable: f"http://{host}", **SETTINGS[provider]})

    started = time.monotonic()
    result = run_export(snapshot_db, "--provider", provider)
    took = time.monotonic() - started

    assert result.code == 2, result.everything[-3000:]
    [line] = result.messages
    assert line.startswith(f"orgmig export: {provider}: cannot reach {host} (")
    assert f"check {variable} (now http://{host})" in line
    why = "connection refused" if where == "closed port" else "the host name does not resolve"
    assert why in line
    assert took < 6  # a short bounded retry, not the 5xx policy's
    assert "retrying" not in result.everything  # no log line per try
    assert last_run(snapshot_engine, provider).status == "failed"


def test_once_the_provider_has_answered_a_refused_connection_takes_the_outage_policy():
    """A provider that goes away after answering is an outage (the 5xx policy: retried with
    backoff, then exit 1), not a wrong URL."""

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    retry = RetryPolicy(attempts=3, rate_limit_attempts=3, base_delay=0.01, max_delay=0.02, request_timeout=2,
                        deadline=6)

    async def two_requests() -> BaseException:
        async with HttpCore(provider="okta", base_url=base, concurrency=2, retry=retry) as core:
            assert (await core.request("GET", "/api/v1/users", bucket="users")).body == []
            server.shutdown()
            server.server_close()
            with pytest.raises(IdpError) as caught:
                await core.request("GET", "/api/v1/users", bucket="users")
            return caught.value

    error = asyncio.run(two_requests())
    assert not isinstance(error, IdpConnectError) and error.exit_code == 1
    assert "gave up after 3 attempts" in str(error) and "connection refused" in str(error)


@pytest.mark.parametrize(("variable", "value", "fix"), [
    ("OKTA_BASE_URL", "https://acme.okta.com/api/v1", "set OKTA_BASE_URL=https://acme.okta.com"),
    ("OKTA_BASE_URL", "https://acme.okta.com/oauth2/default/", "set OKTA_BASE_URL=https://acme.okta.com"),
    ("KEYCLOAK_BASE_URL", "https://sso.example.org/admin/realms/acme",
     "set KEYCLOAK_BASE_URL=https://sso.example.org (and KEYCLOAK_REALM=acme)"),
    ("KEYCLOAK_BASE_URL", "https://sso.example.org/auth/realms/acme",
     "set KEYCLOAK_BASE_URL=https://sso.example.org/auth (and KEYCLOAK_REALM=acme)"),
    ("AUTH0_BASE_URL", "https://acme.eu.auth0.com/api/v2/", "set AUTH0_BASE_URL=https://acme.eu.auth0.com"),
])
def test_a_base_url_with_the_api_path_is_refused_with_the_fix(variable, value, fix, provider_env, snapshot_db):
    provider = variable.split("_")[0].lower()
    provider_env(**{variable: value, **SETTINGS[provider]})
    result = run_export(snapshot_db, "--provider", provider)
    assert result.code == 2
    [line] = result.messages
    assert line.startswith(f"orgmig export: {provider} configuration: {variable} ends in the API path")
    assert line.endswith(fix)


@pytest.mark.parametrize("value", ["https://sso.example.org/auth", "https://sso.example.org/keycloak-realms"])
def test_a_keycloak_relative_path_is_kept(value, provider_env, snapshot_db):
    """Keycloak before 17 serves under /auth: a relative path that is not the API's is no error."""
    provider_env(KEYCLOAK_BASE_URL=value, **SETTINGS["keycloak"])
    assert load("keycloak", KeycloakSettings, None).base_url == value
