"""A fake Keycloak (26.x admin REST API for one realm) plus the realm's OpenID Connect token
endpoint for the client-credentials grant of a service-account client. See README.md.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
import uuid
from typing import Any
from urllib.parse import unquote

from .base import (
    FakeServer,
    FaultRule,
    JwtSigner,
    Request,
    Response,
    dumps,
    epoch_ms,
    proxy_error_page,
)
from .tenant import Group, Tenant, User

_NS = uuid.UUID("6b1c8a52-9f0e-4c5e-8d59-2f4c1b8f0a11")

# realm-management client roles and the roles their composites include
_COMPOSITES = {
    "view-users": {"query-users", "query-groups"},
    "manage-users": {"query-users", "query-groups"},
    "realm-admin": {"view-users", "manage-users", "query-users", "query-groups", "view-realm", "manage-realm",
                    "query-realms", "view-clients", "query-clients"},
    "view-clients": {"query-clients"},
}
DEFAULT_SERVICE_ACCOUNT_ROLES = frozenset({"view-users", "query-groups", "view-realm", "manage-realm"})

_VIEW_USERS = ("view-users", "manage-users")
_QUERY_USERS = ("query-users", "view-users", "manage-users")
_QUERY_GROUPS = ("query-groups", "view-users", "manage-users")
_VIEW_REALM = ("view-realm", "manage-realm")


def _kc_uuid(kind: str, key: str) -> str:
    return str(uuid.uuid5(_NS, f"{kind}:{key}"))


def _bool_param(req: Request, name: str, default: bool) -> bool:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return default
    return raw.lower() == "true"


def _attr_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class _ParamError(Exception):
    pass


class _Index:
    def __init__(self) -> None:
        self.version = -1
        self.users: list[tuple[str, str]] = []  # (username, kc id) sorted by username
        self.user_by_id: dict[str, User | None] = {}  # None: the service-account user
        self.username_of: dict[str, str] = {}
        self.group_by_id: dict[str, Group] = {}
        self.top_groups: list[str] = []
        self.children: dict[str, list[str]] = {}
        self.parent: dict[str, str | None] = {}
        self.groups_of_user: dict[str, list[str]] = {}
        self.members: dict[str, list[str]] = {}
        self.realm_roles: list[dict[str, Any]] = []  # brief role reps sorted by name
        self.role_by_name: dict[str, dict[str, Any]] = {}
        self.roles_of_user: dict[str, list[str]] = {}  # kc user id -> role names (direct)
        self.role_members: dict[str, list[str]] = {}
        self.orgs: list[str] = []  # kc org ids sorted by name
        self.org_by_id: dict[str, Any] = {}
        self.org_members: dict[str, list[str]] = {}
        self.orgs_of_user: dict[str, list[str]] = {}


class FakeKeycloak(FakeServer):
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
        self._index = _Index()
        self._index_lock = threading.Lock()
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

    # ================================================================ public helpers
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

    def mint_access_token(self, roles: set[str] | frozenset[str] | None = None, ttl: int | None = None) -> str:
        return self._mint(self._expand(roles if roles is not None else self.service_account_roles), ttl)

    def revoke_tokens(self) -> None:
        self._tokens_not_before = time.time() + 0.001
        time.sleep(0.002)

    # ================================================================ index
    def _idx(self) -> _Index:
        t = self.tenant
        if self._index.version == t.structure_version:
            return self._index
        with self._index_lock, t.lock:
            if self._index.version == t.structure_version:
                return self._index
            idx = _Index()
            sa_name = f"service-account-{self.client_id}".lower()
            users = [(u.login.lower(), self.user_id(u.id), u) for u in t.users.values()]
            users.append((sa_name, self.service_account_id, None))
            users.sort(key=lambda x: x[0])
            idx.users = [(name, uid) for name, uid, _ in users]
            idx.user_by_id = {uid: u for _, uid, u in users}
            idx.username_of = {uid: name for name, uid, _ in users}
            uname = idx.username_of

            groups = {self.group_id(g.id): g for g in t.groups.values()}
            idx.group_by_id = groups
            for gid, g in groups.items():
                parent = self.group_id(g.parent_id) if g.parent_id and g.parent_id in t.groups else None
                idx.parent[gid] = parent
                if parent is None:
                    idx.top_groups.append(gid)
                else:
                    idx.children.setdefault(parent, []).append(gid)
            idx.top_groups.sort(key=lambda gid: groups[gid].name)
            for lst in idx.children.values():
                lst.sort(key=lambda gid: groups[gid].name)
            for gid, g in groups.items():
                members = sorted((self.user_id(uid) for uid in t.memberships.get(g.id, ())), key=uname.__getitem__)
                idx.members[gid] = members
                for m in members:
                    idx.groups_of_user.setdefault(m, []).append(gid)
            for lst in idx.groups_of_user.values():
                lst.sort(key=lambda gid: groups[gid].name)

            default_role = f"default-roles-{self.realm.lower()}"
            builtin = [
                (default_role, "${role_default-roles}", True),
                ("offline_access", "${role_offline-access}", False),
                ("uma_authorization", "${role_uma_authorization}", False),
            ]
            roles = [
                {"id": _kc_uuid("role", f"{self.realm}:{name}"), "name": name, "description": desc,
                 "composite": composite, "clientRole": False, "containerId": self.realm_id}
                for name, desc, composite in builtin
            ]
            for r in t.roles.values():
                roles.append({"id": self.kc_id("role", r.id), "name": r.name, "description": r.description,
                              "composite": False, "clientRole": False, "containerId": self.realm_id})
            roles.sort(key=lambda r: r["name"])
            idx.realm_roles = roles
            idx.role_by_name = {r["name"]: r for r in roles}
            role_name = {r.id: r.name for r in t.roles.values()}
            for _, uid, u in users:
                direct = [default_role]
                if u is not None:
                    direct += [role_name[rid] for rid in t.user_roles.get(u.id, ())]
                idx.roles_of_user[uid] = sorted(direct)
            for _, uid in idx.users:
                for rn in idx.roles_of_user[uid]:
                    idx.role_members.setdefault(rn, []).append(uid)

            orgs = {self.org_id(o.id): o for o in t.organizations.values()}
            idx.org_by_id = orgs
            idx.orgs = sorted(orgs, key=lambda oid: orgs[oid].display_name)
            for oid, o in orgs.items():
                members = sorted((self.user_id(m.user_id) for m in o.members if m.user_id in t.users),
                                 key=uname.__getitem__)
                idx.org_members[oid] = members
                for m in members:
                    idx.orgs_of_user.setdefault(m, []).append(oid)
            for lst in idx.orgs_of_user.values():
                lst.sort(key=lambda oid: orgs[oid].display_name)
            idx.version = t.structure_version
            self._index = idx
            return idx

    # ================================================================ representations
    def _access(self) -> dict[str, bool]:
        roles = self._expand(self.service_account_roles)
        manage = "manage-users" in roles
        return {"manageGroupMembership": manage, "view": True, "mapRoles": manage, "impersonate": False,
                "manage": manage}

    def _user_rep(self, uid: str, *, brief: bool, access: bool) -> dict[str, Any]:
        idx = self._idx()
        u = idx.user_by_id[uid]
        if u is None:
            t = self.tenant
            rep: dict[str, Any] = {"id": uid, "username": idx.username_of[uid], "emailVerified": False,
                                   "createdTimestamp": epoch_ms(t.now.replace(year=t.now.year - 2)), "enabled": True}
            if not brief:
                rep.update({"totp": False, "serviceAccountClientId": self.client_id,
                            "disableableCredentialTypes": [], "requiredActions": [], "notBefore": 0})
        else:
            rep = {"id": uid, "username": u.login.lower()}
            if u.first_name is not None:
                rep["firstName"] = u.first_name
            if u.last_name is not None:
                rep["lastName"] = u.last_name
            if u.email:
                rep["email"] = u.email.lower()
            rep["emailVerified"] = bool(u.email_verified)
            attributes = self._visible_attributes(u)
            if not brief and attributes:
                rep["attributes"] = attributes
            rep["createdTimestamp"] = epoch_ms(u.created)
            rep["enabled"] = u.status not in ("SUSPENDED", "DEPROVISIONED")
            if not brief:
                required: list[str] = []
                if u.status == "STAGED":
                    required = ["VERIFY_EMAIL", "UPDATE_PASSWORD"]
                elif u.status in ("PROVISIONED", "PASSWORD_EXPIRED", "RECOVERY"):
                    required = ["UPDATE_PASSWORD"]
                elif u.email and not u.email_verified:
                    required = ["VERIFY_EMAIL"]
                rep.update({"totp": False, "disableableCredentialTypes": [], "requiredActions": required,
                            "notBefore": 0})
        if access:
            rep["access"] = self._access()
        return rep

    def _visible_attributes(self, u: User) -> dict[str, list[str]]:
        """A user's custom attributes as `{name: [string, ...]}`, those the user profile hides left out."""
        declared = self.user_profile_attributes
        return {k: [_attr_text(x) for x in v] if isinstance(v, list) else [_attr_text(v)]
                for k, v in u.custom.items() if declared is None or k in declared}

    def _path(self, gid: str) -> str:
        idx = self._idx()
        parts = []
        cur: str | None = gid
        while cur is not None:
            parts.append(idx.group_by_id[cur].name.replace("/", "~/"))
            cur = idx.parent.get(cur)
        return "/" + "/".join(reversed(parts))

    def _group_rep(self, gid: str, *, brief: bool, sub_groups: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        idx = self._idx()
        g = idx.group_by_id[gid]
        rep: dict[str, Any] = {"id": gid, "name": g.name}
        if g.description:
            rep["description"] = g.description
        rep["path"] = self._path(gid)
        parent = idx.parent.get(gid)
        if parent is not None:
            rep["parentId"] = parent
        rep["subGroupCount"] = len(idx.children.get(gid, ()))
        rep["subGroups"] = sub_groups or []
        if not brief:
            rep.update({"attributes": {}, "realmRoles": [], "clientRoles": {},
                        "access": {"view": True, "viewMembers": True, "manageMembers": False, "manage": False,
                                   "manageMembership": False}})
        return rep

    def _org_rep(self, oid: str, *, brief: bool) -> dict[str, Any]:
        o = self._idx().org_by_id[oid]
        rep: dict[str, Any] = {"id": oid, "name": o.display_name, "alias": o.name, "enabled": True,
                               "description": f"{o.display_name} ({o.external_id})",
                               "domains": [{"name": f"{o.name}.example.org", "verified": False}]}
        if not brief:
            rep["attributes"] = {"externalId": [o.external_id]}
        return rep

    # ================================================================ errors, auth
    def _err(self, status: int, error: str, description: str | None = None) -> Response:
        body: dict[str, Any] = {"error": error}
        if description:
            body["error_description"] = description
        return Response.json(status, body)

    def _fault_response(self, req: Request, rule: FaultRule) -> Response:
        if rule.kind == "5xx" and rule.status == 500:
            return self._internal_error(req)
        resp = proxy_error_page(429 if rule.kind == "429" else (rule.status or 503))
        if self.proxy_retry_after is not None:
            resp.headers.append(("Retry-After", str(self.proxy_retry_after)))
        return resp

    def _not_found(self, req: Request) -> Response:
        return self._err(404, "Unable to find matching target resource method",
                         "For more on this error consult the server log.")

    def _method_not_allowed(self, req: Request) -> Response:
        return self._err(405, "HTTP 405 Method Not Allowed")

    def _internal_error(self, req: Request) -> Response:
        return self._err(500, "unknown_error", "For more on this error consult the server log.")

    def _expand(self, roles: set[str] | frozenset[str]) -> list[str]:
        out = set(roles)
        for r in roles:
            out |= _COMPOSITES.get(r, set())
        return sorted(out)

    def _before(self, req: Request, route) -> Response | None:
        if req.params.get("realm") != self.realm:
            if not route.auth:
                return self._err(404, "Realm does not exist")
        if not route.auth:
            return None
        auth = req.header("authorization") or ""
        scheme, _, token = auth.partition(" ")
        claims = self.signer.verify(token.strip()) if scheme.lower() == "bearer" else None
        if (claims is None or claims.get("exp", 0) <= time.time() or claims.get("iat", 0) < self._tokens_not_before
                or claims.get("iss") != self.issuer):
            resp = self._err(401, "HTTP 401 Unauthorized")
            resp.headers.append(("WWW-Authenticate", "Bearer"))
            return resp
        if req.params.get("realm") != self.realm:
            return self._err(404, "Realm not found.")
        roles = set(((claims.get("resource_access") or {}).get("realm-management") or {}).get("roles") or ())
        for group in route.need:
            if not roles.intersection(group):
                return self._err(403, "HTTP 403 Forbidden")
        req.principal = claims
        return None

    def _mint(self, roles: list[str], ttl: int | None = None) -> str:
        now = time.time()
        self.issued_tokens += 1
        return self.signer.mint({
            "exp": round(now + (self.token_ttl if ttl is None else ttl), 3),
            "iat": now,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": ["realm-management", "account"],
            "sub": self.service_account_id,
            "typ": "Bearer",
            "azp": self.client_id,
            "acr": "1",
            "realm_access": {"roles": [f"default-roles-{self.realm.lower()}", "offline_access", "uma_authorization"]},
            "resource_access": {"realm-management": {"roles": roles},
                                "account": {"roles": ["manage-account", "manage-account-links", "view-profile"]}},
            "scope": "profile email",
            "clientHost": "127.0.0.1",
            "preferred_username": f"service-account-{self.client_id}".lower(),
            "client_id": self.client_id,
        })

    def _token(self, req: Request) -> Response:
        form = req.form()
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = req.header("authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip()).decode("utf-8")
                b_id, _, b_secret = decoded.partition(":")
                cid, secret = unquote(b_id), unquote(b_secret)
            except (ValueError, UnicodeDecodeError):
                return self._err(400, "invalid_request", "Invalid Authorization header")
        grant = form.get("grant_type")
        if not grant:
            return self._err(400, "invalid_request", "Missing form parameter: grant_type")
        if not cid:
            return self._err(401, "invalid_client", "Missing client_id parameter")
        if cid != self.client_id:
            return self._err(401, "invalid_client", "Invalid client or Invalid client credentials")
        if not secret or not secrets.compare_digest(secret, self.client_secret):
            return self._err(401, "unauthorized_client", "Invalid client or Invalid client credentials")
        if grant != "client_credentials":
            return self._err(400, "unsupported_grant_type", "Unsupported grant_type")
        token = self._mint(self._expand(self.service_account_roles))
        return Response.json(200, {"access_token": token, "expires_in": self.token_ttl, "refresh_expires_in": 0,
                                   "token_type": "Bearer", "not-before-policy": 0, "scope": "profile email"},
                             [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    # ================================================================ paging helpers
    def _first_max(self, req: Request, default_first: int | None, default_max: int | None) -> tuple[int, int | None]:
        try:
            first = self.int_param(req, "first", default_first)
            mx = self.int_param(req, "max", default_max)
        except ValueError as exc:
            raise _ParamError() from exc
        if first is None or first < 0:
            first = 0
        if mx is not None and mx < 0:
            mx = None
        if self.faults.take_repeat_cursor(req.path):
            first = 0
        return first, mx

    @staticmethod
    def _slice(items: list[Any], first: int, mx: int | None) -> list[Any]:
        return items[first:] if mx is None else items[first:first + mx]

    def _bad_param(self) -> Response:
        return self._err(404, "HTTP 404 Not Found")

    def _user_profile(self, req: Request) -> Response:
        """The realm's user profile configuration (UPConfig, Keycloak 24+): the root attributes,
        the declared custom ones (`user_profile_attributes`) and, when that is None, unmanaged
        attributes enabled."""
        def attribute(name: str) -> dict[str, Any]:
            return {"name": name, "displayName": "${" + name + "}", "validations": {},
                    "permissions": {"view": ["admin", "user"], "edit": ["admin", "user"]}, "multivalued": False}

        declared = sorted(self.user_profile_attributes or ())
        config: dict[str, Any] = {
            "attributes": [attribute(n) for n in ("username", "email", "firstName", "lastName", *declared)],
            "groups": [{"name": "user-metadata", "displayHeader": "User metadata",
                        "displayDescription": "Attributes, which refer to user metadata"}],
        }
        if self.user_profile_attributes is None:
            config["unmanagedAttributePolicy"] = "ENABLED"
        return Response.json(200, config)

    def _get_user_or_404(self, req: Request) -> str | Response:
        uid = req.params["uid"]
        if uid not in self._idx().user_by_id:
            return self._err(404, "User not found")
        return uid

    # ================================================================ users
    @staticmethod
    def _search_match(term: str, values: list[str]) -> bool:
        term = term.lower()
        if len(term) >= 2 and term.startswith('"') and term.endswith('"'):
            return any(v == term[1:-1] for v in values)
        if term.startswith("*") and term.endswith("*") and len(term) >= 2:
            return any(term.strip("*") in v for v in values)
        return any(v.startswith(term.rstrip("*")) for v in values)

    def _filtered_users(self, req: Request) -> list[str]:
        idx = self._idx()
        q = req.query
        search = q.get("search")
        exact = _bool_param(req, "exact", False)
        field_filters = {k: q[k].lower() for k in ("username", "email", "firstName", "lastName") if q.get(k)}
        enabled = q.get("enabled")
        email_verified = q.get("emailVerified")
        attr_q = q.get("q")
        attrs: dict[str, str] = {}
        if attr_q:
            for part in attr_q.split():
                k, _, v = part.partition(":")
                attrs[k] = v
        if not (search or field_filters or enabled or email_verified or attrs):
            return [uid for _, uid in idx.users]
        out = []
        for _, uid in idx.users:
            rep = self._user_rep(uid, brief=False, access=False)
            values = [str(rep.get(k, "")).lower() for k in ("username", "email", "firstName", "lastName")]
            if search and search != "*" and not all(self._search_match(tok, values) for tok in search.split()):
                continue
            ok = True
            for k, v in field_filters.items():
                actual = str(rep.get(k, "")).lower()
                if (exact and actual != v) or (not exact and v not in actual):
                    ok = False
                    break
            if not ok:
                continue
            if enabled is not None and str(rep["enabled"]).lower() != enabled.lower():
                continue
            if email_verified is not None and str(rep["emailVerified"]).lower() != email_verified.lower():
                continue
            if attrs and not all(v in (rep.get("attributes") or {}).get(k, []) for k, v in attrs.items()):
                continue
            out.append(uid)
        return out

    def _users(self, req: Request) -> Response:
        try:
            first, mx = self._first_max(req, 0, 100)
        except _ParamError:
            return self._bad_param()
        brief = _bool_param(req, "briefRepresentation", False)
        uids = self._slice(self._filtered_users(req), first, mx)
        return Response.raw_json(200, dumps([self._user_rep(uid, brief=brief, access=True) for uid in uids]))

    def _users_count(self, req: Request) -> Response:
        return Response.json(200, len(self._filtered_users(req)))

    def _user(self, req: Request) -> Response:
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        return Response.json(200, self._user_rep(uid, brief=False, access=True))

    def _update_user(self, req: Request) -> Response:
        """`PUT /users/{id}` replaces the user (Keycloak 24.0.4+): `firstName`, `lastName`, `email`
        and every attribute the body omits are removed; `enabled` and `emailVerified` change only
        when given; the username cannot change. Attributes the user profile does not declare
        (`user_profile_attributes`) are dropped in silence and stored ones stay as they were.
        Answers 204."""
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        try:
            body = req.json()
        except ValueError:
            return self._err(400, "unknown_error")
        attrs = body.get("attributes") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not (attrs is None or isinstance(attrs, dict) and all(
                isinstance(v, list) and all(isinstance(x, str) for x in v) for v in attrs.values())):
            return self._err(400, "unknown_error")
        u = self._idx().user_by_id[uid]
        if u is None:  # the service-account user: nothing of it is stored here
            return Response(204)
        username = body.get("username")
        if username is not None and str(username).lower() != u.login.lower():
            return Response.json(400, {"field": "username", "errorMessage": "error-user-attribute-read-only",
                                       "params": ["username"]})
        email = body.get("email")
        changes: dict[str, Any] = {"first_name": body.get("firstName"), "last_name": body.get("lastName"),
                                   "email": email.lower() if isinstance(email, str) and email else None}
        if isinstance(body.get("emailVerified"), bool):
            changes["email_verified"] = body["emailVerified"]
        enabled = u.status not in ("SUSPENDED", "DEPROVISIONED")
        if isinstance(body.get("enabled"), bool) and body["enabled"] != enabled:
            changes["status"] = "ACTIVE" if body["enabled"] else "SUSPENDED"
        declared = self.user_profile_attributes
        custom = {} if declared is None else {k: v for k, v in u.custom.items() if k not in declared}
        for name, values in (attrs or {}).items():
            if values and (declared is None or name in declared):
                custom[name] = values[0] if len(values) == 1 else list(values)
        changes["custom"] = custom
        self.tenant.touch_user(u.id, **changes)
        return Response(204)

    def _user_group_ids(self, req: Request, uid: str) -> list[str]:
        gids = self._idx().groups_of_user.get(uid, [])
        search = req.query.get("search")
        if search:
            gids = [g for g in gids if search.lower() in self._idx().group_by_id[g].name.lower()]
        return gids

    def _user_groups(self, req: Request) -> Response:
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        try:
            first, mx = self._first_max(req, 0, None)
        except _ParamError:
            return self._bad_param()
        brief = _bool_param(req, "briefRepresentation", True)
        gids = self._slice(self._user_group_ids(req, uid), first, mx)
        return Response.json(200, [self._group_rep(g, brief=brief) for g in gids])

    def _user_groups_count(self, req: Request) -> Response:
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        return Response.json(200, {"count": len(self._user_group_ids(req, uid))})

    def _role_brief(self, name: str) -> dict[str, Any]:
        return dict(self._idx().role_by_name[name])

    def _role_mappings(self, req: Request) -> Response:
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        idx = self._idx()
        body: dict[str, Any] = {"realmMappings": [self._role_brief(n) for n in idx.roles_of_user.get(uid, [])]}
        if uid == self.service_account_id:
            body["clientMappings"] = {"realm-management": {
                "id": self.realm_management_id, "client": "realm-management",
                "mappings": [{"id": _kc_uuid("client-role", f"{self.realm}:{r}"), "name": r,
                              "description": f"${{role_{r}}}", "composite": r in _COMPOSITES, "clientRole": True,
                              "containerId": self.realm_management_id} for r in sorted(self.service_account_roles)],
            }}
        return Response.json(200, body)

    def _realm_mappings(self, req: Request) -> Response:
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        return Response.json(200, [self._role_brief(n) for n in self._idx().roles_of_user.get(uid, [])])

    def _realm_composite(self, req: Request) -> Response:
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        names = set(self._idx().roles_of_user.get(uid, []))
        if f"default-roles-{self.realm.lower()}" in names:
            names |= {"offline_access", "uma_authorization"}
        return Response.json(200, [self._role_brief(n) for n in sorted(names)])

    def _brute_force(self, req: Request) -> Response:
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        u = self._idx().user_by_id[uid]
        if u is not None and u.status == "LOCKED_OUT":
            return Response.json(200, {"numFailures": 5, "disabled": True, "lastIPFailure": "203.0.113.7",
                                       "lastFailure": epoch_ms(u.last_updated)})
        return Response.json(200, {"numFailures": 0, "disabled": False, "lastIPFailure": "n/a", "lastFailure": 0})

    # ================================================================ groups
    def _get_group_or_404(self, req: Request) -> str | Response:
        gid = req.params["gid"]
        if gid not in self._idx().group_by_id:
            return self._err(404, "Could not find group by id")
        return gid

    def _search_tree(self, gid: str, needle: str, exact: bool, brief: bool) -> dict[str, Any] | None:
        idx = self._idx()
        name = idx.group_by_id[gid].name.lower()
        hit = name == needle if exact else needle in name
        subs = [s for c in idx.children.get(gid, []) if (s := self._search_tree(c, needle, exact, brief)) is not None]
        if hit or subs:
            return self._group_rep(gid, brief=brief, sub_groups=subs)
        return None

    def _groups(self, req: Request) -> Response:
        try:
            first, mx = self._first_max(req, 0, None)
        except _ParamError:
            return self._bad_param()
        brief = _bool_param(req, "briefRepresentation", True)
        idx = self._idx()
        search = req.query.get("search")
        if search:
            exact = _bool_param(req, "exact", False)
            reps = [r for g in idx.top_groups if (r := self._search_tree(g, search.lower(), exact, brief)) is not None]
            return Response.json(200, self._slice(reps, first, mx))
        gids = self._slice(idx.top_groups, first, mx)
        return Response.json(200, [self._group_rep(g, brief=brief) for g in gids])

    def _groups_count(self, req: Request) -> Response:
        idx = self._idx()
        top = _bool_param(req, "top", False)
        search = (req.query.get("search") or "").lower()
        gids = idx.top_groups if top else list(idx.group_by_id)
        if search:
            gids = [g for g in gids if search in idx.group_by_id[g].name.lower()]
        return Response.json(200, {"count": len(gids)})

    def _group(self, req: Request) -> Response:
        gid = self._get_group_or_404(req)
        if isinstance(gid, Response):
            return gid
        return Response.json(200, self._group_rep(gid, brief=False))

    def _children(self, req: Request) -> Response:
        gid = self._get_group_or_404(req)
        if isinstance(gid, Response):
            return gid
        try:
            first, mx = self._first_max(req, 0, 10)
        except _ParamError:
            return self._bad_param()
        brief = _bool_param(req, "briefRepresentation", False)
        kids = self._slice(self._idx().children.get(gid, []), first, mx)
        return Response.json(200, [self._group_rep(k, brief=brief) for k in kids])

    def _members(self, req: Request) -> Response:
        gid = self._get_group_or_404(req)
        if isinstance(gid, Response):
            return gid
        try:
            first, mx = self._first_max(req, 0, 100)
        except _ParamError:
            return self._bad_param()
        brief = _bool_param(req, "briefRepresentation", False)
        uids = self._slice(self._idx().members.get(gid, []), first, mx)
        return Response.raw_json(200, dumps([self._user_rep(u, brief=brief, access=False) for u in uids]))

    # ================================================================ roles
    def _roles(self, req: Request) -> Response:
        try:
            first, mx = self._first_max(req, 0, None)
        except _ParamError:
            return self._bad_param()
        brief = _bool_param(req, "briefRepresentation", True)
        roles = self._idx().realm_roles
        search = (req.query.get("search") or "").lower()
        if search:
            roles = [r for r in roles if search in r["name"].lower()]
        reps = []
        for r in self._slice(roles, first, mx):
            rep = dict(r)
            if not brief:
                rep["attributes"] = {}
            reps.append(rep)
        return Response.json(200, reps)

    def _role(self, req: Request) -> Response:
        name = req.params["role"]
        idx = self._idx()
        if name not in idx.role_by_name:
            return self._err(404, "Could not find role")
        return Response.json(200, {**idx.role_by_name[name], "attributes": {}})

    def _role_users(self, req: Request) -> Response:
        name = req.params["role"]
        idx = self._idx()
        if name not in idx.role_by_name:
            return self._err(404, "Could not find role")
        try:
            first, mx = self._first_max(req, 0, 100)
        except _ParamError:
            return self._bad_param()
        brief = _bool_param(req, "briefRepresentation", True)
        uids = self._slice(idx.role_members.get(name, []), first, mx)
        return Response.raw_json(200, dumps([self._user_rep(u, brief=brief, access=False) for u in uids]))

    # ================================================================ organizations
    def _orgs_guard(self) -> Response | None:
        if not self.organizations_enabled:
            return Response.json(404, {"errorMessage": "Organizations not enabled for this realm."})
        return None

    def _get_org_or_404(self, req: Request) -> str | Response:
        stop = self._orgs_guard()
        if stop is not None:
            return stop
        oid = req.params["oid"]
        if oid not in self._idx().org_by_id:
            return Response.json(404, {"errorMessage": "Organization not found."})
        return oid

    def _filtered_orgs(self, req: Request) -> list[str]:
        idx = self._idx()
        search = (req.query.get("search") or "").lower()
        exact = _bool_param(req, "exact", False)
        out = []
        for oid in idx.orgs:
            o = idx.org_by_id[oid]
            names = [o.display_name.lower(), f"{o.name}.example.org"]
            if search and not any((n == search) if exact else (search in n) for n in names):
                continue
            out.append(oid)
        q = req.query.get("q")
        if q:
            wanted = dict(part.partition(":")[::2] for part in q.split())
            out = [oid for oid in out
                   if all(v in self._org_rep(oid, brief=False)["attributes"].get(k, []) for k, v in wanted.items())]
        return out

    def _orgs(self, req: Request) -> Response:
        stop = self._orgs_guard()
        if stop is not None:
            return stop
        try:
            first, mx = self._first_max(req, 0, 10)
        except _ParamError:
            return self._bad_param()
        brief = _bool_param(req, "briefRepresentation", True)
        oids = self._slice(self._filtered_orgs(req), first, mx)
        return Response.json(200, [self._org_rep(o, brief=brief) for o in oids])

    def _orgs_count(self, req: Request) -> Response:
        stop = self._orgs_guard()
        if stop is not None:
            return stop
        return Response.json(200, len(self._filtered_orgs(req)))

    def _org(self, req: Request) -> Response:
        oid = self._get_org_or_404(req)
        if isinstance(oid, Response):
            return oid
        return Response.json(200, self._org_rep(oid, brief=False))

    def _org_members(self, req: Request) -> Response:
        oid = self._get_org_or_404(req)
        if isinstance(oid, Response):
            return oid
        try:
            first, mx = self._first_max(req, 0, 10)
        except _ParamError:
            return self._bad_param()
        mtype = req.query.get("membershipType")
        if mtype is not None and mtype.upper() not in ("MANAGED", "UNMANAGED"):
            return self._err(400, "invalid_request", f"No enum constant MembershipType.{mtype.upper()}")
        uids = self._idx().org_members.get(oid, [])
        if mtype is not None and mtype.upper() == "MANAGED":
            uids = []
        search = req.query.get("search")
        if search:
            uids = [u for u in uids
                    if self._search_match(search, [str(self._user_rep(u, brief=True, access=False).get(k, "")).lower()
                                                   for k in ("username", "email", "firstName", "lastName")])]
        reps = []
        for uid in self._slice(uids, first, mx):
            rep = self._user_rep(uid, brief=False, access=False)
            rep["membershipType"] = "UNMANAGED"
            reps.append(rep)
        return Response.raw_json(200, dumps(reps))

    def _org_members_count(self, req: Request) -> Response:
        oid = self._get_org_or_404(req)
        if isinstance(oid, Response):
            return oid
        return Response.json(200, len(self._idx().org_members.get(oid, [])))

    def _user_orgs(self, req: Request) -> Response:
        stop = self._orgs_guard()
        if stop is not None:
            return stop
        uid = self._get_user_or_404(req)
        if isinstance(uid, Response):
            return uid
        brief = _bool_param(req, "briefRepresentation", True)
        return Response.json(200, [self._org_rep(o, brief=brief) for o in self._idx().orgs_of_user.get(uid, [])])
