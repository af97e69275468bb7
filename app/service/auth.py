"""Who may call `orgmig serve`: an access token the identity provider issued to one of the allowed
application clients (OAuth client credentials: Auth0, Okta and Keycloak all sign them as JWTs with
keys they publish in a JWKS), or, for setups without a provider-issued token, one static bearer
token.

A JWT is accepted only when its signature verifies with a key of the configured JWKS under one of
the configured asymmetric algorithms (never `none`, never an HMAC: a token "signed" with the public
key as an HMAC secret is refused), its issuer and audience are the configured ones, it has not
expired, and its client (`azp`, `client_id` or Okta's `cid`) is one of the allowed clients. A token
that verifies but names another client is 403; anything else is 401.

The JWKS is fetched once at start, kept, and fetched again when a token names a key id it does not
hold (a rotated key), at most once a minute: a stream of tokens with made-up key ids costs the
provider one request a minute."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import jwt

from app.errors import ConfigError

log = logging.getLogger("app.service")

# The asymmetric algorithms a provider may sign access tokens with; HMAC and `none` never.
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
CLIENT_CLAIMS = ("azp", "client_id", "cid")
REFETCH_INTERVAL_S = 60.0
LEEWAY_S = 30


@dataclass(frozen=True)
class Verdict:
    """The outcome of one Authorization header: 200, 401 or 403, with what to tell the caller."""
    status: int
    message: str = ""
    client: str | None = None


OK = Verdict(200)
MISSING = Verdict(401, "missing or wrong bearer token")


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Jwks:
    """The provider's signing keys by key id, fetched at most once per `interval` seconds."""

    def __init__(self, url: str, algorithms: tuple[str, ...], interval: float = REFETCH_INTERVAL_S,
                 timeout: float = 5.0) -> None:
        self.url, self.algorithms, self.interval, self.timeout = url, algorithms, interval, timeout
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -float("inf")
        self._lock = threading.Lock()

    def fetch(self) -> None:
        """Fetch the key set now; raises httpx.HTTPError or ValueError (not a JWKS)."""
        reply = httpx.get(self.url, timeout=self.timeout, follow_redirects=False)
        reply.raise_for_status()
        keys: dict[str, jwt.PyJWK] = {}
        for data in reply.json().get("keys", []):
            if data.get("use", "sig") != "sig" or not data.get("kid"):
                continue
            try:
                keys[data["kid"]] = jwt.PyJWK(data)
            except (jwt.PyJWKError, jwt.InvalidKeyError):
                continue  # a key type this process cannot use: tokens signed with it are refused
        if not keys:
            raise ValueError(f"{self.url} holds no signing key")
        self._keys, self._fetched_at = keys, time.monotonic()

    def holds(self, kid: str) -> bool:
        return kid in self._keys

    def key(self, kid: str) -> jwt.PyJWK | None:
        found = self._keys.get(kid)
        if found is not None:
            return found
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= self.interval:
                try:
                    self.fetch()
                except (httpx.HTTPError, ValueError) as exc:
                    self._fetched_at = time.monotonic()  # the provider is not asked again for a minute
                    log.warning("the JWKS at %s could not be fetched again: %s", self.url, exc)
            return self._keys.get(kid)


class JwtCheck:
    """One token's verdict; a token that verified is remembered (by its whole text, signature
    included) until it expires, so the same client's next calls cost a lookup (a hook reuses
    its token for hours). At most CACHED tokens are kept; a refused token is never kept."""

    CACHED = 4096

    def __init__(self, issuer: str, audience: str, client_ids: frozenset[str], jwks: Jwks,
                 leeway: float = LEEWAY_S) -> None:
        self.issuer, self.audience, self.client_ids, self.jwks = issuer, audience, client_ids, jwks
        self.leeway = leeway
        self._verified: dict[str, tuple[float, Verdict]] = {}

    def remembered(self, token: str) -> Verdict | None:
        found = self._verified.get(token)
        if found is None:
            return None
        expires, verdict = found
        if time.time() >= expires + self.leeway:
            self._verified.pop(token, None)
            return None
        return verdict

    def __call__(self, token: str) -> Verdict:
        verdict = self.remembered(token)
        if verdict is not None:
            return verdict
        verdict, expires = self._check(token)
        if expires is not None:
            if len(self._verified) >= self.CACHED:
                self._verified.clear()
            self._verified[token] = (expires, verdict)
        return verdict

    def _check(self, token: str) -> tuple[Verdict, float | None]:
        """The verdict, and (for a token that verified) when it expires."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            return Verdict(401, "the bearer token is not a valid JWT"), None
        if header.get("alg") not in self.jwks.algorithms:
            return Verdict(401, "the token's algorithm is not accepted"), None
        key = self.jwks.key(str(header.get("kid") or ""))
        if key is None:
            return Verdict(401, "the token is not signed by a key of the identity provider"), None
        try:
            claims = jwt.decode(token, key=key, algorithms=[header["alg"]], audience=self.audience,
                                issuer=self.issuer, leeway=self.leeway,
                                options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            return Verdict(401, "the token has expired"), None
        except jwt.InvalidTokenError:
            return Verdict(401, "the token does not verify (signature, issuer or audience)"), None
        client = next((str(claims[c]) for c in CLIENT_CLAIMS if claims.get(c)), None)
        if client not in self.client_ids:
            return Verdict(403, "this client may not call the migration", client), float(claims["exp"])
        return Verdict(200, client=client), float(claims["exp"])


class Authenticator:
    """The static token, the provider's tokens, or both; at least one (else a ConfigError)."""

    def __init__(self, static_token: str | None = None, jwt_check: JwtCheck | None = None) -> None:
        if not static_token and jwt_check is None:
            raise ConfigError("orgmig serve needs callers to authenticate: set ORGMIG_SERVE_JWT_ISSUER,"
                              " ORGMIG_SERVE_JWT_AUDIENCE and ORGMIG_SERVE_JWT_CLIENT_IDS (access tokens"
                              " from the identity provider), or ORGMIG_SERVE_TOKEN (a static bearer token)")
        self.static = static_token.encode() if static_token else None
        self.jwt_check = jwt_check

    def blocks(self, authorization: str | None) -> bool:
        """Whether checking this header may wait for the provider (a JWT naming a key id the key
        set does not hold): the caller runs it off the event loop then."""
        if self.jwt_check is None:
            return False
        token = (authorization or "").partition(" ")[2].strip()
        if self.jwt_check.remembered(token) is not None:
            return False
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.DecodeError:
            return False
        return not self.jwt_check.jwks.holds(str(kid or ""))

    def __call__(self, authorization: str | None) -> Verdict:
        scheme, _, value = (authorization or "").partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            return MISSING
        if self.static is not None and hmac.compare_digest(value.encode(), self.static):
            return OK
        if self.jwt_check is not None and value.count(".") == 2:
            return self.jwt_check(value)
        return MISSING


def from_settings(settings, refetch_interval: float = REFETCH_INTERVAL_S) -> Authenticator:
    """The authenticator `orgmig serve` runs with, its key set fetched once (a ConfigError naming
    the setting when anything is missing, wrong or unreachable)."""
    static = settings.serve_token.get_secret_value().strip() if settings.serve_token else None
    if static is not None and len(static) < 16:
        raise ConfigError("ORGMIG_SERVE_TOKEN is shorter than 16 characters: use a long random value,"
                          " e.g. ORGMIG_SERVE_TOKEN=$(openssl rand -hex 32)")
    issuer, audience = settings.serve_jwt_issuer, settings.serve_jwt_audience
    clients = frozenset(c.strip() for c in settings.serve_jwt_client_ids.split(",") if c.strip())
    if not (issuer or audience or clients):
        return Authenticator(static)
    missing = [name for name, value in (("ORGMIG_SERVE_JWT_ISSUER", issuer), ("ORGMIG_SERVE_JWT_AUDIENCE", audience),
                                        ("ORGMIG_SERVE_JWT_CLIENT_IDS", clients)) if not value]
    if missing:
        raise ConfigError(f"{', '.join(missing)} not set: provider-issued tokens need the issuer, the audience"
                          " and the client ids allowed to call")
    algorithms = tuple(a.strip() for a in settings.serve_jwt_algorithms.split(",") if a.strip())
    wrong = [a for a in algorithms if a not in ASYMMETRIC]
    if wrong or not algorithms:
        raise ConfigError(f"ORGMIG_SERVE_JWT_ALGORITHMS: {', '.join(wrong) or 'empty'} not accepted; use one or more"
                          f" of {', '.join(ASYMMETRIC)}")
    url = settings.serve_jwks_url or issuer.rstrip("/") + "/.well-known/jwks.json"
    if urlsplit(url).scheme != "https" and not (urlsplit(url).scheme == "http" and is_loopback(url)):
        raise ConfigError(f"ORGMIG_SERVE_JWKS_URL {url}: the key set must come over https"
                          " (plain http only from a loopback address)")
    jwks = Jwks(url, algorithms, refetch_interval)
    try:
        jwks.fetch()
    except (httpx.HTTPError, ValueError) as exc:
        raise ConfigError(f"the JWKS at {url} could not be fetched ({exc}): check ORGMIG_SERVE_JWT_ISSUER"
                          " or ORGMIG_SERVE_JWKS_URL") from None
    return Authenticator(static, JwtCheck(issuer, audience, clients, jwks))
