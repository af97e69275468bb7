"""The login-time endpoint (`orgmig serve`): an identity provider's post-login hook, or the
application, asks for one user to be migrated now and gets the app's ids back.

    POST /v1/users/migrate   Authorization: Bearer $ORGMIG_SERVE_TOKEN
        {"keycloak_user_id": "..."}                                  the legacy row, migrated now
        {"provider": "auth0", "external_id": "...", "email": "..."}  the account linked, and its user
    -> 200 {"app_user_id": 42, "org_id": "...", "migrated_now": true}
       401 no or wrong token (compared in constant time), 404 no such user, 422 a malformed body,
       429 past the per-client rate (Retry-After), 503 the database does not answer
    GET /healthz -> 200 {"ok": true} when the database answers

It never answers with another user's data, and logs neither the token nor the body."""

from app.service.app import create_app

__all__ = ["create_app"]
