"""GET /groups (top level, search), a group, its children and members."""

from __future__ import annotations

from typing import Any

from ..base import Request, Response
from .paging import _bool_param


class KeycloakGroups:
    """Groups."""

    def _get_group_or_404(self, req: Request) -> str | Response:
        gid = req.params["gid"]
        if gid not in self._idx().group_by_id:
            return self._err(404, "Could not find group by id")
        return gid

    def _search_tree(self, gid: str, needle: str, exact: bool, brief: bool) -> dict[str, Any] | None:
        idx = self._idx()
        name = idx.group_by_id[gid].name.lower()
        hit = name == needle if exact else needle in name
        subs = [s for c in idx.children.get(gid, []) if (s := self._search_tree(c, needle, exact, brief)) is not None]
        if hit or subs:
            return self._group_rep(gid, brief=brief, sub_groups=subs)
        return None

    def _groups(self, req: Request) -> Response:
        window = self._window(req, None, brief=True)
        if isinstance(window, Response):
            return window
        first, mx, brief = window
        idx = self._idx()
        search = req.query.get("search")
        if search:
            exact = _bool_param(req, "exact", False)
            reps = [r for g in idx.top_groups if (r := self._search_tree(g, search.lower(), exact, brief)) is not None]
            return Response.json(200, self._slice(reps, first, mx))
        gids = self._slice(idx.top_groups, first, mx)
        return Response.json(200, [self._group_rep(g, brief=brief) for g in gids])

    def _groups_count(self, req: Request) -> Response:
        idx = self._idx()
        top = _bool_param(req, "top", False)
        search = (req.query.get("search") or "").lower()
        gids = idx.top_groups if top else list(idx.group_by_id)
        if search:
            gids = [g for g in gids if search in idx.group_by_id[g].name.lower()]
        return Response.json(200, {"count": len(gids)})

    def _group(self, req: Request) -> Response:
        gid = self._get_group_or_404(req)
        if isinstance(gid, Response):
            return gid
        return Response.json(200, self._group_rep(gid, brief=False))

    def _children(self, req: Request) -> Response:
        gid = self._get_group_or_404(req)
        if isinstance(gid, Response):
            return gid
        return self._listing(req, lambda: self._idx().children.get(gid, []),
                             lambda k, brief: self._group_rep(k, brief=brief), 10)

    def _members(self, req: Request) -> Response:
        gid = self._get_group_or_404(req)
        if isinstance(gid, Response):
            return gid
        return self._listing(req, lambda: self._idx().members.get(gid, []),
                             lambda u, brief: self._user_rep(u, brief=brief, access=False), 100)
