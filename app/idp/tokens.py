"""Access tokens: a static API token, or OAuth2 client credentials cached until shortly before
they expire (and refreshed once after a 401, in case the provider revoked them early).

The token endpoint goes through the same HTTP core as every other call (rate limits, retries),
without an Authorization header of its own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING, Protocol

from app.errors import ConfigError
from app.idp.errors import IdpAuthError, IdpHttpError, register_secret

if TYPE_CHECKING:
    from app.idp.http import HttpCore


class TokenSource(Protocol):
    """What HttpCore asks a token for (StaticToken, or a client-credentials token fetched and
    renewed): the Authorization header, and whether a 401 may be cured by fetching a fresh one."""

    refreshable: bool

    async def authorization(self, core: HttpCore) -> str: ...

    def invalidate(self) -> None: ...


class StaticToken:
    """A long-lived API token sent with a fixed scheme (Okta `SSWS`)."""

    refreshable = False

    def __init__(self, scheme: str, token: str) -> None:
        register_secret(token)
        self._header = f"{scheme} {token}"

    async def authorization(self, core: HttpCore) -> str:
        return self._header

    def invalidate(self) -> None:
        return None


class ClientCredentials:
    """OAuth2 client-credentials grant. `form` builds the request body at each fetch (so a
    client assertion is signed fresh); `basic` is an optional (id, secret) for HTTP Basic."""

    refreshable = True

    def __init__(self, token_url: str, form, *, hint: str, basic: tuple[str, str] | None = None) -> None:
        self.token_url = token_url
        self._form = form
        self._basic = basic
        self._hint = hint
        self._token: str | None = None
        self._token_type = "Bearer"
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._token = None

    async def authorization(self, core: HttpCore) -> str:
        if self._token is None or time.monotonic() >= self._refresh_at:
            async with self._lock:
                if self._token is None or time.monotonic() >= self._refresh_at:
                    await self._fetch(core)
        return f"{self._token_type} {self._token}"

    async def _fetch(self, core: HttpCore) -> None:
        try:
            reply = await core.request(
                "POST", self.token_url, data=self._form(), bucket="token", auth=False,
                basic=self._basic, need=self._hint,
            )
        except IdpAuthError:
            raise
        except IdpHttpError as exc:
            if exc.status in (400, 401, 403):
                raise IdpAuthError(exc.method, exc.endpoint, exc.status, f"{exc.args[0].split(': ', 1)[-1]}") from None
            raise
        body = reply.body if isinstance(reply.body, dict) else {}
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise IdpHttpError("POST", reply.path, reply.status, "the token response has no access_token")
        register_secret(token)
        token_type = str(body.get("token_type") or "Bearer")
        if token_type.lower() == "dpop":
            raise IdpAuthError("POST", reply.path, reply.status,
                               "the service app requires DPoP-bound tokens; turn off 'Require DPoP' for it")
        try:
            lifetime = float(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        margin = min(max(30.0, lifetime * 0.1), lifetime / 2)
        self._token, self._token_type = token, "Bearer"
        self._refresh_at = time.monotonic() + lifetime - margin


def okta_private_key_jwt(token_url: str, client_id: str, private_key_pem: str, key_id: str | None, scopes: str):
    """The form of Okta's client-credentials grant with a `private_key_jwt` client assertion.
    (PyJWT and cryptography are imported here, by the one setup that signs: importing them costs
    more than the rest of the export's modules, and every `alembic` run imports the registry.)"""
    register_secret(private_key_pem)
    import jwt

    try:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        key = load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError, ImportError):
        raise ConfigError("OKTA_PRIVATE_KEY is not a readable unencrypted PEM private key") from None

    def form() -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": token_url, "iat": now, "exp": now + 300,
                  "jti": uuid.uuid4().hex}
        headers = {"kid": key_id} if key_id else None
        assertion = jwt.encode(claims, key, algorithm="RS256", headers=headers)
        return {
            "grant_type": "client_credentials",
            "scope": scopes,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }

    return form
