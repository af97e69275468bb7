"""The endpoints' request and response bodies (pydantic models, strict: no coercion, no unknown
field) and the OpenAPI document built from them, served at /openapi.json."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from app.provider_names import PROVIDERS


def _printable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Text = Annotated[str, Field(min_length=1, max_length=255, strict=True), AfterValidator(_printable)]
Email = Annotated[str, Field(min_length=1, max_length=320, strict=True), AfterValidator(_printable)]
Provider = Literal[PROVIDERS]  # type: ignore[valid-type]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class MigrateLegacy(_Body):
    """A legacy user by its Keycloak id: its user_settings rows are migrated now."""
    keycloak_user_id: Text


class MigrateAccount(_Body):
    """An identity-provider account after its login: its link, made now where the identity
    contract's rules allow it (docs/identity.md, "Matching an account to an app user")."""
    provider: Provider
    external_id: Text
    email: Email | None = None
    email_verified: StrictBool = Field(default=False, description="the provider marks the email verified;"
                                       " absent means false, and an unverified email never links")


class ImportAnonymous(_Body):
    anon_id: Text


class Migrated(BaseModel):
    app_user_id: int
    org_id: str | None
    migrated_now: bool


class Error(BaseModel):
    error: str
    reason: str | None = Field(default=None, description="the identity contract's report reason, where one applies")


class LegacyCollections(BaseModel):
    """What the old account holding the user's email has (GeneNetwork), or why nothing can move."""
    app_user_id: int
    can_migrate: bool
    reason: str | None = Field(description="why nothing can move (null when something can): no_old_account,"
                               " email_shared_by_old_accounts, email_shared_by_app_users, migrated_already,"
                               " nothing_to_move, app_user_email_missing, malformed_collections_json")
    collections: int
    names: list[str]
    members: int


class CollectionsMoved(BaseModel):
    """What a move or an import did: counts by outcome (moved, done: moved before, reported,
    no_old_account, collections_added ...) and the reported rows by reason."""
    app_user_id: int
    counts: dict[str, int]
    reported: dict[str, int]


MODELS = (MigrateLegacy, MigrateAccount, ImportAnonymous, Migrated, Error, LegacyCollections, CollectionsMoved)


def _errors(*statuses: int) -> dict[str, Any]:
    words = {401: "no, malformed, expired or wrong token", 403: "a valid token of a client that may not call",
             404: "no such user, or nothing may be linked", 409: "the user belongs to another account",
             413: "the body is larger than ORGMIG_SERVE_MAX_BODY_BYTES", 422: "a malformed body",
             429: "past this client's rate (Retry-After)", 503: "the database is busy or does not answer (Retry-After)"}
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {str(s): {"description": words[s], "content": ref} for s in statuses}


def _body(model: type[BaseModel] | str) -> dict[str, Any]:
    schema = ({"oneOf": [{"$ref": f"#/components/schemas/{m}"} for m in model.split("|")]}
              if isinstance(model, str) else {"$ref": f"#/components/schemas/{model.__name__}"})
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _ok(model: type[BaseModel]) -> dict[str, Any]:
    return {"200": {"description": "done", "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def openapi() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in MODELS:
        schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    user = {"name": "app_user_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
    common = (401, 403, 413, 422, 429, 503)
    return {
        "openapi": "3.1.0",
        "info": {"title": "orgmig serve", "version": "1",
                 "description": "Login-time migration: one user migrated or linked now, and GeneNetwork's"
                                " per-user collections."},
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/v1/users/migrate": {"post": {
                "summary": "migrate a legacy user, or link an identity-provider account, now",
                "requestBody": _body("MigrateLegacy|MigrateAccount"),
                "responses": {**_ok(Migrated), **_errors(*common, 404, 409)}}},
            "/v1/users/{app_user_id}/collections/legacy": {"get": {
                "summary": "what the old account holding the user's email has, or why nothing can move",
                "parameters": [user], "responses": {**_ok(LegacyCollections), **_errors(*common, 404)}}},
            "/v1/users/{app_user_id}/collections/migrate": {"post": {
                "summary": "move the old account's collections to the user (idempotent)",
                "parameters": [user], "responses": {**_ok(CollectionsMoved), **_errors(*common, 404)}}},
            "/v1/users/{app_user_id}/collections/import-anonymous": {"post": {
                "summary": "import an anonymous session's collections (idempotent)",
                "parameters": [user], "requestBody": _body(ImportAnonymous),
                "responses": {**_ok(CollectionsMoved), **_errors(*common, 404)}}},
            "/healthz": {"get": {"summary": "the database answers", "security": [],
                                 "responses": {"200": {"description": "ok"}, "503": {"description": "no database"}}}},
        },
    }
