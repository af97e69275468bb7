"""GET /users (search and filters), a user, its groups and brute-force state, the user profile."""

from __future__ import annotations

from typing import Any

from ..base import Request, Response, epoch_ms
from .paging import _bool_param


class KeycloakUsers:
    """User listings and single users."""

    def _user_profile(self, req: Request) -> Response:
        """The realm's user profile configuration (UPConfig, Keycloak 24+): the root attributes,
        the declared custom ones (`user_profile_attributes`) and, when that is None, unmanaged
        attributes enabled."""
        def attribute(name: str) -> dict[str, Any]:
            return {"name": name, "displayName": "${" + name + "}", "validations": {},
                    "permissions": {"view": ["admin", "user"], "edit": ["admin", "user"]}, "multivalued": False}

        declared = sorted(self.user_profile_attributes or ())
        config: dict[str, Any] = {
            "attributes": [attribute(n) for n in ("username", "email", "firstName", "lastName", *declared)],
            "groups": [{"name": "user-metadata", "displayHeader": "User metadata",
                        "displayDescription": "Attributes, which refer to user metadata"}],
        }
        if self.user_profile_attributes is None:
            config["unmanagedAttributePolicy"] = "ENABLED"
        return Response.json(200, config)

    def _get_user_or_404(self, req: Request) -> str | Response:
        uid = req.params["uid"]
        if uid not in self._idx().user_by_id:
            return self._err(404, "User not found")
        return uid

    @staticmethod
    def _search_match(term: str, values: list[str]) -> bool:
        term = term.lower()
        if len(term) >= 2 and term.startswith('"') and term.endswith('"'):
            return any(v == term[1:-1] for v in values)
        if term.startswith("*") and term.endswith("*") and len(term) >= 2:
            return any(term.strip("*") in v for v in values)
        return any(v.startswith(term.rstrip("*")) for v in values)

    def _filtered_users(self, req: Request) -> list[str]:
        idx = self._idx()
        q = req.query
        search = q.get("search")
        exact = _bool_param(req, "exact", False)
        field_filters = {k: q[k].lower() for k in ("username", "email", "firstName", "lastName") if q.get(k)}
        enabled = q.get("enabled")
        email_verified = q.get("emailVerified")
        attr_q = q.get("q")
        attrs: dict[str, str] = {}
        if attr_q:
            for part in attr_q.split():
                k, _, v = part.partition(":")
                attrs[k] = v
        if not (search or field_filters or enabled or email_verified or attrs):
            return [uid for _, uid in idx.users]
        out = []
        for _, uid in idx.users:
            rep = self._user_rep(uid, brief=False, access=False)
            values = [str(rep.get(k, "")).lower() for k in ("username", "email", "firstName", "lastName")]
            if search and search != "*" and not all(self._search_match(tok, values) for tok in search.split()):
                continue
            ok = True
            for k, v in field_filters.items():
                actual = str(rep.get(k, "")).lower()
                if (exact and actual != v) or (not exact and v not in actual):
                    ok = False
                    break
            if not ok:
                continue
            if enabled is not None and str(rep["enabled"]).lower() != enabled.lower():
                continue
            if email_verified is not None and str(rep["emailVerified"]).lower() != email_verified.lower():
                continue
            if attrs and not all(v in (rep.get("attributes") or {}).get(k, []) for k, v in attrs.items()):
                continue
            out.append(uid)
        return out

    def _users(self, req: Request) -> Response:
        return self._listing(req, lambda: self._filtered_users(req),
                             lambda uid, brief: self._user_rep(uid, brief=brief, access=True), 100)

    def _users_count(self, req: Request) -> Response:
        return Response.json(200, len(self._filtered_users(req)))

    def _user(self, req: Request) -> Response:
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        return Response.json(200, self._user_rep(uid, brief=False, access=True))

    def _user_group_ids(self, req: Request, uid: str) -> list[str]:
        gids = self._idx().groups_of_user.get(uid, [])
        search = req.query.get("search")
        if search:
            gids = [g for g in gids if search.lower() in self._idx().group_by_id[g].name.lower()]
        return gids

    def _user_groups(self, req: Request) -> Response:
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        return self._listing(req, lambda: self._user_group_ids(req, uid),
                             lambda g, brief: self._group_rep(g, brief=brief), None, brief=True)

    def _user_groups_count(self, req: Request) -> Response:
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        return Response.json(200, {"count": len(self._user_group_ids(req, uid))})

    def _brute_force(self, req: Request) -> Response:
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        u = self._idx().user_by_id[uid]
        if u is not None and u.status == "LOCKED_OUT":
            return Response.json(200, {"numFailures": 5, "disabled": True, "lastIPFailure": "203.0.113.7",
                                       "lastFailure": epoch_ms(u.last_updated)})
        return Response.json(200, {"numFailures": 0, "disabled": False, "lastIPFailure": "n/a", "lastFailure": 0})
