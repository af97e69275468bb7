"""The ASGI application (Starlette) behind `orgmig serve`."""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import deque

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.provider_names import PROVIDERS
from app.service.login import Answer, by_account, by_keycloak_id

log = logging.getLogger("app.service")


class RateLimit:
    """At most `per_minute` requests a minute per client address (a sliding window)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """0 when the request may go on, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            seen = self._seen.setdefault(client, deque())
            while seen and seen[0] <= now - 60:
                seen.popleft()
            if len(seen) >= self.per_minute:
                return int(60 - (now - seen[0])) + 1
            seen.append(now)
            return 0


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _body(payload) -> tuple[str, tuple] | str:
    """("keycloak", (id,)) or ("account", (provider, external_id, email)), else what is wrong."""
    if not isinstance(payload, dict):
        return "the body must be a JSON object"
    keycloak_id = payload.get("keycloak_user_id")
    if keycloak_id is not None:
        if not isinstance(keycloak_id, str) or not keycloak_id.strip() or len(payload) != 1:
            return "keycloak_user_id must be a non-empty string, alone"
        return "keycloak", (keycloak_id,)
    provider, external_id, email = payload.get("provider"), payload.get("external_id"), payload.get("email")
    if provider not in PROVIDERS:
        return f"give keycloak_user_id, or provider (one of {', '.join(PROVIDERS)}) with external_id"
    if not isinstance(external_id, str) or not external_id.strip():
        return "external_id must be a non-empty string"
    if email is not None and not isinstance(email, str):
        return "email must be a string"
    if set(payload) - {"provider", "external_id", "email"}:
        return "unknown fields: " + ", ".join(sorted(set(payload) - {"provider", "external_id", "email"}))
    return "account", (provider, external_id, email)


def create_app(engine: Engine, token: str, per_minute: int = 600) -> Starlette:
    expected = token.encode()
    limit = RateLimit(per_minute)

    def authorized(request: Request) -> bool:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), expected)

    def resolve(kind: str, args: tuple) -> Answer | None:
        with engine.connect() as conn:
            return by_keycloak_id(conn, *args) if kind == "keycloak" else by_account(conn, *args)

    async def migrate(request: Request) -> JSONResponse:
        if not authorized(request):
            return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
        wait = limit.retry_after(request.client.host if request.client else "-")
        if wait:
            return _error(429, "too many requests from this client", **{"Retry-After": str(wait)})
        try:
            parsed = _body(await request.json())
        except ValueError:
            parsed = "the body is not JSON"
        if isinstance(parsed, str):
            return _error(422, parsed)
        try:
            answer = await run_in_threadpool(resolve, *parsed)
        except DBAPIError:
            log.warning("migrate: the database did not answer")
            return _error(503, "the database does not answer; try again")
        if answer is None:
            return _error(404, "no user to migrate or link for this identity")
        return JSONResponse({"app_user_id": answer.app_user_id, "org_id": answer.org_id,
                             "migrated_now": answer.migrated_now})

    async def healthz(request: Request) -> JSONResponse:
        def ping() -> None:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        try:
            await run_in_threadpool(ping)
        except DBAPIError:
            return JSONResponse({"ok": False}, status_code=503)
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/v1/users/migrate", migrate, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"])])
