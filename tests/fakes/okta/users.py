"""GET /api/v1/users and a user's own resources."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..base import Request, Response, encode_cursor, iso
from ..tenant import User
from .filters import _FILTER_ATTRS_USERS, FilterError, parse_query
from .index import _Index


class OktaUsers:
    """User listings (filter, search, q) and single users."""

    def _list_users(self, req: Request) -> Response:
        idx = self._idx()
        q = req.query.get("q")
        search = req.query.get("search")
        flt = req.query.get("filter")
        if q is not None and not search and not flt:
            lim = self._limit(req, 10, self.page_limit_cap)
            if isinstance(lim, Response):
                return lim
            needle = q.lower()
            out = []
            for oid in idx.user_ids:
                u = idx.user_by_oid[oid]
                if u.status == "DEPROVISIONED":
                    continue
                if any(v and v.lower().startswith(needle) for v in (u.first_name, u.last_name, u.email, u.login)):
                    out.append(self._render_user(oid, u))
                    if len(out) >= lim:
                        break
            return Response.raw_json(200, self._array(out), self._links(req, None, lim))
        lim = self._limit(req, 200, self.page_limit_cap)
        if isinstance(lim, Response):
            return lim
        after = self._after_param(req)
        if isinstance(after, Response):
            return after
        if search or flt:
            try:
                pred = parse_query(search, flt, _FILTER_ATTRS_USERS)
            except FilterError as exc:
                return self._invalid_search(str(exc))
            getters = idx.user_by_oid

            def keep(oid: str) -> bool:
                return pred(self._user_getter(oid, getters[oid]))
        else:
            def keep(oid: str) -> bool:
                return idx.user_by_oid[oid].status != "DEPROVISIONED"

        sort_by = req.query.get("sortBy") if search else None
        if sort_by:
            return self._sorted_search(req, idx, keep, sort_by, lim, after)
        return self._id_page(req, idx.user_ids, after, lim, keep,
                             lambda oid: self._render_user(oid, idx.user_by_oid[oid]))

    def _sorted_search(self, req: Request, idx: _Index, keep: Callable[[str], bool], sort_by: str, lim: int,
                       after: Any) -> Response:
        attr = sort_by.lower()
        desc = (req.query.get("sortOrder") or "asc").lower() == "desc"

        def key(oid: str) -> tuple[str, str]:
            v = self._user_getter(oid, idx.user_by_oid[oid])(attr)
            if isinstance(v, datetime):
                v = iso(v)
            return (str(v).lower() if v is not None else "", oid)

        keyed = sorted(((key(oid), oid) for oid in idx.user_ids if keep(oid)), reverse=desc)
        keys = [k for k, _ in keyed]
        start = 0
        if after is not None:
            if not (isinstance(after, list) and len(after) == 2):
                return self._invalid_search("after: invalid cursor")
            cursor = (after[0], after[1])
            if desc:
                start = next((i for i, k in enumerate(keys) if k < cursor), len(keys))
            else:
                start = bisect.bisect_right(keys, cursor)
        chunk = keyed[start:start + lim]
        more = start + lim < len(keyed)
        body = self._array([self._render_user(oid, idx.user_by_oid[oid]) for _, oid in chunk])
        next_after = encode_cursor(list(chunk[-1][0])) if more and chunk else None
        return Response.raw_json(200, body, self._links(req, next_after, lim))

    def _find_user(self, req: Request) -> tuple[str, User] | Response:
        idx = self._idx()
        ref = req.params["uid"]
        oid = ref if ref in idx.user_by_oid else idx.oid_by_login.get(ref.lower())
        if oid is None:
            return self._error(404, "E0000007", f"Not found: Resource not found: {ref} (User)")
        return oid, idx.user_by_oid[oid]

    def _get_user(self, req: Request) -> Response:
        found = self._find_user(req)
        if isinstance(found, Response):
            return found
        return Response.raw_json(200, self._render_user(*found))

    def _user_groups(self, req: Request) -> Response:
        found = self._find_user(req)
        if isinstance(found, Response):
            return found
        idx = self._idx()
        gids = sorted(idx.groups_of_user.get(found[0], ()))
        return Response.raw_json(200, self._array([self._render_group(g, idx.group_by_oid[g], idx) for g in gids]))
