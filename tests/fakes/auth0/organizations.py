"""GET /api/v2/organizations, an organization, its members and their roles."""

from __future__ import annotations

from typing import Any

from ..base import Request, Response
from ..tenant import Organization


class Auth0Organizations:
    """Organizations."""

    def _orgs(self, req: Request) -> Response:
        orgs = self._sorted_orgs()
        if self._checkpoint(req):
            return self._checkpoint_page(req, orgs, lambda o: self.org_id(o.id), "organizations", self._org_doc)
        return self._offset_page(req, orgs, "organizations", self._org_doc)

    def _find_org(self, req: Request) -> Organization | Response:
        o = self._org_by_id(req.params["oid"])
        if o is None:
            return self._err(404, "Not Found", "No organization found by that id or name")
        return o

    def _org(self, req: Request) -> Response:
        o = self._find_org(req)
        if isinstance(o, Response):
            return o
        return Response.json(200, self._org_doc(o))

    def _org_members(self, req: Request) -> Response:
        o = self._find_org(req)
        if isinstance(o, Response):
            return o
        raw_fields = req.query.get("fields")
        names = [f.strip() for f in raw_fields.split(",")] if raw_fields else []
        include = (req.query.get("include_fields") or "true").lower() != "false"
        with_roles = include and "roles" in names
        if with_roles and "read:organization_member_roles" not in (req.principal or set()):
            return self._err(403, "Forbidden", "Insufficient scope, expected any of: read:organization_member_roles",
                             "insufficient_scope")
        members = self._members_of(o)

        def render(item: tuple[str, list[dict[str, str]]]) -> dict[str, Any]:
            doc = self._member_doc(item[0], item[1] if with_roles else None)
            if names:
                if include:
                    doc = {k: v for k, v in doc.items() if k in names or k == "user_id"}
                else:
                    doc = {k: v for k, v in doc.items() if k not in names}
            return doc

        if self._checkpoint(req):
            return self._checkpoint_page(req, members, lambda m: m[0], "members", render)
        return self._offset_page(req, members, "members", render)

    def _org_member_roles(self, req: Request) -> Response:
        o = self._find_org(req)
        if isinstance(o, Response):
            return o
        aid = req.params["uid"]
        for m_aid, roles in self._members_of(o):
            if m_aid == aid:
                docs = [{"id": r["id"], "name": r["name"],
                         "description": self._role_doc(self._role_by_id(r["id"]).id)["description"]} for r in roles]
                return self._offset_page(req, docs, "roles", lambda d: d)
        return self._err(404, "Not Found", "The user is not a member of the organization.")
