"""GET /api/v2/roles, a role and its users."""

from __future__ import annotations

from typing import Any

from ..base import Request, Response


class Auth0Roles:
    """Roles."""

    def _roles(self, req: Request) -> Response:
        roles = self._sorted_roles()
        name_filter = (req.query.get("name_filter") or "").lower()
        if name_filter:
            roles = [r for r in roles if name_filter in r.name.lower()]
        return self._offset_page(req, roles, "roles", lambda r: self._role_doc(r.id))

    def _role(self, req: Request) -> Response:
        r = self._role_by_id(req.params["rid"])
        if r is None:
            return self._err(404, "Not Found", "The role does not exist.", "inexistent_role")
        return Response.json(200, self._role_doc(r.id))

    def _role_users(self, req: Request) -> Response:
        rid = req.params["rid"]
        if self._role_by_id(rid) is None:
            return self._err(404, "Not Found", "The role does not exist.", "inexistent_role")
        members = self._role_members(rid)

        def render(aid: str) -> dict[str, Any]:
            return self._member_doc(aid, None)

        if self._checkpoint(req):
            return self._checkpoint_page(req, members, lambda a: a, "users", render)
        return self._offset_page(req, members, "users", render)
