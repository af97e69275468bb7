"""Keycloak's `first`/`max` paging (no totals, no links) and its query parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..base import Request, Response


def _bool_param(req: Request, name: str, default: bool) -> bool:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return default
    return raw.lower() == "true"


class _ParamError(Exception):
    pass


class KeycloakPaging:
    """`first`/`max` slices."""

    def _first_max(self, req: Request, default_first: int | None, default_max: int | None) -> tuple[int, int | None]:
        try:
            first = self.int_param(req, "first", default_first)
            mx = self.int_param(req, "max", default_max)
        except ValueError as exc:
            raise _ParamError() from exc
        if first is None or first < 0:
            first = 0
        if mx is not None and mx < 0:
            mx = None
        if self.faults.take_repeat_cursor(req.path):
            first = 0
        return first, mx

    def _window(self, req: Request, default_max: int | None, *,
                brief: bool = False) -> tuple[int, int | None, bool] | Response:
        """`first` (default 0), `max` and `briefRepresentation` of a listing; a non-integer `first` or
        `max` is Keycloak's 404."""
        try:
            first, mx = self._first_max(req, 0, default_max)
        except _ParamError:
            return self._bad_param()
        return first, mx, _bool_param(req, "briefRepresentation", brief)

    def _listing(self, req: Request, items: Callable[[], list[Any]], render: Callable[[Any, bool], Any],
                 default_max: int | None, *, brief: bool = False) -> Response:
        """A listing: `items()` from `first`, at most `max` of them, each rendered with the
        `briefRepresentation` asked for (`brief` when not)."""
        window = self._window(req, default_max, brief=brief)
        if isinstance(window, Response):
            return window
        first, mx, brief = window
        return Response.json(200, [render(item, brief) for item in self._slice(items(), first, mx)])

    @staticmethod
    def _slice(items: list[Any], first: int, mx: int | None) -> list[Any]:
        return items[first:] if mx is None else items[first:first + mx]

    def _bad_param(self) -> Response:
        return self._err(404, "HTTP 404 Not Found")
