"""The login-time service (`orgmig serve`): an identity provider's post-login hook, or the
application, asks for one user to be migrated or linked now and gets the app's ids back; the
application offers and moves GeneNetwork's per-user collections at login.

    POST /v1/users/migrate   Authorization: Bearer <token>
        {"keycloak_user_id": "..."}                                        the legacy row, migrated now
        {"provider": "auth0", "external_id": "...", "email": "...", "email_verified": true}
                                                                           the account linked, and its user
    -> 200 {"app_user_id": 42, "org_id": "...", "migrated_now": true}
    GET  /v1/users/{app_user_id}/collections/legacy
    POST /v1/users/{app_user_id}/collections/migrate
    POST /v1/users/{app_user_id}/collections/import-anonymous   {"anon_id": "..."}
    GET  /healthz, GET /openapi.json

Errors are JSON ({"error": ..., "reason": ...}): 401 no or bad token, 403 a valid token of another
client, 404, 409 the user is another account's, 413, 422 a malformed body, 429 and 503 with
Retry-After. It never answers with another user's data, and logs neither tokens nor bodies."""

from app.service.app import Limits, create_app

__all__ = ["Limits", "create_app"]
