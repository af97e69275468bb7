"""Auth0's client-credentials tokens, token-bucket rate limits and error bodies."""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any
from urllib.parse import unquote

from ..base import FaultRule, RateState, Request, Response, TokenBucket, proxy_error_page

_RATE_MESSAGE = ("Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and "
                 "X-RateLimit-Reset headers.")


class Auth0Auth:
    """Tokens, scopes, rate limits and Auth0's error responses."""

    def mint_access_token(self, scopes: set[str] | frozenset[str] | None = None, ttl: int | None = None) -> str:
        return self._mint(sorted(scopes if scopes is not None else self.scopes), ttl)

    def revoke_tokens(self) -> None:
        self._tokens_not_before = time.time() + 0.001
        time.sleep(0.002)

    def exhaust_rate_limit(self) -> RateState:
        return self.bucket.exhaust()

    @staticmethod
    def _err(status: int, error: str, message: str, code: str | None = None, **extra: Any) -> Response:
        body: dict[str, Any] = {"statusCode": status, "error": error, "message": message}
        if code:
            body["errorCode"] = code
        body.update(extra)
        return Response.json(status, body)

    def _bad_request(self, message: str, code: str = "invalid_query_string") -> Response:
        return self._err(400, "Bad Request", message, code)

    def _rate_error(self) -> Response:
        return self._err(429, "Too Many Requests", _RATE_MESSAGE, "too_many_requests")

    def _bucket_for(self, req: Request) -> TokenBucket | None:
        if req.path.startswith("/oauth/"):
            return self.token_bucket
        if not req.path.startswith("/api/v2"):
            return None
        best = None
        for prefix, b in self.endpoint_buckets.items():
            if req.path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, b)
        return best[1] if best else self.bucket

    def _fault_response(self, req: Request, rule: FaultRule) -> Response:
        if rule.kind == "429":
            bucket = self._bucket_for(req) or self.bucket
            req.ctx["rate"] = RateState(False, bucket.capacity, 0, bucket.peek().reset if bucket.rate else 0)
            return self._rate_error()
        if rule.status == 500:
            return self._err(500, "Internal Server Error", "Internal Server Error")
        if rule.status == 503:
            return self._err(503, "Service Unavailable", "Service Unavailable")
        return proxy_error_page(rule.status or 502)

    def _after(self, req: Request, resp: Response) -> Response:
        st = req.ctx.get("rate")
        if st is None:
            bucket = self._bucket_for(req)
            if bucket is None:
                return resp
            st = bucket.peek()
        resp.headers += [("x-ratelimit-limit", str(st.limit)), ("x-ratelimit-remaining", str(st.remaining)),
                         ("x-ratelimit-reset", str(st.reset))]
        return resp

    def _not_found(self, req: Request) -> Response:
        return self._err(404, "Not Found", "Not Found")

    def _method_not_allowed(self, req: Request) -> Response:
        return self._err(405, "Method Not Allowed", "Method Not Allowed")

    def _internal_error(self, req: Request) -> Response:
        return self._err(500, "Internal Server Error", "Internal Server Error")

    def _before(self, req: Request, route) -> Response | None:
        if route.auth:
            auth = req.header("authorization") or ""
            scheme, _, token = auth.partition(" ")
            token = token.strip()
            if not auth:
                return self._err(401, "Unauthorized", "Missing authentication")
            if scheme.lower() != "bearer" or token.count(".") != 2:
                return self._err(401, "Unauthorized", "Bad HTTP authentication header format",
                                 attributes={"error": "Bad HTTP authentication header format"})
            claims = self.signer.verify(token)
            if claims is None or claims.get("aud") != self.audience or claims.get("iat", 0) < self._tokens_not_before:
                return self._err(401, "Unauthorized", "Invalid token", attributes={"error": "Invalid token"})
            if claims.get("exp", 0) <= time.time():
                msg = "Expired token received for JSON Web Token validation"
                return self._err(401, "Unauthorized", msg, attributes={"error": msg})
            granted = set(str(claims.get("scope", "")).split())
            for group in route.need:
                if not granted.intersection(group):
                    return self._err(403, "Forbidden", f"Insufficient scope, expected any of: {','.join(group)}",
                                     "insufficient_scope")
            req.principal = granted
        bucket = self._bucket_for(req)
        if bucket is not None:
            st = bucket.take()
            req.ctx["rate"] = st
            if not st.allowed:
                return self._rate_error()
        return None

    def _mint(self, scopes: list[str], ttl: int | None = None) -> str:
        now = time.time()
        self.issued_tokens += 1
        return self.signer.mint({
            "iss": f"{self.base_url}/",
            "sub": f"{self.client_id}@clients",
            "aud": self.audience,
            "iat": now,
            "exp": round(now + (self.token_ttl if ttl is None else ttl), 3),
            "scope": " ".join(scopes),
            "gty": "client-credentials",
            "azp": self.client_id,
        })

    def _token(self, req: Request) -> Response:
        form = req.form()
        auth = req.header("authorization") or ""
        cid, secret = form.get("client_id"), form.get("client_secret")
        if auth.lower().startswith("basic "):
            try:
                b_id, _, b_secret = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
                cid, secret = unquote(b_id), unquote(b_secret)
            except (ValueError, UnicodeDecodeError):
                cid = secret = None
        grant = form.get("grant_type")
        if not grant:
            return Response.json(400, {"error": "invalid_request",
                                       "error_description": "Missing required parameter: grant_type"})
        known = self.apis.clients.get(cid or "", self.client_secret if cid == self.client_id else None)
        if not cid or known is None or not secret or not secrets.compare_digest(secret, known):
            return Response.json(401, {"error": "access_denied", "error_description": "Unauthorized"})
        if grant != "client_credentials":
            return Response.json(403, {"error": "unauthorized_client",
                                       "error_description": f"Grant type '{grant}' not allowed for the client.",
                                       "error_uri": "https://auth0.com/docs/clients/client-grant-types"})
        audience = form.get("audience")
        if not audience:
            return Response.json(403, {"error": "access_denied", "error_description": "No audience parameter was "
                                       "provided, and no default audience has been configured"})
        if audience in self.apis.identifiers:
            # A custom API (Settings > APIs): an RS256 access token, keys at /.well-known/jwks.json
            return Response.json(200, {"access_token": self.apis.mint(f"{self.base_url}/", cid, audience,
                                                                      self.token_ttl),
                                       "expires_in": self.token_ttl, "token_type": "Bearer"})
        if audience != self.audience or cid != self.client_id:
            return Response.json(403, {"error": "access_denied",
                                       "error_description": f"Service not enabled within domain: {audience}"})
        requested = form.get("scope", "").split()
        if requested:
            missing = [s for s in requested if s not in self.scopes]
            if missing:
                detail = f"Client has not been granted scopes: {' '.join(missing)}"
                return Response.json(403, {"error": "access_denied", "error_description": detail})
            granted = sorted(set(requested))
        else:
            granted = sorted(self.scopes)
        return Response.json(200, {"access_token": self._mint(granted), "scope": " ".join(granted),
                                   "expires_in": self.token_ttl, "token_type": "Bearer"})
