"""What stands in front of every request of `orgmig serve`: who the client is (proxy headers only
from the proxies the operator lists), its rate, a bounded body, JSON errors, and one access-log
line per request (never a header's value or a body)."""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import deque

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("app.service.access")


def error(status: int, message: str, reason: str | None = None, **headers: str) -> JSONResponse:
    body = {"error": message} if reason is None else {"error": message, "reason": reason}
    return JSONResponse(body, status_code=status, headers=headers or None)


class BodyTooLarge(Exception):
    pass


class Malformed(Exception):
    pass


async def read_json(request: Request, limit: int):
    """The body parsed as JSON, reading at most `limit` bytes (BodyTooLarge past it, without
    reading the rest); Malformed for anything that is not one JSON document: invalid UTF-8, a lone
    surrogate, nesting deeper than 1,024 levels."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"the body is not JSON ({str(exc).split(':')[0]})") from None


class Proxies:
    """The client address of a request: the peer, or, when the peer is a proxy the operator
    listed, the right-most address of X-Forwarded-For that is not one of those proxies."""

    def __init__(self, listed: str = "") -> None:
        self.networks = [ipaddress.ip_network(p.strip(), strict=False) for p in listed.split(",") if p.strip()]

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def client(self, request: Request) -> str:
        peer = request.client.host if request.client else "-"
        if not self.networks or not self._trusted(peer):
            return peer
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return peer


class RateLimit:
    """At most `per_minute` requests a minute per client address (a sliding window)."""

    def __init__(self, per_minute: int, max_clients: int = 100_000) -> None:
        self.per_minute, self.max_clients = per_minute, max_clients
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """0 when the request may go on, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            if len(self._seen) >= self.max_clients and client not in self._seen:
                self._forget(now)
            seen = self._seen.setdefault(client, deque())
            while seen and seen[0] <= now - 60:
                seen.popleft()
            if len(seen) >= self.per_minute:
                return int(60 - (now - seen[0])) + 1
            seen.append(now)
            return 0

    def _forget(self, now: float) -> None:
        """Drop the clients quiet for a minute (the table stays bounded under many addresses)."""
        for client in [c for c, seen in self._seen.items() if not seen or seen[-1] <= now - 60]:
            del self._seen[client]


class AccessLog:
    """ASGI middleware: `METHOD PATH STATUS DURATIONms client` for every request."""

    def __init__(self, app: ASGIApp, proxies: Proxies) -> None:
        self.app, self.proxies = app, proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = self.proxies.client(Request(scope))
            access_log.info("%s %s %d %.1fms %s", scope["method"], scope["path"], status[0],
                            (time.perf_counter() - started) * 1000, client)
