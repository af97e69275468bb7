"""PUT /users/{id}: the whole user replaced, as Keycloak 24.0.4+ does."""

from __future__ import annotations

from typing import Any

from ..base import Request, Response


class KeycloakWrites:
    """User updates."""

    def _update_user(self, req: Request) -> Response:
        """`PUT /users/{id}` replaces the user (Keycloak 24.0.4+): `firstName`, `lastName`, `email`
        and every attribute the body omits are removed; `enabled` and `emailVerified` change only
        when given; the username cannot change. Attributes the user profile does not declare
        (`user_profile_attributes`) are dropped in silence and stored ones stay as they were.
        Answers 204."""
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        try:
            body = req.json()
        except ValueError:
            return self._err(400, "unknown_error")
        attrs = body.get("attributes") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not (attrs is None or isinstance(attrs, dict) and all(
                isinstance(v, list) and all(isinstance(x, str) for x in v) for v in attrs.values())):
            return self._err(400, "unknown_error")
        u = self._idx().user_by_id[uid]
        if u is None:  # the service-account user: nothing of it is stored here
            return Response(204)
        username = body.get("username")
        if username is not None and str(username).lower() != u.login.lower():
            return Response.json(400, {"field": "username", "errorMessage": "error-user-attribute-read-only",
                                       "params": ["username"]})
        email = body.get("email")
        changes: dict[str, Any] = {"first_name": body.get("firstName"), "last_name": body.get("lastName"),
                                   "email": email.lower() if isinstance(email, str) and email else None}
        if isinstance(body.get("emailVerified"), bool):
            changes["email_verified"] = body["emailVerified"]
        enabled = u.status not in ("SUSPENDED", "DEPROVISIONED")
        if isinstance(body.get("enabled"), bool) and body["enabled"] != enabled:
            changes["status"] = "ACTIVE" if body["enabled"] else "SUSPENDED"
        declared = self.user_profile_attributes
        custom = {} if declared is None else {k: v for k, v in u.custom.items() if k not in declared}
        for name, values in (attrs or {}).items():
            if values and (declared is None or name in declared):
                custom[name] = values[0] if len(values) == 1 else list(values)
        changes["custom"] = custom
        self.tenant.touch_user(u.id, **changes)
        return Response(204)
