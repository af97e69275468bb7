"""`JwtSigner` and `verify_rsa_jwt`: access tokens minted by the fakes (HS256 with a per-server key)
and RS256/384/512 client assertions checked against a configured public key."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from .encoding import b64url, b64url_decode, dumps


class JwtSigner:
    """Mints and checks HS256 JWTs with a key private to one fake server."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    def mint(self, claims: dict[str, Any], *, kid: str = "fake-signing-key") -> str:
        header = {"alg": "HS256", "typ": "JWT", "kid": kid}
        signing_input = f"{b64url(dumps(header))}.{b64url(dumps(claims))}"
        sig = hmac.new(self.key, signing_input.encode("ascii"), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(sig)}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """Claims if the signature is ours, else None (expiry is the caller's business)."""
        try:
            header_b64, claims_b64, sig_b64 = token.split(".")
            expected = hmac.new(self.key, f"{header_b64}.{claims_b64}".encode("ascii"), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, b64url_decode(sig_b64)):
                return None
            claims = json.loads(b64url_decode(claims_b64))
            return claims if isinstance(claims, dict) else None
        except Exception:  # noqa: BLE001 - any malformed token is simply invalid
            return None


def split_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) without verifying; ValueError if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("a JWT has three dot-separated parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except Exception as exc:
        raise ValueError("JWT parts are not base64url JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("JWT header and claims must be objects")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), sig


_DIGEST_INFO = {
    "RS256": (hashlib.sha256, bytes.fromhex("3031300d060960864801650304020105000420")),
    "RS384": (hashlib.sha384, bytes.fromhex("3041300d060960864801650304020205000430")),
    "RS512": (hashlib.sha512, bytes.fromhex("3051300d060960864801650304020305000440")),
}


def _jwk_keys(key: Any) -> list[dict[str, Any]]:
    if isinstance(key, dict) and "keys" in key:
        return [k for k in key["keys"] if isinstance(k, dict)]
    if isinstance(key, dict):
        return [key]
    return []


def verify_rsa_jwt(public_key: Any, header: dict[str, Any], signing_input: bytes, signature: bytes) -> bool:
    """Check an RS256/RS384/RS512 signature (RSASSA-PKCS1-v1_5).

    `public_key` is an RSA JWK, a JWKS (`{"keys": [...]}`, matched on `kid` when both have one),
    or a PEM public key (needs the `cryptography` package)."""
    alg = header.get("alg")
    if alg not in _DIGEST_INFO:
        return False
    if isinstance(public_key, (str, bytes)):
        try:
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import padding
        except ImportError as exc:  # pragma: no cover - cryptography ships with pyjwt[crypto]
            raise RuntimeError("a PEM public key needs the cryptography package; pass a JWK instead") from exc
        pem = public_key.encode() if isinstance(public_key, str) else public_key
        key = serialization.load_pem_public_key(pem)
        algo = {"RS256": hashes.SHA256(), "RS384": hashes.SHA384(), "RS512": hashes.SHA512()}[alg]
        try:
            key.verify(signature, signing_input, padding.PKCS1v15(), algo)  # type: ignore[union-attr]
            return True
        except Exception:  # noqa: BLE001
            return False
    digest_fn, prefix = _DIGEST_INFO[alg]
    kid = header.get("kid")
    for jwk in _jwk_keys(public_key):
        if jwk.get("kty") != "RSA":
            continue
        if kid and jwk.get("kid") and jwk["kid"] != kid:
            continue
        n = int.from_bytes(b64url_decode(jwk["n"]), "big")
        e = int.from_bytes(b64url_decode(jwk["e"]), "big")
        k = (n.bit_length() + 7) // 8
        if len(signature) != k:
            continue
        em = pow(int.from_bytes(signature, "big"), e, n).to_bytes(k, "big")
        t = prefix + digest_fn(signing_input).digest()
        expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
        if hmac.compare_digest(em, expected):
            return True
    return False
