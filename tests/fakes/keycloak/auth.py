"""Keycloak's client-credentials tokens, realm-management roles (and their composites) and error
bodies."""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from typing import Any
from urllib.parse import unquote

from ..base import FaultRule, Request, Response, proxy_error_page

# realm-management client roles and the roles their composites include
_COMPOSITES = {
    "view-users": {"query-users", "query-groups"},
    "manage-users": {"query-users", "query-groups"},
    "realm-admin": {"view-users", "manage-users", "query-users", "query-groups", "view-realm", "manage-realm",
                    "query-realms", "view-clients", "query-clients"},
    "view-clients": {"query-clients"},
}


DEFAULT_SERVICE_ACCOUNT_ROLES = frozenset({"view-users", "query-groups", "view-realm", "manage-realm"})


_VIEW_USERS = ("view-users", "manage-users")


_QUERY_USERS = ("query-users", "view-users", "manage-users")


_QUERY_GROUPS = ("query-groups", "view-users", "manage-users")


_VIEW_REALM = ("view-realm", "manage-realm")


class KeycloakAuth:
    """Tokens, the service account's roles and Keycloak's error responses."""

    def mint_access_token(self, roles: set[str] | frozenset[str] | None = None, ttl: int | None = None) -> str:
        return self._mint(self._expand(roles if roles is not None else self.service_account_roles), ttl)

    def revoke_tokens(self) -> None:
        self._tokens_not_before = time.time() + 0.001
        time.sleep(0.002)

    def _err(self, status: int, error: str, description: str | None = None) -> Response:
        body: dict[str, Any] = {"error": error}
        if description:
            body["error_description"] = description
        return Response.json(status, body)

    def _fault_response(self, req: Request, rule: FaultRule) -> Response:
        if rule.kind == "5xx" and rule.status == 500:
            return self._internal_error(req)
        resp = proxy_error_page(429 if rule.kind == "429" else (rule.status or 503))
        if self.proxy_retry_after is not None:
            resp.headers.append(("Retry-After", str(self.proxy_retry_after)))
        return resp

    def _not_found(self, req: Request) -> Response:
        return self._err(404, "Unable to find matching target resource method",
                         "For more on this error consult the server log.")

    def _method_not_allowed(self, req: Request) -> Response:
        return self._err(405, "HTTP 405 Method Not Allowed")

    def _internal_error(self, req: Request) -> Response:
        return self._err(500, "unknown_error", "For more on this error consult the server log.")

    def _expand(self, roles: set[str] | frozenset[str]) -> list[str]:
        out = set(roles)
        for r in roles:
            out |= _COMPOSITES.get(r, set())
        return sorted(out)

    def _before(self, req: Request, route) -> Response | None:
        if req.params.get("realm") != self.realm:
            if not route.auth:
                return self._err(404, "Realm does not exist")
        if not route.auth:
            return None
        auth = req.header("authorization") or ""
        scheme, _, token = auth.partition(" ")
        claims = self.signer.verify(token.strip()) if scheme.lower() == "bearer" else None
        if (claims is None or claims.get("exp", 0) <= time.time() or claims.get("iat", 0) < self._tokens_not_before
                or claims.get("iss") != self.issuer):
            resp = self._err(401, "HTTP 401 Unauthorized")
            resp.headers.append(("WWW-Authenticate", "Bearer"))
            return resp
        if req.params.get("realm") != self.realm:
            return self._err(404, "Realm not found.")
        roles = set(((claims.get("resource_access") or {}).get("realm-management") or {}).get("roles") or ())
        for group in route.need:
            if not roles.intersection(group):
                return self._err(403, "HTTP 403 Forbidden")
        req.principal = claims
        return None

    def _mint(self, roles: list[str], ttl: int | None = None) -> str:
        now = time.time()
        self.issued_tokens += 1
        return self.signer.mint({
            "exp": round(now + (self.token_ttl if ttl is None else ttl), 3),
            "iat": now,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": ["realm-management", "account"],
            "sub": self.service_account_id,
            "typ": "Bearer",
            "azp": self.client_id,
            "acr": "1",
            "realm_access": {"roles": [f"default-roles-{self.realm.lower()}", "offline_access", "uma_authorization"]},
            "resource_access": {"realm-management": {"roles": roles},
                                "account": {"roles": ["manage-account", "manage-account-links", "view-profile"]}},
            "scope": "profile email",
            "clientHost": "127.0.0.1",
            "preferred_username": f"service-account-{self.client_id}".lower(),
            "client_id": self.client_id,
        })

    def _token(self, req: Request) -> Response:
        form = req.form()
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = req.header("authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip()).decode("utf-8")
                b_id, _, b_secret = decoded.partition(":")
                cid, secret = unquote(b_id), unquote(b_secret)
            except (ValueError, UnicodeDecodeError):
                return self._err(400, "invalid_request", "Invalid Authorization header")
        grant = form.get("grant_type")
        if not grant:
            return self._err(400, "invalid_request", "Missing form parameter: grant_type")
        if not cid:
            return self._err(401, "invalid_client", "Missing client_id parameter")
        if cid != self.client_id:
            return self._err(401, "invalid_client", "Invalid client or Invalid client credentials")
        if not secret or not secrets.compare_digest(secret, self.client_secret):
            return self._err(401, "unauthorized_client", "Invalid client or Invalid client credentials")
        if grant != "client_credentials":
            return self._err(400, "unsupported_grant_type", "Unsupported grant_type")
        token = self._mint(self._expand(self.service_account_roles))
        return Response.json(200, {"access_token": token, "expires_in": self.token_ttl, "refresh_expires_in": 0,
                                   "token_type": "Bearer", "not-before-policy": 0, "scope": "profile email"},
                             [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
