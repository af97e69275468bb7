"""Okta's OAuth scopes the fake knows."""

from __future__ import annotations

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


SCOPE_USERS = "okta.users.read"


SCOPE_GROUPS = "okta.groups.read"


SCOPE_SCHEMAS = "okta.schemas.read"


SCOPE_USERS_MANAGE = "okta.users.manage"


SCOPE_SCHEMAS_MANAGE = "okta.schemas.manage"


DEFAULT_SCOPES = frozenset({SCOPE_USERS, SCOPE_GROUPS, SCOPE_SCHEMAS})


KNOWN_SCOPES = frozenset(DEFAULT_SCOPES | {"okta.users.manage", "okta.groups.manage", "okta.schemas.manage",
                                           "okta.apps.read", "okta.logs.read", "okta.roles.read"})
