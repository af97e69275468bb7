"""A fake Okta org: Users, Groups and Schemas management API plus the org authorization server's
client-credentials token endpoint, following Okta's contracts (see README.md beside the package).

The class is its settings, its route table and the helpers tests call; each concern is a mixin
of its own module.
"""

from __future__ import annotations

import secrets
from typing import Any

from ..base import FakeServer, FixedWindowLimiter, JwtSigner, Renderings, TenantIndex, derived_id
from ..tenant import Tenant
from .auth import OktaAuth
from .groups import OktaGroups
from .index import OktaIndex
from .paging import OktaPaging
from .schema import OktaSchema
from .scopes import DEFAULT_SCOPES, SCOPE_GROUPS, SCOPE_SCHEMAS, SCOPE_SCHEMAS_MANAGE, SCOPE_USERS, SCOPE_USERS_MANAGE
from .users import OktaUsers
from .writes import OktaWrites


class FakeOkta(OktaAuth, OktaIndex, OktaPaging, OktaUsers, OktaGroups, OktaWrites, OktaSchema, FakeServer):
    """A fake Okta org serving `tenant`.

    Rate limits: one fixed window per bucket (`users` = GET /api/v1/users, `groups` =
    GET /api/v1/groups, `other` = the rest of /api/v1, `oauth2` = the token endpoint), each
    `rate_limit_per_minute` requests per `window_seconds` unless `rate_limits` names a bucket.
    More than `concurrency_limit` requests in flight get a 429 with X-Rate-Limit-Limit: 0."""

    server_header = "nginx"

    def __init__(
        self,
        tenant: Tenant,
        *,
        rate_limit_per_minute: int = 600,
        concurrency_limit: int = 75,
        page_limit_cap: int = 200,
        window_seconds: float = 60.0,
        rate_limits: dict[str, int] | None = None,
        api_token: str | None = None,
        api_token_scopes: set[str] | frozenset[str] | None = None,
        client_id: str | None = None,
        client_public_key: Any = None,
        oauth_scopes: set[str] | frozenset[str] = DEFAULT_SCOPES,
        token_ttl: float = 3600,
        include_everyone_group: bool = True,
        empty_last_page: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(tenant, host=host, port=port)
        self.concurrency_limit = concurrency_limit
        self.page_limit_cap = page_limit_cap
        self.window_seconds = window_seconds
        limits = {"users": rate_limit_per_minute, "groups": rate_limit_per_minute,
                  "other": rate_limit_per_minute, "oauth2": rate_limit_per_minute,
                  "user-update": rate_limit_per_minute}
        limits.update(rate_limits or {})
        self.limiters = {name: FixedWindowLimiter(n, window_seconds) for name, n in limits.items()}
        self.api_token = api_token or "00" + secrets.token_urlsafe(30)[:40]
        self.api_token_scopes = None if api_token_scopes is None else frozenset(api_token_scopes)
        self.client_id = client_id or derived_id("0oa", "okta-client", str(tenant.seed))
        self.client_public_key = client_public_key
        self.oauth_scopes = frozenset(oauth_scopes)
        self.token_ttl = token_ttl
        self.include_everyone_group = include_everyone_group
        self.empty_last_page = empty_last_page
        self.signer = JwtSigner()
        self._tokens_not_before = 0.0
        self._used_jti: set[str] = set()
        self._index = TenantIndex(tenant, self._build_index)
        self._oid_user: dict[str, str] = {}  # neutral id -> Okta id (memo across rebuilds)
        self._oid_group: dict[str, str] = {}
        self._user_json = Renderings()  # Okta user id -> its JSON, per user version
        self._group_json = Renderings()  # Okta group id -> its JSON, per group and structure version
        self._error_seq = 0
        self._empty_cursors = 0  # cursors handed out by faults.empty_pages
        self.user_type_id = derived_id("oty", "okta-user-type", str(tenant.seed))
        self.everyone_group_id = derived_id("00g", "okta-everyone", str(tenant.seed))
        self.issued_tokens = 0

        users_need = ((SCOPE_USERS,),)
        groups_need = ((SCOPE_GROUPS,),)
        self.route("POST", r"/oauth2/v1/token", self._token, auth=False, bucket="oauth2")
        self.route("GET", r"/api/v1/users", self._list_users, bucket="users", need=users_need)
        self.route("GET", r"/api/v1/users/(?P<uid>[^/]+)", self._get_user, bucket="other", need=users_need)
        manage_need = ((SCOPE_USERS_MANAGE,),)
        self.route("POST", r"/api/v1/users/(?P<uid>[^/]+)", self._update_user, bucket="user-update", need=manage_need)
        self.route("PUT", r"/api/v1/users/(?P<uid>[^/]+)", self._replace_user, bucket="user-update",
                   need=manage_need)
        self.route("GET", r"/api/v1/users/(?P<uid>[^/]+)/groups", self._user_groups, bucket="other", need=users_need)
        self.route("GET", r"/api/v1/groups", self._list_groups, bucket="groups", need=groups_need)
        self.route("GET", r"/api/v1/groups/(?P<gid>[^/]+)", self._get_group, bucket="other", need=groups_need)
        self.route("GET", r"/api/v1/groups/(?P<gid>[^/]+)/users", self._group_users, bucket="other", need=groups_need)
        self.route("GET", r"/api/v1/meta/schemas/user/(?P<sid>[^/]+)", self._user_schema, bucket="other",
                   need=((SCOPE_SCHEMAS,),))
        self.route("POST", r"/api/v1/meta/schemas/user/(?P<sid>[^/]+)", self._update_user_schema, bucket="other",
                   need=((SCOPE_SCHEMAS_MANAGE,),))

    def settings(self) -> dict[str, str]:
        """The environment that points `orgmig export` at this fake."""
        return {"OKTA_BASE_URL": self.base_url, "OKTA_API_TOKEN": self.api_token}

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth2/v1/token"

    def okta_user_id(self, neutral_id: str) -> str:
        oid = self._oid_user.get(neutral_id)
        if oid is None:
            oid = self._oid_user[neutral_id] = derived_id("00u", "okta-user", neutral_id)
        return oid

    def okta_group_id(self, neutral_id: str) -> str:
        oid = self._oid_group.get(neutral_id)
        if oid is None:
            oid = self._oid_group[neutral_id] = derived_id("00g", "okta-group", neutral_id)
        return oid

    def neutral_user_id(self, okta_id: str) -> str:
        return self._idx().user_by_oid[okta_id].id

    def neutral_group_id(self, okta_id: str) -> str | None:
        """None for the Everyone group (it exists only in Okta)."""
        g = self._idx().group_by_oid[okta_id]
        return g.id if g is not None else None

    def expected_users(self, *, include_deprovisioned: bool = True) -> list[dict[str, Any]]:
        """Every user as GET /api/v1/users renders it, sorted by id. The plain list omits
        DEPROVISIONED users; pass include_deprovisioned=False to get exactly that list."""
        import json

        idx = self._idx()
        out = []
        for oid in idx.user_ids:
            u = idx.user_by_oid[oid]
            if include_deprovisioned or u.status != "DEPROVISIONED":
                out.append(json.loads(self._render_user(oid, u)))
        return out

    def expected_groups(self) -> list[dict[str, Any]]:
        import json

        idx = self._idx()
        return [json.loads(self._render_group(gid, idx.group_by_oid[gid], idx)) for gid in idx.group_ids]

    def expected_group_members(self, okta_group_id: str) -> list[str]:
        return list(self._members(okta_group_id))

    def expected_user_groups(self, okta_user_id: str) -> list[str]:
        return list(self._idx().groups_of_user.get(okta_user_id, ()))

    def listing_sizes(self) -> dict[str, Any]:
        """What the listings hold, to count the requests an export needs: users the plain list
        returns, DEPROVISIONED users (a filtered list), groups (Everyone included) and the member
        count of each group but Everyone."""
        idx = self._idx()
        deprovisioned = sum(1 for u in idx.user_by_oid.values() if u.status == "DEPROVISIONED")
        return {
            "users": len(idx.user_ids) - deprovisioned,
            "deprovisioned": deprovisioned,
            "groups": len(idx.group_ids),
            "group_members": [len(self._members(g)) for g in idx.group_ids if idx.group_by_oid[g] is not None],
        }
