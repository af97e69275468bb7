"""A fake Auth0 tenant: the Management API v2 (users, user export jobs, roles, organizations) and the
Authentication API's client-credentials grant, following Auth0's contracts (see README.md beside the
package).

The class is its settings, its route table and the helpers tests call; each concern is a mixin
of its own module.
"""

from __future__ import annotations

import secrets
from typing import Any

from ..base import FakeServer, JwtSigner, Renderings, Response, TenantIndex, TokenBucket, derived_hex, derived_id
from ..tenant import Tenant, User
from ..tokens import ApiTokens
from .auth import Auth0Auth
from .exports import Auth0Exports, ExportJob
from .index import Auth0Index
from .organizations import Auth0Organizations
from .paging import Auth0Paging
from .roles import Auth0Roles
from .scopes import DB_CONNECTION, DEFAULT_SCOPES, SOCIAL_CONNECTION
from .users import Auth0Users
from .writes import Auth0Writes


class FakeAuth0(Auth0Auth, Auth0Index, Auth0Paging, Auth0Users, Auth0Writes, Auth0Exports, Auth0Roles,
                Auth0Organizations, FakeServer):
    """A fake Auth0 tenant serving `tenant`.

    `rate_limit` is the Management API token bucket's size (burst) and `refill_per_second` its
    sustained rate; `endpoint_rate_limits` adds buckets for path prefixes, e.g.
    `{"/api/v2/organizations": (10, 100 / 60)}`. Export jobs go pending -> processing ->
    completed over `export_delay` seconds; their download link lives `export_link_ttl` seconds."""

    server_header = "nginx"

    def __init__(
        self,
        tenant: Tenant,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        rate_limit: int = 50,
        refill_per_second: float = 16.0,
        endpoint_rate_limits: dict[str, tuple[int, float]] | None = None,
        scopes: set[str] | frozenset[str] = DEFAULT_SCOPES,
        token_ttl: float = 86400,
        export_delay: float = 0.5,
        export_link_ttl: float = 60.0,
        tenant_name: str = "acme-prod",
        social_percent: int = 5,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(tenant, host=host, port=port)
        self.client_id = client_id or derived_id("", "auth0-client", str(tenant.seed), length=32)
        self.client_secret = client_secret or secrets.token_urlsafe(48)
        self.rate_limit = rate_limit
        self.bucket = TokenBucket(rate_limit, refill_per_second)
        self.endpoint_buckets = {prefix: TokenBucket(cap, rate)
                                 for prefix, (cap, rate) in (endpoint_rate_limits or {}).items()}
        self.token_bucket = TokenBucket(max(rate_limit, 100), max(refill_per_second, 10.0))
        self.scopes = frozenset(scopes)
        self.token_ttl = token_ttl
        self.export_delay = export_delay
        self.export_link_ttl = export_link_ttl
        self.tenant_name = tenant_name
        self.social_percent = social_percent
        self.failing_exports = 0
        self.signer = JwtSigner()
        self.apis = ApiTokens()
        self._link_key = secrets.token_bytes(16)
        self._link_deadlines: dict[str, float] = {}
        self._tokens_not_before = 0.0
        self.issued_tokens = 0
        self.jobs: dict[str, ExportJob] = {}
        self.connection_id = derived_id("con_", "auth0-connection", DB_CONNECTION, str(tenant.seed), length=20)
        self.social_connection_id = derived_id("con_", "auth0-connection", SOCIAL_CONNECTION, str(tenant.seed),
                                               length=20)
        self._index = TenantIndex(tenant, self._build_index)
        self._user_by_aid: dict[str, User] = {}
        self._aid_by_neutral: dict[str, str] = {}
        self._docs = Renderings()  # Auth0 user id -> its document, per user version
        self._user_metadata: dict[str, dict[str, Any]] = {}  # set by PATCH, replacing the derived one
        self._lists = Renderings()  # role and organization members, per tenant version

        api = r"/api/v2"
        self.route("POST", r"/oauth/token", self._token, auth=False)
        self.route("GET", r"/\.well-known/jwks\.json", lambda req: Response.json(200, self.apis.jwks()), auth=False)
        self.route("GET", rf"{api}/users", self._users, need=[("read:users",)])
        self.route("GET", rf"{api}/users/(?P<uid>[^/]+)", self._user, need=[("read:users",)])
        self.route("PATCH", rf"{api}/users/(?P<uid>[^/]+)", self._patch_user,
                   need=[("update:users", "update:users_app_metadata")])
        self.route("GET", rf"{api}/users/(?P<uid>[^/]+)/roles", self._user_roles,
                   need=[("read:users",), ("read:roles",)])
        self.route("GET", rf"{api}/users/(?P<uid>[^/]+)/organizations", self._user_orgs,
                   need=[("read:users",), ("read:organizations",)])
        self.route("POST", rf"{api}/jobs/users-exports", self._create_export, need=[("read:users",)])
        self.route("GET", rf"{api}/jobs/(?P<job>[^/]+)", self._get_job, need=[("create:users", "read:users")])
        self.route("GET", rf"{api}/roles", self._roles, need=[("read:roles",)])
        self.route("GET", rf"{api}/roles/(?P<rid>[^/]+)", self._role, need=[("read:roles",)])
        self.route("GET", rf"{api}/roles/(?P<rid>[^/]+)/users", self._role_users, need=[("read:role_members",)])
        self.route("GET", rf"{api}/organizations", self._orgs, need=[("read:organizations",)])
        self.route("GET", rf"{api}/organizations/(?P<oid>[^/]+)", self._org, need=[("read:organizations",)])
        self.route("GET", rf"{api}/organizations/(?P<oid>[^/]+)/members", self._org_members,
                   need=[("read:organization_members",)])
        self.route("GET", rf"{api}/organizations/(?P<oid>[^/]+)/members/(?P<uid>[^/]+)/roles",
                   self._org_member_roles, need=[("read:organization_member_roles",)])
        self.route("GET", r"/exports/(?P<job>[^/]+)/(?P<file>[^/]+)", self._download, auth=False)

    def settings(self) -> dict[str, str]:
        """The environment that points `orgmig export` at this fake."""
        return {"AUTH0_BASE_URL": self.base_url, "AUTH0_CLIENT_ID": self.client_id,
                "AUTH0_CLIENT_SECRET": self.client_secret}

    @property
    def audience(self) -> str:
        return f"{self.base_url}/api/v2/"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth/token"

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    def auth0_user_id(self, neutral_id: str) -> str:
        aid = self._aid_by_neutral.get(neutral_id)
        if aid is None:
            u = self.tenant.users.get(neutral_id)
            h = derived_hex("auth0-user", neutral_id, length=24)
            if u is not None and u.email and int(h[:4], 16) % 100 < self.social_percent:
                aid = f"{SOCIAL_CONNECTION}|1{int(h, 16) % 10**20:020d}"
            else:
                aid = f"auth0|{h}"
            self._aid_by_neutral[neutral_id] = aid
        return aid

    def role_id(self, neutral_id: str) -> str:
        return derived_id("rol_", "auth0-role", neutral_id, length=20)

    def org_id(self, neutral_id: str) -> str:
        return derived_id("org_", "auth0-org", neutral_id, length=20)

    def neutral_user_id(self, auth0_user_id: str) -> str:
        self._idx()
        return self._user_by_aid[auth0_user_id].id

    def expected_users(self) -> list[dict[str, Any]]:
        """Every user as GET /api/v2/users renders them (all fields), in the default order."""
        return [dict(self._doc(aid)) for aid in self._idx()]

    def expected_roles(self) -> list[dict[str, Any]]:
        return [self._role_doc(r.id) for r in self._sorted_roles()]

    def expected_role_users(self, role_id: str) -> list[str]:
        return list(self._role_members(role_id))

    def expected_organizations(self) -> list[dict[str, Any]]:
        return [self._org_doc(o) for o in self._sorted_orgs()]

    def expected_org_members(self, org_id: str) -> list[dict[str, Any]]:
        """Members with their roles, as `GET .../members?fields=user_id,email,name,picture,roles`."""
        o = self._org_by_id(org_id)
        if o is None:
            raise KeyError(org_id)
        return [self._member_doc(m_aid, roles) for m_aid, roles in self._members_of(o)]
