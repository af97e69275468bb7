"""Realm roles, their users and a user's role mappings."""

from __future__ import annotations

from typing import Any

from ..base import Request, Response
from .auth import _COMPOSITES
from .server import _kc_uuid


class KeycloakRoles:
    """Roles and role mappings."""

    def _role_brief(self, name: str) -> dict[str, Any]:
        return dict(self._idx().role_by_name[name])

    def _role_mappings(self, req: Request) -> Response:
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        idx = self._idx()
        body: dict[str, Any] = {"realmMappings": [self._role_brief(n) for n in idx.roles_of_user.get(uid, [])]}
        if uid == self.service_account_id:
            body["clientMappings"] = {"realm-management": {
                "id": self.realm_management_id, "client": "realm-management",
                "mappings": [{"id": _kc_uuid("client-role", f"{self.realm}:{r}"), "name": r,
                              "description": f"${{role_{r}}}", "composite": r in _COMPOSITES, "clientRole": True,
                              "containerId": self.realm_management_id} for r in sorted(self.service_account_roles)],
            }}
        return Response.json(200, body)

    def _realm_mappings(self, req: Request) -> Response:
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        return Response.json(200, [self._role_brief(n) for n in self._idx().roles_of_user.get(uid, [])])

    def _realm_composite(self, req: Request) -> Response:
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        names = set(self._idx().roles_of_user.get(uid, []))
        if f"default-roles-{self.realm.lower()}" in names:
            names |= {"offline_access", "uma_authorization"}
        return Response.json(200, [self._role_brief(n) for n in sorted(names)])

    def _roles(self, req: Request) -> Response:
        window = self._window(req, None, brief=True)
        if isinstance(window, Response):
            return window
        first, mx, brief = window
        roles = self._idx().realm_roles
        search = (req.query.get("search") or "").lower()
        if search:
            roles = [r for r in roles if search in r["name"].lower()]
        reps = []
        for r in self._slice(roles, first, mx):
            rep = dict(r)
            if not brief:
                rep["attributes"] = {}
            reps.append(rep)
        return Response.json(200, reps)

    def _role(self, req: Request) -> Response:
        name = req.params["role"]
        idx = self._idx()
        if name not in idx.role_by_name:
            return self._err(404, "Could not find role")
        return Response.json(200, {**idx.role_by_name[name], "attributes": {}})

    def _role_users(self, req: Request) -> Response:
        name = req.params["role"]
        idx = self._idx()
        if name not in idx.role_by_name:
            return self._err(404, "Could not find role")
        return self._listing(req, lambda: idx.role_members.get(name, []),
                             lambda u, brief: self._user_rep(u, brief=brief, access=False), 100, brief=True)
