"""Okta's authentication (SSWS and OAuth client credentials with private_key_jwt), rate-limit
buckets and error bodies."""

from __future__ import annotations

import secrets
import time
from typing import Any

from ..base import (
    FaultRule,
    RateState,
    Request,
    Response,
    b64url,
    derived_id,
    proxy_error_page,
    split_jwt,
    verify_rsa_jwt,
)
from .scopes import ASSERTION_TYPE, KNOWN_SCOPES


class OktaAuth:
    """Tokens, scopes, rate limits and Okta's error responses."""

    def mint_access_token(self, scopes: set[str] | frozenset[str] | None = None, ttl: int | None = None) -> str:
        """An access token as the token endpoint would issue it (no client assertion needed)."""
        return self._mint(sorted(scopes if scopes is not None else self.oauth_scopes), ttl)

    def revoke_tokens(self) -> None:
        """Every access token issued so far becomes invalid (401), as after a key rotation."""
        self._tokens_not_before = time.time() + 0.001
        time.sleep(0.002)

    def exhaust_rate_limit(self, bucket: str = "users") -> RateState:
        """Use up the rest of a bucket's window, as another client of the org would."""
        return self.limiters[bucket].exhaust()

    def _error(self, status: int, code: str, summary: str, causes: list[str] | None = None,
               headers: list[tuple[str, str]] | None = None) -> Response:
        self._error_seq += 1
        error_id = "oae" + derived_id("", "err", str(self._error_seq), str(self.port), length=22)
        return Response.json(status, {
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": error_id,
            "errorCauses": [{"errorSummary": c} for c in (causes or [])],
        }, headers)

    def _rate_error(self) -> Response:
        return self._error(429, "E0000047", "API call exceeded rate limit due to too many requests.")

    def _www_authenticate(self, req: Request, error: str, description: str, scope: str = "") -> tuple[str, str]:
        return ("WWW-Authenticate",
                f'Bearer authorization_uri="{self.base_url}/oauth2/v1/authorize", realm="{self.base_url}", '
                f'scope="{scope}", error="{error}", error_description="{description}", resource="{req.path}"')

    def _bucket(self, req: Request) -> str | None:
        if req.route is not None and req.route.bucket:
            return req.route.bucket
        if req.path.startswith("/api/v1"):
            return "other"
        if req.path.startswith("/oauth2/"):
            return "oauth2"
        return None

    def _concurrency_response(self, req: Request, inflight: int) -> Response | None:
        if inflight <= self.concurrency_limit:
            return None
        resp = self._rate_error()
        resp.headers += [("X-Rate-Limit-Limit", "0"), ("X-Rate-Limit-Remaining", "0"),
                         ("X-Rate-Limit-Reset", str(int(time.time()) + 1))]
        req.ctx["rate_headers_set"] = True
        return resp

    def _fault_response(self, req: Request, rule: FaultRule) -> Response:
        if rule.kind == "429":
            resp = self._rate_error()
            bucket = self._bucket(req) or "other"
            st = self.limiters[bucket].peek()
            resp.headers += [("X-Rate-Limit-Limit", str(st.limit)), ("X-Rate-Limit-Remaining", "0"),
                             ("X-Rate-Limit-Reset", str(st.reset))]
            req.ctx["rate_headers_set"] = True
            return resp
        if rule.status == 500:
            return self._error(500, "E0000009", "Internal Server Error")
        return proxy_error_page(rule.status or 503)

    def _after(self, req: Request, resp: Response) -> Response:
        resp.headers.append(("X-Okta-Request-Id", b64url(secrets.token_bytes(18))))
        if req.ctx.get("rate_headers_set"):
            return resp
        bucket = self._bucket(req)
        if bucket is None:
            return resp
        st = req.ctx.get("rate") or self.limiters[bucket].peek()
        resp.headers += [("X-Rate-Limit-Limit", str(st.limit)), ("X-Rate-Limit-Remaining", str(st.remaining)),
                         ("X-Rate-Limit-Reset", str(st.reset))]
        return resp

    def _not_found(self, req: Request) -> Response:
        return self._error(404, "E0000007", f"Not found: Resource not found: {req.path} (Resource)")

    def _method_not_allowed(self, req: Request) -> Response:
        return self._error(405, "E0000022", "The endpoint does not support the provided HTTP method",
                           headers=[("Allow", "GET")])

    def _internal_error(self, req: Request) -> Response:
        return self._error(500, "E0000009", "Internal Server Error")

    def _before(self, req: Request, route) -> Response | None:
        if route.auth:
            auth = req.header("authorization") or ""
            scheme, _, value = auth.partition(" ")
            scopes: frozenset[str] | None
            bearer = scheme.lower() == "bearer"
            if scheme == "SSWS" and value and secrets.compare_digest(value.strip(), self.api_token):
                scopes = self.api_token_scopes
            elif bearer and (claims := self._check_access_token(value.strip())) is not None:
                scopes = frozenset(claims.get("scp") or ())
            else:
                invalid = self._www_authenticate(req, "invalid_token", "The access token is invalid.")
                headers = [invalid] if bearer else []
                return self._error(401, "E0000011", "Invalid token provided", headers=headers)
            needed = [group for group in route.need if scopes is not None and not any(s in scopes for s in group)]
            if needed:
                headers = []
                if bearer:
                    headers.append(self._www_authenticate(
                        req, "insufficient_scope", "The access token provided does not contain the required scopes.",
                        " ".join(needed[0])))
                return self._error(403, "E0000006", "You do not have permission to perform the requested action",
                                   headers=headers)
        bucket = self._bucket(req)
        if bucket is not None:
            st = self.limiters[bucket].hit()
            req.ctx["rate"] = st
            if not st.allowed:
                return self._rate_error()
        return None

    def _check_access_token(self, token: str) -> dict[str, Any] | None:
        claims = self.signer.verify(token)
        if claims is None:
            return None
        now = time.time()
        if claims.get("iss") != self.base_url or claims.get("exp", 0) <= now:
            return None
        if claims.get("iat", 0) < self._tokens_not_before:
            return None
        return claims

    def _mint(self, scopes: list[str], ttl: int | None = None) -> str:
        now = time.time()
        self.issued_tokens += 1
        return self.signer.mint({
            "ver": 1,
            "jti": "AT." + b64url(secrets.token_bytes(24)),
            "iss": self.base_url,
            "aud": self.base_url,
            "iat": now,
            "exp": round(now + (self.token_ttl if ttl is None else ttl), 3),
            "cid": self.client_id,
            "scp": scopes,
            "sub": self.client_id,
        })

    def _oauth_error(self, status: int, error: str, description: str) -> Response:
        return Response.json(status, {"error": error, "error_description": description},
                             [("Cache-Control", "no-cache, no-store"), ("Pragma", "no-cache")])

    def _token(self, req: Request) -> Response:
        form = req.form()
        grant = form.get("grant_type")
        if not grant:
            return self._oauth_error(400, "invalid_request", "The token request must specify a 'grant_type'. "
                                     "Valid values: [client_credentials]")
        if grant != "client_credentials":
            return self._oauth_error(400, "unsupported_grant_type",
                                     f"The authorization server does not support the '{grant}' grant type.")
        if "client_secret" in form or (req.header("authorization") or "").lower().startswith("basic "):
            return self._oauth_error(401, "invalid_client", "Client Credentials requests to the Org Authorization "
                                     "Server must use the private_key_jwt token_endpoint_auth_method.")
        assertion = form.get("client_assertion")
        if not assertion:
            return self._oauth_error(401, "invalid_client", "Client authentication failed. Either the client or "
                                     "the client credentials are invalid.")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return self._oauth_error(400, "invalid_request", "The client_assertion_type is invalid.")
        try:
            header, claims, signing_input, signature = split_jwt(assertion)
        except ValueError:
            return self._oauth_error(401, "invalid_client", "The client_assertion token is malformed.")
        if not str(header.get("alg", "")).startswith(("RS", "ES", "PS")):
            return self._oauth_error(401, "invalid_client",
                                     "The client_assertion token has an invalid signing algorithm.")
        now = time.time()
        if claims.get("iss") != claims.get("sub"):
            return self._oauth_error(401, "invalid_client", "The client_assertion token's iss and sub claims "
                                     "must be the client_id.")
        if claims.get("iss") != self.client_id:
            return self._oauth_error(401, "invalid_client", "Client authentication failed. Either the client or "
                                     "the client credentials are invalid.")
        if claims.get("aud") != self.token_url:
            return self._oauth_error(401, "invalid_client", "The audience claim for client_assertion must be the "
                                     "endpoint invoking the client_assertion.")
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp <= now:
            return self._oauth_error(401, "invalid_client", "The client_assertion token is expired.")
        iat = claims.get("iat", now)
        if not isinstance(iat, (int, float)) or exp - min(iat, now) > 3600 + 5:
            return self._oauth_error(401, "invalid_client",
                                     "The client_assertion token has an expiration too far into the future.")
        jti = claims.get("jti")
        if not jti:
            return self._oauth_error(401, "invalid_client", "The client_assertion token must contain a jti claim.")
        if self.client_public_key is not None and not verify_rsa_jwt(self.client_public_key, header, signing_input,
                                                                     signature):
            return self._oauth_error(401, "invalid_client", "The client_assertion signature is invalid.")
        if jti in self._used_jti:
            return self._oauth_error(401, "invalid_client", "The client_assertion token has already been used.")
        self._used_jti.add(jti)
        scope = form.get("scope", "").split()
        if not scope:
            return self._oauth_error(400, "invalid_scope", "The authorization server resource does not have any "
                                     "configured default scopes, 'scope' must be provided.")
        bad = [s for s in scope if s not in KNOWN_SCOPES or s not in self.oauth_scopes]
        if bad:
            return self._oauth_error(400, "invalid_scope", "One or more scopes are not configured for the "
                                     "authorization server resource.")
        granted = sorted(set(scope))
        return Response.json(200, {
            "token_type": "Bearer",
            "expires_in": self.token_ttl,
            "access_token": self._mint(granted),
            "scope": " ".join(granted),
        }, [("Cache-Control", "no-cache, no-store"), ("Pragma", "no-cache")])
