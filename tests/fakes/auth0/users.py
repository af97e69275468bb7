"""GET /api/v2/users (search, sort, paging) and a user's own resources."""

from __future__ import annotations

import re

from ..base import Request, Response
from .lucene import QueryError, _resolve, parse_lucene


class Auth0Users:
    """User listings and single users."""

    def _users(self, req: Request) -> Response:
        aids = self._idx()
        engine = req.query.get("search_engine")
        if engine not in (None, "", "v2", "v3"):
            return self._bad_request(f"Query validation error: 'No enum match for: \"{engine}\"' on property "
                                     f"search_engine (The version of the search engine).")
        q = req.query.get("q")
        conn = req.query.get("connection")
        selected = aids
        if q or conn:
            pred = None
            if q:
                try:
                    pred = parse_lucene(q)
                except QueryError as exc:
                    return self._bad_request(f"Query validation error: {exc}")
            out = []
            for aid in aids:
                doc = self._doc(aid)
                if conn and doc["identities"][0]["connection"] != conn:
                    continue
                if pred is not None and not pred(lambda f, d=doc: _resolve(d, f)):
                    continue
                out.append(aid)
            selected = out
        sort = req.query.get("sort")
        if sort:
            m = re.fullmatch(r"([\w.]+):(1|-1)", sort)
            if not m:
                return self._bad_request("Query validation error: 'String does not match pattern "
                                         "^(([a-zA-Z0-9_\\.]+))\\:(1|-1)$' on property sort (Field to sort by. Use "
                                         "<code>field:order</code> where order is <code>1</code> for ascending and "
                                         "<code>-1</code> for descending.).")
            fld, order = m.group(1), m.group(2)

            def skey(aid: str) -> tuple[int, str, str]:
                v = _resolve(self._doc(aid), fld)
                return (0 if v is not None else 1, str(v).lower() if v is not None else "", aid)

            selected = sorted(selected, key=skey, reverse=order == "-1")
        limit_error = lambda page: self._bad_request(  # noqa: E731
            "You can only page through the first 1000 records. See "
            "https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation", "invalid_paging")
        return self._offset_page(req, selected, "users", lambda aid: self._fields(req, self._doc(aid)),
                                 length_field=True, limit_error=limit_error)

    def _find_user(self, req: Request) -> str | Response:
        self._idx()
        aid = req.params["uid"]
        if aid not in self._user_by_aid:
            return self._err(404, "Not Found", "The user does not exist.", "inexistent_user")
        return aid

    def _user(self, req: Request) -> Response:
        aid = self._find_user(req)
        if isinstance(aid, Response):
            return aid
        return Response.json(200, self._fields(req, self._doc(aid)))

    def _user_roles(self, req: Request) -> Response:
        aid = self._find_user(req)
        if isinstance(aid, Response):
            return aid
        u = self._user_by_aid[aid]
        roles = sorted((self.tenant.roles[r] for r in self.tenant.user_roles.get(u.id, ())),
                       key=lambda r: self.role_id(r.id))
        return self._offset_page(req, roles, "roles", lambda r: self._role_doc(r.id))

    def _user_orgs(self, req: Request) -> Response:
        aid = self._find_user(req)
        if isinstance(aid, Response):
            return aid
        u = self._user_by_aid[aid]
        orgs = [o for o in self._sorted_orgs() if any(m.user_id == u.id for m in o.members)]
        return self._offset_page(req, orgs, "organizations", self._org_doc)
