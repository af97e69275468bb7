"""GET /api/v1/groups and a group's members."""

from __future__ import annotations

from ..base import Request, Response
from .filters import _FILTER_ATTRS_GROUPS, FilterError, parse_query


class OktaGroups:
    """Group listings, single groups and their members."""

    def _list_groups(self, req: Request) -> Response:
        idx = self._idx()
        q = req.query.get("q")
        search = req.query.get("search")
        flt = req.query.get("filter")
        stats = "stats" in (req.query.get("expand") or "").split(",")
        lim = self._limit(req, 10000, 10000)
        if isinstance(lim, Response):
            return lim
        if q is not None and not search and not flt:
            needle = q.lower()
            out = [g for g in idx.group_ids
                   if self._group_view(g, idx.group_by_oid[g], idx)["name"].lower().startswith(needle)][:lim]
            return Response.raw_json(200, self._array([self._render_group(g, idx.group_by_oid[g], idx, stats)
                                                       for g in out]), self._links(req, None, lim))
        after = self._after_param(req)
        if isinstance(after, Response):
            return after
        if search or flt:
            try:
                pred = parse_query(search, flt, _FILTER_ATTRS_GROUPS)
            except FilterError as exc:
                return self._invalid_search(str(exc))

            def keep(goid: str) -> bool:
                return pred(self._group_getter(self._group_view(goid, idx.group_by_oid[goid], idx)))
        else:
            def keep(goid: str) -> bool:
                return True
        return self._id_page(req, idx.group_ids, after, lim, keep,
                             lambda g: self._render_group(g, idx.group_by_oid[g], idx, stats))

    def _find_group(self, req: Request) -> str | Response:
        gid = req.params["gid"]
        if gid not in self._idx().group_by_oid:
            return self._error(404, "E0000007", f"Not found: Resource not found: {gid} (UserGroup)")
        return gid

    def _get_group(self, req: Request) -> Response:
        gid = self._find_group(req)
        if isinstance(gid, Response):
            return gid
        idx = self._idx()
        return Response.raw_json(200, self._render_group(gid, idx.group_by_oid[gid], idx))

    def _group_users(self, req: Request) -> Response:
        gid = self._find_group(req)
        if isinstance(gid, Response):
            return gid
        lim = self._limit(req, 1000, 1000)
        if isinstance(lim, Response):
            return lim
        after = self._after_param(req)
        if isinstance(after, Response):
            return after
        idx = self._idx()
        return self._id_page(req, self._members(gid), after, lim, lambda oid: oid in idx.user_by_oid,
                             lambda oid: self._render_user(oid, idx.user_by_oid[oid]))
