"""Auth0's Management API scopes and connections the fake knows."""

from __future__ import annotations

DEFAULT_SCOPES = frozenset({
    "read:users", "read:roles", "read:role_members", "read:organizations", "read:organization_members",
    "read:organization_member_roles",
})


KNOWN_SCOPES = frozenset(DEFAULT_SCOPES | {"create:users", "update:users", "delete:users", "read:users_app_metadata",
                                           "update:users_app_metadata", "create:roles", "update:roles",
                                           "create:organizations", "update:organizations", "read:connections"})


DB_CONNECTION = "Username-Password-Authentication"


SOCIAL_CONNECTION = "google-oauth2"
