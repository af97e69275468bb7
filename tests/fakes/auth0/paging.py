"""Auth0's two paging modes: offset (`page`/`per_page`, the first 1000 records only) and checkpoint
(`from`/`take`), and `fields` selection."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..base import Request, Response, decode_cursor, encode_cursor


class Auth0Paging:
    """Offset and checkpoint pages."""

    def _int(self, req: Request, name: str, default: int | None, *, minimum: int = 0,
             maximum: int | None = None, what: str = "") -> int | None | Response:
        raw = req.query.get(name)
        if raw is None or raw == "":
            return default
        if not re.fullmatch(r"-?\d+", raw):
            return self._bad_request(f"Query validation error: 'Expected type integer but found type string' on "
                                     f"property {name}{what}.")
        value = int(raw)
        if value < minimum:
            return self._bad_request(f"Query validation error: 'Number is less than minimum value ({minimum})' on "
                                     f"property {name}{what}.")
        if maximum is not None and value > maximum:
            return self._bad_request(f"Query validation error: 'Number is greater than the maximum of {maximum}' on "
                                     f"property {name}{what}.")
        return value

    def _offset_page(self, req: Request, items: list[Any], key: str, render: Callable[[Any], dict[str, Any]],
                     *, length_field: bool = False, default_per_page: int = 50,
                     limit_error: Callable[[int], Response] | None = None) -> Response:
        page = self._int(req, "page", 0)
        if isinstance(page, Response):
            return page
        per_page = self._int(req, "per_page", default_per_page, minimum=1, maximum=100,
                             what=" (Number of results per page. Defaults to 50.)")
        if isinstance(per_page, Response):
            return per_page
        assert page is not None and per_page is not None
        if self.faults.take_repeat_cursor(req.path):
            page = 0
        if page * per_page + per_page > 1000:
            if limit_error is not None:
                return limit_error(page)
            return self._bad_request(f"Requesting page {page} exceeds the allowed maximum of 1000 records. To fetch "
                                     f"results beyond 1000, use the checkpoint pagination method.", "invalid_paging")
        chunk = [render(x) for x in items[page * per_page:(page + 1) * per_page]]
        if (req.query.get("include_totals") or "").lower() == "true":
            body: dict[str, Any] = {"start": page * per_page, "limit": per_page}
            if length_field:
                body["length"] = len(chunk)
            body["total"] = len(items)
            body[key] = chunk
            return Response.json(200, body)
        return Response.json(200, chunk)

    def _checkpoint_page(self, req: Request, items: list[Any], ident: Callable[[Any], str], key: str,
                         render: Callable[[Any], dict[str, Any]]) -> Response:
        take = self._int(req, "take", 50, minimum=1, maximum=100,
                         what=" (Number of results per page. Defaults to 50.)")
        if isinstance(take, Response):
            return take
        assert take is not None
        start = 0
        frm = req.query.get("from")
        if frm:
            try:
                last = decode_cursor(frm)
            except ValueError:
                return self._bad_request("Invalid from parameter.", "invalid_paging")
            if not isinstance(last, str):
                return self._bad_request("Invalid from parameter.", "invalid_paging")
            # every checkpoint list is sorted by its ident: resume right after `last`
            lo, hi = 0, len(items)
            while lo < hi:
                mid = (lo + hi) // 2
                if ident(items[mid]) <= last:
                    lo = mid + 1
                else:
                    hi = mid
            start = lo
        chunk = items[start:start + take]
        body: dict[str, Any] = {key: [render(x) for x in chunk]}
        if start + take < len(items) and chunk:
            if self.faults.take_repeat_cursor(req.path):
                body["next"] = frm or encode_cursor("")
            else:
                body["next"] = encode_cursor(ident(chunk[-1]))
        return Response.json(200, body)

    @staticmethod
    def _checkpoint(req: Request) -> bool:
        return "from" in req.query or "take" in req.query

    def _fields(self, req: Request, doc: dict[str, Any]) -> dict[str, Any]:
        raw = req.query.get("fields")
        if not raw:
            return dict(doc)
        names = [f.strip() for f in raw.split(",") if f.strip()]
        include = (req.query.get("include_fields") or "true").lower() != "false"
        if include:
            return {k: v for k, v in doc.items() if k in names}
        return {k: v for k, v in doc.items() if k not in names}
