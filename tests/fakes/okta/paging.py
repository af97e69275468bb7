"""Okta's cursor paging: `limit`, opaque `after` cursors and `Link` headers."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from ..base import Request, Response, decode_cursor, encode_cursor


class OktaPaging:
    """Cursor pages and their Link headers (the paging faults included)."""

    def _limit(self, req: Request, default: int, cap: int) -> int | Response:
        try:
            limit = self.int_param(req, "limit", default)
        except ValueError:
            return self._error(400, "E0000001", "Api validation failed: limit", ["limit: must be an integer"])
        assert limit is not None
        if limit < 1:
            return self._error(400, "E0000001", "Api validation failed: limit",
                               ["limit: must be greater than or equal to 1"])
        return min(limit, cap)

    def _links(self, req: Request, next_after: Any, limit: int) -> list[tuple[str, str]]:
        self_url = f"{self.base_url}{req.raw_path}" + (f"?{req.raw_query}" if req.raw_query else "")
        links = [("Link", f'<{self_url}>; rel="self"')]
        if next_after is None and self.faults.take_empty_page(req.path, req.query):  # faults.empty_pages: no end
            self._empty_cursors += 1
            next_after = encode_cursor({"empty": self._empty_cursors, "generation": self.faults.generation})
        if next_after is not None:
            if self.faults.take_repeat_cursor(req.path):
                next_url = self_url
            else:
                params = [(k, v) for k, v in req.query_list if k not in ("after", "limit")]
                params += [("after", next_after), ("limit", str(limit))]
                next_url = f"{self.base_url}{req.raw_path}?" + "&".join(
                    f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
            links.append(("Link", f'<{next_url}>; rel="next"'))
        return links

    def _page(self, ids: list[str], after: str | None, limit: int,
              keep: Callable[[str], bool]) -> tuple[list[str], bool]:
        start = bisect.bisect_right(ids, after) if after else 0
        out: list[str] = []
        i, n = start, len(ids)
        while i < n and len(out) < limit:
            if keep(ids[i]):
                out.append(ids[i])
            i += 1
        more = False
        if len(out) == limit:
            if self.empty_last_page:
                more = True
            else:
                while i < n:
                    if keep(ids[i]):
                        more = True
                        break
                    i += 1
        return out, more

    def _invalid_search(self, error: str) -> Response:
        return self._error(400, "E0000031", "Invalid search criteria.", [error])

    def _id_page(self, req: Request, ids: list[str], after: Any, limit: int, keep: Callable[[str], bool],
                 render: Callable[[str], bytes]) -> Response:
        """The page of `ids` after the id `after` that `keep` takes, rendered, with its Link headers."""
        if after is not None and not isinstance(after, str):
            return self._invalid_search("after: invalid cursor")
        page, more = self._page(ids, after, limit, keep)
        next_after = encode_cursor(page[-1]) if more and page else None
        return Response.raw_json(200, self._array([render(i) for i in page]), self._links(req, next_after, limit))

    def _after_param(self, req: Request) -> str | None | Response:
        raw = req.query.get("after")
        if not raw:
            return None
        try:
            value = decode_cursor(raw)
        except ValueError:
            return self._invalid_search("after: invalid cursor")
        if isinstance(value, dict) and "empty" in value:  # a cursor of faults.empty_pages
            if value.get("generation") != self.faults.generation:
                return self._invalid_search("after: the cursor has expired")
            limit = req.query.get("limit") or "200"
            return Response.raw_json(200, b"[]", self._links(req, None, int(limit) if limit.isdigit() else 200))
        return value

    @staticmethod
    def _array(bodies: list[bytes]) -> bytes:
        return b"[" + b",".join(bodies) + b"]"
