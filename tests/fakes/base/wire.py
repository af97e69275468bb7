"""Requests, responses, routes and the stdlib HTTP handler under `FakeServer`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .encoding import JSON_TYPE, dumps


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    time: float
    body: bytes = b""
    query_list: list[tuple[str, str]] = field(default_factory=list)
    status: int | None = None  # None: the connection was dropped without a response
    duration: float | None = None
    fault: str | None = None

    def __repr__(self) -> str:
        q = "&".join(f"{k}={v}" for k, v in self.query_list)
        fault = f" {self.fault}" if self.fault else ""
        return f"<{self.method} {self.path}{'?' + q if q else ''} -> {self.status}{fault}>"


class Request:
    """What a route handler sees."""

    __slots__ = ("method", "path", "raw_path", "raw_query", "query", "query_list", "headers", "body",
                 "params", "principal", "record", "route", "ctx")

    def __init__(self, method: str, path: str, raw_path: str, raw_query: str, query_list: list[tuple[str, str]],
                 headers: dict[str, str], body: bytes, record: RecordedRequest) -> None:
        self.method = method
        self.path = path
        self.raw_path = raw_path
        self.raw_query = raw_query
        self.query_list = query_list
        self.query: dict[str, str] = {}
        for k, v in query_list:
            self.query.setdefault(k, v)
        self.headers = headers
        self.body = body
        self.params: dict[str, str] = {}
        self.principal: Any = None
        self.record = record
        self.route: Route | None = None
        self.ctx: dict[str, Any] = {}

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def form(self) -> dict[str, str]:
        ctype = (self.header("content-type") or "").lower()
        if "application/json" in ctype:
            try:
                data = json.loads(self.body or b"{}")
            except ValueError:
                return {}
            if not isinstance(data, dict):
                return {}
            return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
        out: dict[str, str] = {}
        for k, v in parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True):
            out.setdefault(k, v)
        return out

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
                 content_type: str | None = JSON_TYPE) -> None:
        self.status = status
        self.body = body
        self.headers: list[tuple[str, str]] = []
        if content_type and body:
            self.headers.append(("Content-Type", content_type))
        if headers:
            self.headers.extend(headers)

    @classmethod
    def json(cls, status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> Response:
        return cls(status, dumps(obj), headers)

    @classmethod
    def raw_json(cls, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> Response:
        return cls(status, body, headers)

    @classmethod
    def html(cls, status: int, text: str, headers: list[tuple[str, str]] | None = None) -> Response:
        return cls(status, text.encode("utf-8"), headers, content_type="text/html")

    def header(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None

    def set_header(self, name: str, value: str) -> None:
        low = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != low]
        self.headers.append((name, value))


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[Request], Response]
    auth: bool = True
    bucket: str | None = None
    need: tuple[tuple[str, ...], ...] = ()  # all of these groups; any one permission of each group


_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def proxy_error_page(status: int) -> Response:
    """The HTML page nginx sends for a 429 or a 5xx it generates itself."""
    reason = _REASONS.get(status, "Error")
    text = (f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    return Response.html(status, text)


def malformed(body: bytes) -> bytes:
    cut = body[: len(body) // 2]
    try:
        json.loads(cut)
    except ValueError:
        return cut
    return b'{"' + cut  # the half happened to parse (empty or a scalar): make sure it does not
