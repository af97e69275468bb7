"""Organizations, their members and a user's organizations."""

from __future__ import annotations

from ..base import Request, Response, dumps
from .paging import _bool_param


class KeycloakOrganizations:
    """Organizations."""

    def _orgs_guard(self) -> Response | None:
        if not self.organizations_enabled:
            return Response.json(404, {"errorMessage": "Organizations not enabled for this realm."})
        return None

    def _get_org_or_404(self, req: Request) -> str | Response:
        stop = self._orgs_guard()
        if stop is not None:
            return stop
        oid = req.params["oid"]
        if oid not in self._idx().org_by_id:
            return Response.json(404, {"errorMessage": "Organization not found."})
        return oid

    def _filtered_orgs(self, req: Request) -> list[str]:
        idx = self._idx()
        search = (req.query.get("search") or "").lower()
        exact = _bool_param(req, "exact", False)
        out = []
        for oid in idx.orgs:
            o = idx.org_by_id[oid]
            names = [o.display_name.lower(), f"{o.name}.example.org"]
            if search and not any((n == search) if exact else (search in n) for n in names):
                continue
            out.append(oid)
        q = req.query.get("q")
        if q:
            wanted = dict(part.partition(":")[::2] for part in q.split())
            out = [oid for oid in out
                   if all(v in self._org_rep(oid, brief=False)["attributes"].get(k, []) for k, v in wanted.items())]
        return out

    def _orgs(self, req: Request) -> Response:
        stop = self._orgs_guard()
        if stop is not None:
            return stop
        return self._listing(req, lambda: self._filtered_orgs(req), lambda o, brief: self._org_rep(o, brief=brief),
                             10, brief=True)

    def _orgs_count(self, req: Request) -> Response:
        stop = self._orgs_guard()
        if stop is not None:
            return stop
        return Response.json(200, len(self._filtered_orgs(req)))

    def _org(self, req: Request) -> Response:
        oid = self._get_org_or_404(req)
        if isinstance(oid, Response):
            return oid
        return Response.json(200, self._org_rep(oid, brief=False))

    def _org_members(self, req: Request) -> Response:
        oid = self._get_org_or_404(req)
        if isinstance(oid, Response):
            return oid
        window = self._window(req, 10)
        if isinstance(window, Response):
            return window
        first, mx, _ = window
        mtype = req.query.get("membershipType")
        if mtype is not None and mtype.upper() not in ("MANAGED", "UNMANAGED"):
            return self._err(400, "invalid_request", f"No enum constant MembershipType.{mtype.upper()}")
        uids = self._idx().org_members.get(oid, [])
        if mtype is not None and mtype.upper() == "MANAGED":
            uids = []
        search = req.query.get("search")
        if search:
            uids = [u for u in uids
                    if self._search_match(search, [str(self._user_rep(u, brief=True, access=False).get(k, "")).lower()
                                                   for k in ("username", "email", "firstName", "lastName")])]
        reps = []
        for uid in self._slice(uids, first, mx):
            rep = self._user_rep(uid, brief=False, access=False)
            rep["membershipType"] = "UNMANAGED"
            reps.append(rep)
        return Response.raw_json(200, dumps(reps))

    def _org_members_count(self, req: Request) -> Response:
        oid = self._get_org_or_404(req)
        if isinstance(oid, Response):
            return oid
        return Response.json(200, len(self._idx().org_members.get(oid, [])))

    def _user_orgs(self, req: Request) -> Response:
        stop = self._orgs_guard()
        if stop is not None:
            return stop
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        brief = _bool_param(req, "briefRepresentation", True)
        return Response.json(200, [self._org_rep(o, brief=brief) for o in self._idx().orgs_of_user.get(uid, [])])
