"""A fake Keycloak (26.x admin REST API for one realm) plus the realm's OpenID Connect token endpoint
for the client-credentials grant of a service-account client, following Keycloak's contracts (see
README.md beside the package).

The class is its settings, its route table and the helpers tests call; each concern is a mixin
of its own module.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from ..base import FakeServer, JwtSigner, TenantIndex
from ..tenant import Tenant
from .auth import _QUERY_GROUPS, _QUERY_USERS, _VIEW_REALM, _VIEW_USERS, DEFAULT_SERVICE_ACCOUNT_ROLES, KeycloakAuth
from .groups import KeycloakGroups
from .index import KeycloakIndex, _kc_uuid
from .organizations import KeycloakOrganizations
from .paging import KeycloakPaging
from .representations import KeycloakRepresentations
from .roles import KeycloakRoles
from .users import KeycloakUsers
from .writes import KeycloakWrites


class FakeKeycloak(KeycloakAuth, KeycloakIndex, KeycloakRepresentations, KeycloakPaging, KeycloakUsers,
                   KeycloakWrites, KeycloakGroups, KeycloakRoles, KeycloakOrganizations, FakeServer):
    """A fake Keycloak serving `tenant` as the realm `realm`.

    The service-account client `client_id`/`client_secret` gets the `realm-management` roles in
    `service_account_roles` (composites expanded as Keycloak does: view-users brings
    query-users and query-groups). Access tokens live `token_ttl` seconds. Keycloak has no rate
    limiting of its own; injected 429/503 look like a fronting nginx (HTML, `Retry-After`)."""

    server_header = ""

    def __init__(
        self,
        tenant: Tenant,
        *,
        realm: str = "acme",
        client_id: str = "orgmig-export",
        client_secret: str | None = None,
        token_ttl: float = 300,
        service_account_roles: set[str] | frozenset[str] = DEFAULT_SERVICE_ACCOUNT_ROLES,
        organizations_enabled: bool = True,
        relative_path: str = "",
        proxy_retry_after: int | None = 1,
        user_profile_attributes: set[str] | frozenset[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(tenant, host=host, port=port)
        self.realm = realm
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.token_ttl = token_ttl
        self.service_account_roles = frozenset(service_account_roles)
        self.organizations_enabled = organizations_enabled
        self.relative_path = relative_path.rstrip("/")
        self.proxy_retry_after = proxy_retry_after
        # None: unmanaged attributes enabled (Keycloak before 24, or its "Unmanaged attributes:
        # Enabled"); a set: Keycloak 24+ with unmanaged attributes off, where only these custom
        # attributes are declared: the admin API neither shows nor stores any other.
        self.user_profile_attributes = None if user_profile_attributes is None else frozenset(user_profile_attributes)
        self.signer = JwtSigner()
        self._tokens_not_before = 0.0
        self.issued_tokens = 0
        self.realm_id = _kc_uuid("realm", realm)
        self.service_account_id = _kc_uuid("service-account", f"{realm}:{client_id}")
        self.realm_management_id = _kc_uuid("client", f"{realm}:realm-management")
        self._index = TenantIndex(tenant, self._build_index)
        self._ids: dict[tuple[str, str], str] = {}

        base = re.escape(self.relative_path)
        realm_re = r"(?P<realm>[^/]+)"
        admin = f"{base}/admin/realms/{realm_re}"
        self.route("POST", f"{base}/realms/{realm_re}/protocol/openid-connect/token", self._token, auth=False)
        self.route("GET", f"{admin}/users", self._users, need=[_VIEW_USERS])
        self.route("GET", f"{admin}/users/count", self._users_count, need=[_QUERY_USERS])
        # Before users/{id}, which would take "profile" for an id (Keycloak routes it apart too).
        self.route("GET", f"{admin}/users/profile", self._user_profile, need=[_VIEW_USERS + _VIEW_REALM])
        self.route("GET", f"{admin}/users/(?P<uid>[^/]+)", self._user, need=[_VIEW_USERS])
        self.route("PUT", f"{admin}/users/(?P<uid>[^/]+)", self._update_user, need=[("manage-users",)])
        self.route("GET", f"{admin}/users/(?P<uid>[^/]+)/groups", self._user_groups, need=[_VIEW_USERS])
        self.route("GET", f"{admin}/users/(?P<uid>[^/]+)/groups/count", self._user_groups_count, need=[_VIEW_USERS])
        self.route("GET", f"{admin}/users/(?P<uid>[^/]+)/role-mappings", self._role_mappings, need=[_VIEW_USERS])
        self.route("GET", f"{admin}/users/(?P<uid>[^/]+)/role-mappings/realm", self._realm_mappings,
                   need=[_VIEW_USERS])
        self.route("GET", f"{admin}/users/(?P<uid>[^/]+)/role-mappings/realm/composite", self._realm_composite,
                   need=[_VIEW_USERS])
        self.route("GET", f"{admin}/groups", self._groups, need=[_QUERY_GROUPS])
        self.route("GET", f"{admin}/groups/count", self._groups_count, need=[_QUERY_GROUPS])
        self.route("GET", f"{admin}/groups/(?P<gid>[^/]+)", self._group, need=[_QUERY_GROUPS])
        self.route("GET", f"{admin}/groups/(?P<gid>[^/]+)/children", self._children, need=[_QUERY_GROUPS])
        self.route("GET", f"{admin}/groups/(?P<gid>[^/]+)/members", self._members, need=[_VIEW_USERS])
        self.route("GET", f"{admin}/roles", self._roles, need=[_VIEW_REALM + _VIEW_USERS])
        self.route("GET", f"{admin}/roles/(?P<role>[^/]+)", self._role, need=[_VIEW_REALM + _VIEW_USERS])
        self.route("GET", f"{admin}/roles/(?P<role>[^/]+)/users", self._role_users,
                   need=[_VIEW_REALM + _VIEW_USERS, _QUERY_USERS])
        self.route("GET", f"{admin}/attack-detection/brute-force/users/(?P<uid>[^/]+)", self._brute_force,
                   need=[_VIEW_USERS])
        self.route("GET", f"{admin}/organizations", self._orgs, need=[("manage-realm",)])
        self.route("GET", f"{admin}/organizations/count", self._orgs_count, need=[("manage-realm",)])
        self.route("GET", f"{admin}/organizations/members/(?P<uid>[^/]+)/organizations", self._user_orgs,
                   need=[("manage-realm",)])
        self.route("GET", f"{admin}/organizations/(?P<oid>[^/]+)", self._org, need=[("manage-realm",)])
        self.route("GET", f"{admin}/organizations/(?P<oid>[^/]+)/members", self._org_members,
                   need=[("manage-realm",)])
        self.route("GET", f"{admin}/organizations/(?P<oid>[^/]+)/members/count", self._org_members_count,
                   need=[("manage-realm",)])

    def settings(self) -> dict[str, str]:
        """The environment that points `orgmig export` at this fake."""
        return {"KEYCLOAK_BASE_URL": self.base_url, "KEYCLOAK_REALM": self.realm,
                "KEYCLOAK_CLIENT_ID": self.client_id, "KEYCLOAK_CLIENT_SECRET": self.client_secret}

    @property
    def server_url(self) -> str:
        """What Keycloak clients call the server URL (base URL plus the relative path)."""
        return self.base_url + self.relative_path

    @property
    def token_url(self) -> str:
        return f"{self.server_url}/realms/{self.realm}/protocol/openid-connect/token"

    @property
    def admin_url(self) -> str:
        return f"{self.server_url}/admin/realms/{self.realm}"

    @property
    def issuer(self) -> str:
        return f"{self.server_url}/realms/{self.realm}"

    def kc_id(self, kind: str, neutral_id: str) -> str:
        key = (kind, neutral_id)
        v = self._ids.get(key)
        if v is None:
            v = self._ids[key] = _kc_uuid(kind, f"{self.realm}:{neutral_id}")
        return v

    def user_id(self, neutral_id: str) -> str:
        return self.kc_id("user", neutral_id)

    def group_id(self, neutral_id: str) -> str:
        return self.kc_id("group", neutral_id)

    def org_id(self, neutral_id: str) -> str:
        return self.kc_id("org", neutral_id)

    def neutral_user_id(self, kc_user_id: str) -> str | None:
        """None for the service-account user (it exists only in Keycloak)."""
        u = self._idx().user_by_id[kc_user_id]
        return u.id if u is not None else None

    def expected_users(self, *, include_service_account: bool = True, brief: bool = False) -> list[dict[str, Any]]:
        """Every user as GET /users returns them (full representation unless `brief`), ordered
        by username. The service-account user of the export client is part of the realm."""
        idx = self._idx()
        return [self._user_rep(uid, brief=brief, access=True) for _, uid in idx.users
                if include_service_account or idx.user_by_id[uid] is not None]

    def expected_groups(self) -> list[dict[str, Any]]:
        """Every group (all levels) in the full representation with its `path`, ordered by path."""
        idx = self._idx()
        reps = [self._group_rep(gid, brief=False) for gid in idx.group_by_id]
        return sorted(reps, key=lambda r: r["path"])

    def expected_group_members(self, group_id: str) -> list[str]:
        return list(self._idx().members.get(group_id, ()))

    def expected_user_groups(self, user_id: str) -> list[str]:
        return list(self._idx().groups_of_user.get(user_id, ()))

    def expected_realm_roles(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._idx().realm_roles]

    def expected_user_roles(self, user_id: str) -> list[str]:
        return list(self._idx().roles_of_user.get(user_id, ()))

    def expected_organizations(self) -> list[dict[str, Any]]:
        idx = self._idx()
        return [self._org_rep(oid, brief=False) for oid in idx.orgs]

    def expected_org_members(self, org_id: str) -> list[str]:
        return list(self._idx().org_members.get(org_id, ()))
