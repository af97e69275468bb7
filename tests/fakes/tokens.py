"""Access tokens for an application's own API, as Auth0 issues them (Applications > APIs): RS256
JWTs signed with the tenant's key, whose public half is published at /.well-known/jwks.json, for
machine-to-machine applications (client credentials) authorized for that API."""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class ApiTokens:
    def __init__(self) -> None:
        self.identifiers: set[str] = set()
        self.clients: dict[str, str] = {}  # client id -> secret, besides the management client
        self._keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self.rotate()

    def add_api(self, identifier: str) -> str:
        self.identifiers.add(identifier)
        return identifier

    def add_client(self) -> tuple[str, str]:
        """A new machine-to-machine application: (client id, client secret)."""
        client_id, secret = secrets.token_hex(16), secrets.token_urlsafe(32)
        self.clients[client_id] = secret
        return client_id, secret

    def rotate(self) -> str:
        """A new signing key (the old one stays published, as after a rotation); its key id."""
        kid = secrets.token_urlsafe(12)
        self._keys.append((kid, rsa.generate_private_key(public_exponent=65537, key_size=2048)))
        return kid

    @property
    def signing_key(self) -> tuple[str, rsa.RSAPrivateKey]:
        return self._keys[-1]

    def mint(self, issuer: str, client_id: str, audience: str, ttl: float) -> str:
        kid, key = self.signing_key
        now = int(time.time())
        claims = {"iss": issuer, "sub": f"{client_id}@clients", "aud": audience, "iat": now, "exp": now + int(ttl),
                  "gty": "client-credentials", "azp": client_id}
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self._keys:
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}
