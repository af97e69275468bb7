"""The ASGI application (Starlette) behind `orgmig serve`.

Every request of /v1 goes through the same steps, in this order: the client's rate (before
authentication, so a stream of wrong tokens is limited too), the token (app.service.auth), the
body (bounded, parsed strictly, validated by the models of app.service.schema), then the work on a
pooled connection whose statements run under the service's own lock and statement timeouts. Every
answer, errors included, is JSON."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app import db
from app.service import collections, schema
from app.service.auth import Authenticator
from app.service.guard import AccessLog, BodyTooLarge, Malformed, Proxies, RateLimit, error, read_json
from app.service.login import Answer, Refused, by_account, by_keycloak_id
from app.steps.user_settings.login import LoginMigrationError

log = logging.getLogger("app.service")

BUSY = ("55P03", "57014", "40P01", "40001", "53300")  # lock or statement timeout, deadlock, no connection


@dataclass(frozen=True)
class Limits:
    per_minute: int = 600
    max_body_bytes: int = 65_536
    trusted_proxies: str = ""


def _invalid(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "the body"
    return f"{where}: {first['msg']}" + (f" ({len(exc.errors())} problems)" if len(exc.errors()) > 1 else "")


def _database_error(exc: Exception) -> JSONResponse:
    if isinstance(exc, PoolTimeout):
        return error(503, "the service is busy (no free database connection); try again", **{"Retry-After": "1"})
    if isinstance(exc, LoginMigrationError):
        return error(503, "the user could not be migrated now; try again", **{"Retry-After": "1"})
    state = db.sqlstate(exc) or ""
    if state.startswith("22"):
        return error(422, "a value the database cannot take (" + db.error_summary(exc) + ")")
    if state in BUSY:
        return error(503, "the database is busy; try again", **{"Retry-After": "1"})
    log.warning("the database did not answer: %s", db.error_summary(exc))
    return error(503, "the database does not answer; try again", **{"Retry-After": "5"})


Handler = Callable[[Request, object], Awaitable[Response]]


def create_app(engine: Engine, authenticate: Authenticator, store: collections.Store,
               limits: Limits = Limits()) -> Starlette:
    """The application on `engine` (the service's pool) and `store` (the collections' Redis)."""
    proxies = Proxies(limits.trusted_proxies)
    rate = RateLimit(limits.per_minute)

    def guarded(handler: Handler, body: type[BaseModel] | tuple[type[BaseModel], ...] | None = None):
        async def endpoint(request: Request) -> Response:
            wait = rate.retry_after(proxies.client(request))
            if wait:
                return error(429, "too many requests from this client", **{"Retry-After": str(wait)})
            header = request.headers.get("authorization")
            # an RS256 check takes tens of microseconds: on the loop, unless the key set is fetched
            verdict = (await run_in_threadpool(authenticate, header) if authenticate.blocks(header)
                       else authenticate(header))
            if verdict.status != 200:
                headers = {"WWW-Authenticate": "Bearer"} if verdict.status == 401 else {}
                return error(verdict.status, verdict.message, **headers)
            parsed = None
            if body is not None:
                try:
                    parsed = _validate(body, await read_json(request, limits.max_body_bytes))
                except BodyTooLarge:
                    return error(413, f"the body is larger than {limits.max_body_bytes:,} bytes")
                except Malformed as exc:
                    return error(422, str(exc))
                except ValidationError as exc:
                    return error(422, _invalid(exc))
            try:
                return await handler(request, parsed)
            except (DBAPIError, PoolTimeout, LoginMigrationError) as exc:
                return _database_error(exc)
        return endpoint

    def on_connection(work):
        def run(*args):
            with engine.connect() as conn:
                return work(conn, *args)
        return run

    async def migrate(request: Request, body) -> Response:
        if isinstance(body, schema.MigrateLegacy):
            answer = await run_in_threadpool(on_connection(by_keycloak_id), body.keycloak_user_id)
        else:
            answer = await run_in_threadpool(on_connection(by_account), body.provider, body.external_id,
                                             body.email, body.email_verified)
        if answer is None:
            return error(404, "no user to migrate or link for this identity")
        if isinstance(answer, Refused):
            return error(answer.status, answer.message, answer.reason)
        assert isinstance(answer, Answer)
        return JSONResponse(schema.Migrated(**asdict(answer)).model_dump())

    async def on_collections(work, *args) -> Response:
        found = await run_in_threadpool(collections.answer, lambda: on_connection(work)(store, *args))
        return found if isinstance(found, Response) else JSONResponse(found)

    async def legacy(request: Request, body) -> Response:
        return await on_collections(collections.offer, request.path_params["app_user_id"])

    async def move(request: Request, body) -> Response:
        return await on_collections(collections.migrate, request.path_params["app_user_id"])

    async def anonymous(request: Request, body) -> Response:
        return await on_collections(collections.import_anon, request.path_params["app_user_id"], body.anon_id)

    async def healthz(request: Request) -> Response:
        def ping(conn) -> None:
            conn.execute(text("SELECT 1"))
        try:
            await run_in_threadpool(on_connection(ping))
        except (DBAPIError, PoolTimeout):
            return JSONResponse({"ok": False}, status_code=503)
        return JSONResponse({"ok": True})

    document = schema.openapi()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def not_found(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 405:
            return error(405, f"{request.method} is not allowed here")
        return error(exc.status_code, "no such endpoint" if exc.status_code == 404 else str(exc.detail))

    app = Starlette(routes=[
        Route("/v1/users/migrate", guarded(migrate, (schema.MigrateLegacy, schema.MigrateAccount)), methods=["POST"]),
        Route("/v1/users/{app_user_id:int}/collections/legacy", guarded(legacy), methods=["GET"]),
        Route("/v1/users/{app_user_id:int}/collections/migrate", guarded(move), methods=["POST"]),
        Route("/v1/users/{app_user_id:int}/collections/import-anonymous", guarded(anonymous, schema.ImportAnonymous),
              methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ], exception_handlers={HTTPException: not_found})
    app.add_middleware(AccessLog, proxies=proxies)
    return app


def _validate(body: type[BaseModel] | tuple[type[BaseModel], ...], payload) -> BaseModel:
    """The payload as the one model it is meant as (the first whose distinguishing field it has)."""
    models = body if isinstance(body, tuple) else (body,)
    if not isinstance(payload, dict):
        raise Malformed("the body must be a JSON object")
    for model in models[:-1]:
        first = next(iter(model.model_fields))
        if first in payload:
            return model.model_validate(payload)
    return models[-1].model_validate(payload)
