"""A fake Okta org: Users, Groups and Schemas management API plus the org authorization server's
client-credentials token endpoint, following Okta's contracts (see README.md beside this file).
"""

from __future__ import annotations

import bisect
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from .base import (
    FakeServer,
    FaultRule,
    FixedWindowLimiter,
    JwtSigner,
    RateState,
    Request,
    Response,
    b64url,
    decode_cursor,
    derived_id,
    dumps,
    encode_cursor,
    iso,
    parse_iso,
    proxy_error_page,
    split_jwt,
    verify_rsa_jwt,
)
from .tenant import Group, Tenant, User

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE_USERS = "okta.users.read"
SCOPE_GROUPS = "okta.groups.read"
SCOPE_SCHEMAS = "okta.schemas.read"
SCOPE_USERS_MANAGE = "okta.users.manage"
SCOPE_SCHEMAS_MANAGE = "okta.schemas.manage"
DEFAULT_SCOPES = frozenset({SCOPE_USERS, SCOPE_GROUPS, SCOPE_SCHEMAS})
KNOWN_SCOPES = frozenset(DEFAULT_SCOPES | {"okta.users.manage", "okta.groups.manage", "okta.schemas.manage",
                                           "okta.apps.read", "okta.logs.read", "okta.roles.read"})

_SEARCH_OPS = {"eq", "ne", "sw", "co", "ew", "gt", "ge", "lt", "le", "pr"}
_FILTER_ATTRS_USERS = {"status", "lastupdated", "id", "profile.login", "profile.email", "profile.firstname",
                       "profile.lastname", "type.id"}
_FILTER_ATTRS_GROUPS = {"id", "type", "lastupdated", "lastmembershipupdated"}
_DATE_ATTRS = {"created", "lastupdated", "lastmembershipupdated", "activated", "statuschanged", "lastlogin",
               "passwordchanged"}


class FilterError(ValueError):
    pass


# --------------------------------------------------------------------------- filter / search expressions

_TOKEN_RE = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_.$:\-]+))')


def _tokenize(text: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"unexpected input at {pos}")
        if m.group(1):
            out.append(("(", "("))
        elif m.group(2):
            out.append((")", ")"))
        elif m.group(3) is not None:
            out.append(("str", re.sub(r"\\(.)", r"\1", m.group(3))))
        else:
            out.append(("word", m.group(4)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


Predicate = Callable[[Callable[[str], Any]], bool]


def parse_expression(text: str, *, allowed_attrs: set[str] | None, ops: set[str]) -> Predicate:
    """Parse Okta's `filter`/`search` syntax: `attr op "value"` (or `attr pr`), combined with
    `and`/`or` (and binds tighter) and parentheses. The predicate takes a getter attr -> value."""
    tokens = _tokenize(text)
    if not tokens:
        raise FilterError("empty expression")
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise FilterError("unexpected end")
        tok = tokens[pos]
        pos += 1
        return tok

    def parse_or() -> Predicate:
        left = parse_and()
        while (tok := peek()) and tok[0] == "word" and tok[1].lower() == "or":
            take()
            right = parse_and()
            left = (lambda a, b: lambda g: a(g) or b(g))(left, right)
        return left

    def parse_and() -> Predicate:
        left = parse_term()
        while (tok := peek()) and tok[0] == "word" and tok[1].lower() == "and":
            take()
            right = parse_term()
            left = (lambda a, b: lambda g: a(g) and b(g))(left, right)
        return left

    def parse_term() -> Predicate:
        tok = take()
        if tok[0] == "(":
            inner = parse_or()
            if take()[0] != ")":
                raise FilterError("missing )")
            return inner
        if tok[0] != "word":
            raise FilterError("attribute expected")
        attr = tok[1].lower()
        if allowed_attrs is not None and attr not in allowed_attrs:
            raise FilterError(f"unsupported attribute {tok[1]}")
        op_tok = take()
        op = op_tok[1].lower()
        if op_tok[0] != "word" or op not in ops:
            raise FilterError(f"unsupported operator {op_tok[1]}")
        if op == "pr":
            return lambda g: g(attr) not in (None, "")
        val_tok = take()
        if val_tok[0] == "str":
            raw: Any = val_tok[1]
        elif val_tok[1].lower() in ("true", "false"):
            raw = val_tok[1].lower() == "true"
        elif re.fullmatch(r"-?\d+(\.\d+)?", val_tok[1]):
            raw = float(val_tok[1])
        else:
            raise FilterError("value expected")
        if attr in _DATE_ATTRS:
            if not isinstance(raw, str) or (dt := parse_iso(raw)) is None:
                raise FilterError("dates must be quoted ISO-8601 timestamps")
            value: Any = dt
        else:
            value = raw.lower() if isinstance(raw, str) else raw
        if op in ("gt", "ge", "lt", "le") and attr not in _DATE_ATTRS and not isinstance(value, float):
            if allowed_attrs is not None:  # filter: ranges only on dates
                raise FilterError(f"operator {op} is not supported for {attr}")
        return _compare(attr, op, value)

    pred = parse_or()
    if pos != len(tokens):
        raise FilterError("trailing input")
    return pred


def _compare(attr: str, op: str, value: Any) -> Predicate:
    def norm(v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    def pred(get: Callable[[str], Any]) -> bool:
        actual = norm(get(attr))
        if op == "eq":
            return actual == value
        if op == "ne":
            return actual != value
        if actual is None:
            return False
        try:
            if op == "sw":
                return isinstance(actual, str) and actual.startswith(value)
            if op == "co":
                return isinstance(actual, str) and value in actual
            if op == "ew":
                return isinstance(actual, str) and actual.endswith(value)
            if op == "gt":
                return actual > value
            if op == "ge":
                return actual >= value
            if op == "lt":
                return actual < value
            if op == "le":
                return actual <= value
        except TypeError:
            return False
        return False

    return pred


# --------------------------------------------------------------------------- profile updates

REQUIRED_PROFILE = ("login", "email", "firstName", "lastName")
OPTIONAL_PROFILE = ("mobilePhone", "secondEmail")
_SCHEMA_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "boolean": (bool,), "integer": (int,),
                                              "number": (int, float), "array": (list,)}


def _json_type_ok(value: Any, schema_type: str) -> bool:
    if isinstance(value, bool) and schema_type != "boolean":
        return False
    return isinstance(value, _SCHEMA_TYPES.get(schema_type, (object,)))


# --------------------------------------------------------------------------- the fake


class _Index:
    """Okta ids and sort orders for one `structure_version` of the tenant."""

    def __init__(self) -> None:
        self.version = -1
        self.user_ids: list[str] = []  # sorted Okta user ids
        self.user_by_oid: dict[str, User] = {}
        self.oid_by_login: dict[str, str] = {}
        self.group_ids: list[str] = []  # sorted Okta group ids (Everyone included)
        self.group_by_oid: dict[str, Group | None] = {}  # None: the Everyone group
        self.members_sorted: dict[str, list[str]] = {}
        self.groups_of_user: dict[str, list[str]] = {}
        self.everyone_membership_updated: datetime | None = None


class FakeOkta(FakeServer):
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
        self._index = _Index()
        self._index_lock = threading.Lock()
        self._oid_user: dict[str, str] = {}  # neutral id -> Okta id (memo across rebuilds)
        self._oid_group: dict[str, str] = {}
        self._user_json: dict[str, tuple[int, bytes]] = {}
        self._group_json: dict[str, tuple[int, int, bytes]] = {}
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

    # ================================================================ public helpers
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

    def mint_access_token(self, scopes: set[str] | frozenset[str] | None = None, ttl: int | None = None) -> str:
        """An access token as the token endpoint would issue it (no client assertion needed)."""
        return self._mint(sorted(scopes if scopes is not None else self.oauth_scopes), ttl)

    def revoke_tokens(self) -> None:
        """Every access token issued so far becomes invalid (401), as after a key rotation."""
        self._tokens_not_before = time.time() + 0.001
        time.sleep(0.002)

    def exhaust_rate_limit(self, bucket: str = "users") -> RateState:
        """Use up the rest of a bucket's window, as another client of the org would."""
        return self.limiters[bucket].exhaust()

    # ================================================================ index and rendering
    def _on_start(self) -> None:
        self._user_json.clear()
        self._group_json.clear()
        self._idx()  # ids and sort orders ready before the first request

    def _idx(self) -> _Index:
        t = self.tenant
        if self._index.version == t.structure_version:
            return self._index
        with self._index_lock, t.lock:
            if self._index.version == t.structure_version:
                return self._index
            idx = _Index()
            pairs = [(self.okta_user_id(uid), u) for uid, u in t.users.items()]
            pairs.sort(key=lambda p: p[0])
            idx.user_ids = [p[0] for p in pairs]
            idx.user_by_oid = dict(pairs)
            idx.oid_by_login = {u.login.lower(): oid for oid, u in pairs}
            groups: list[tuple[str, Group | None]] = [(self.okta_group_id(gid), g) for gid, g in t.groups.items()]
            if self.include_everyone_group:
                groups.append((self.everyone_group_id, None))
                idx.everyone_membership_updated = max((u.created for u in t.users.values()), default=t.now)
            groups.sort(key=lambda p: p[0])
            idx.group_ids = [p[0] for p in groups]
            idx.group_by_oid = dict(groups)
            oid_of = self._oid_user
            gou: dict[str, list[str]] = {}
            for goid, g in groups:
                member_ids = t.users.keys() if g is None else t.memberships.get(g.id, ())
                for uid in member_ids:
                    oid = oid_of[uid]
                    lst = gou.get(oid)
                    if lst is None:
                        gou[oid] = [goid]
                    else:
                        lst.append(goid)
            idx.groups_of_user = gou
            idx.version = t.structure_version
            self._index = idx
            return idx

    def _members(self, goid: str) -> list[str]:
        idx = self._idx()
        cached = idx.members_sorted.get(goid)
        if cached is not None:
            return cached
        g = idx.group_by_oid[goid]
        if g is None:
            members = list(idx.user_ids)
        else:
            oid_of = self._oid_user
            members = sorted(oid_of.get(uid) or self.okta_user_id(uid) for uid in self.tenant.memberships.get(g.id, ()))
        idx.members_sorted[goid] = members
        return members

    def _user_fields(self, u: User) -> dict[str, Any]:
        pending = u.status in ("STAGED", "PROVISIONED")
        activated = None if u.status == "STAGED" else u.created
        status_changed = None if u.status == "ACTIVE" and u.last_updated == u.created else u.last_updated
        return {
            "activated": None if pending and u.status == "STAGED" else activated,
            "statusChanged": status_changed,
            "lastLogin": u.last_login,
            "passwordChanged": None if pending else activated,
        }

    def _render_user(self, oid: str, u: User) -> bytes:
        cached = self._user_json.get(oid)
        if cached is not None and cached[0] == u.version:
            return cached[1]
        f = self._user_fields(u)
        profile: dict[str, Any] = {
            "firstName": u.first_name,
            "lastName": u.last_name,
            "mobilePhone": None,
            "secondEmail": None,
            "login": u.login,
            "email": u.email,
        }
        profile.update(u.custom)
        credentials: dict[str, Any] = {}
        if u.status not in ("STAGED", "PROVISIONED"):
            credentials["password"] = {}
        if u.email:
            credentials["emails"] = [{"value": u.email, "status": "VERIFIED" if u.email_verified else "UNVERIFIED",
                                      "type": "PRIMARY"}]
        credentials["provider"] = {"type": "OKTA", "name": "OKTA"}
        doc = {
            "id": oid,
            "status": u.status,
            "created": iso(u.created),
            "activated": iso(f["activated"]),
            "statusChanged": iso(f["statusChanged"]),
            "lastLogin": iso(f["lastLogin"]),
            "lastUpdated": iso(u.last_updated),
            "passwordChanged": iso(f["passwordChanged"]),
            "type": {"id": self.user_type_id},
            "profile": profile,
            "credentials": credentials,
            "_links": {"self": {"href": f"{self.base_url}/api/v1/users/{oid}"}},
        }
        body = dumps(doc)
        self._user_json[oid] = (u.version, body)
        return body

    def _group_view(self, goid: str, g: Group | None, idx: _Index) -> dict[str, Any]:
        t = self.tenant
        if g is None:
            created = t.now.replace(year=t.now.year - 3)
            return {"id": goid, "created": created, "lastUpdated": created,
                    "lastMembershipUpdated": idx.everyone_membership_updated or created,
                    "type": "BUILT_IN", "name": "Everyone", "description": "All users in your organization"}
        return {"id": goid, "created": g.created, "lastUpdated": g.last_updated,
                "lastMembershipUpdated": g.last_membership_updated, "type": "OKTA_GROUP",
                "name": g.name, "description": g.description}

    def _render_group(self, goid: str, g: Group | None, idx: _Index, stats: bool = False) -> bytes:
        version = g.version if g is not None else idx.version
        cached = self._group_json.get(goid)
        if not stats and cached is not None and cached[:2] == (version, idx.version):
            return cached[2]
        v = self._group_view(goid, g, idx)
        doc: dict[str, Any] = {
            "id": goid,
            "created": iso(v["created"]),
            "lastUpdated": iso(v["lastUpdated"]),
            "lastMembershipUpdated": iso(v["lastMembershipUpdated"]),
            "objectClass": ["okta:user_group"],
            "type": v["type"],
            "profile": {"name": v["name"], "description": v["description"]},
            "_links": {
                "logo": [
                    {"name": "medium", "href": "https://op1static.oktacdn.com/assets/img/logos/groups/okta-medium.png",
                     "type": "image/png"},
                    {"name": "large", "href": "https://op1static.oktacdn.com/assets/img/logos/groups/okta-large.png",
                     "type": "image/png"},
                ],
                "users": {"href": f"{self.base_url}/api/v1/groups/{goid}/users"},
                "apps": {"href": f"{self.base_url}/api/v1/groups/{goid}/apps"},
            },
        }
        if stats:
            doc["_embedded"] = {"stats": {"usersCount": len(self._members(goid)), "appsCount": 0,
                                          "groupPushMappingsCount": 0, "hasAdminPrivilege": False}}
            return dumps(doc)
        body = dumps(doc)
        self._group_json[goid] = (version, idx.version, body)
        return body

    def _user_getter(self, oid: str, u: User) -> Callable[[str], Any]:
        def get(attr: str) -> Any:
            if attr == "id":
                return oid
            if attr == "status":
                return u.status
            if attr == "lastupdated":
                return u.last_updated
            if attr == "created":
                return u.created
            if attr == "type.id":
                return self.user_type_id
            if attr in ("activated", "statuschanged", "lastlogin", "passwordchanged"):
                key = {"activated": "activated", "statuschanged": "statusChanged", "lastlogin": "lastLogin",
                       "passwordchanged": "passwordChanged"}[attr]
                return self._user_fields(u)[key]
            if attr.startswith("profile."):
                name = attr[8:]
                base = {"login": u.login, "email": u.email, "firstname": u.first_name, "lastname": u.last_name}
                if name in base:
                    return base[name]
                for k, v in u.custom.items():
                    if k.lower() == name:
                        return v
                return None
            return None

        return get

    def _group_getter(self, v: dict[str, Any]) -> Callable[[str], Any]:
        def get(attr: str) -> Any:
            return {
                "id": v["id"], "type": v["type"], "created": v["created"], "lastupdated": v["lastUpdated"],
                "lastmembershipupdated": v["lastMembershipUpdated"], "profile.name": v["name"],
                "profile.description": v["description"],
            }.get(attr)

        return get

    # ================================================================ errors and headers
    def _error(self, status: int, code: str, summary: str, causes: list[str] | None = None,
               headers: list[tuple[str, str]] | None = None) -> Response:
        self._error_seq += 1
        error_id = "oae" + derived_id("", "err", str(self._error_seq), str(self.port), length=22)
        return Response.json(status, {
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": error_id,
            "errorCauses": [{"errorSummary": c} for c in (causes or [])],
        }, headers)

    def _rate_error(self) -> Response:
        return self._error(429, "E0000047", "API call exceeded rate limit due to too many requests.")

    def _www_authenticate(self, req: Request, error: str, description: str, scope: str = "") -> tuple[str, str]:
        return ("WWW-Authenticate",
                f'Bearer authorization_uri="{self.base_url}/oauth2/v1/authorize", realm="{self.base_url}", '
                f'scope="{scope}", error="{error}", error_description="{description}", resource="{req.path}"')

    def _bucket(self, req: Request) -> str | None:
        if req.route is not None and req.route.bucket:
            return req.route.bucket
        if req.path.startswith("/api/v1"):
            return "other"
        if req.path.startswith("/oauth2/"):
            return "oauth2"
        return None

    def _concurrency_response(self, req: Request, inflight: int) -> Response | None:
        if inflight <= self.concurrency_limit:
            return None
        resp = self._rate_error()
        resp.headers += [("X-Rate-Limit-Limit", "0"), ("X-Rate-Limit-Remaining", "0"),
                         ("X-Rate-Limit-Reset", str(int(time.time()) + 1))]
        req.ctx["rate_headers_set"] = True
        return resp

    def _fault_response(self, req: Request, rule: FaultRule) -> Response:
        if rule.kind == "429":
            resp = self._rate_error()
            bucket = self._bucket(req) or "other"
            st = self.limiters[bucket].peek()
            resp.headers += [("X-Rate-Limit-Limit", str(st.limit)), ("X-Rate-Limit-Remaining", "0"),
                             ("X-Rate-Limit-Reset", str(st.reset))]
            req.ctx["rate_headers_set"] = True
            return resp
        if rule.status == 500:
            return self._error(500, "E0000009", "Internal Server Error")
        return proxy_error_page(rule.status or 503)

    def _after(self, req: Request, resp: Response) -> Response:
        resp.headers.append(("X-Okta-Request-Id", b64url(secrets.token_bytes(18))))
        if req.ctx.get("rate_headers_set"):
            return resp
        bucket = self._bucket(req)
        if bucket is None:
            return resp
        st = req.ctx.get("rate") or self.limiters[bucket].peek()
        resp.headers += [("X-Rate-Limit-Limit", str(st.limit)), ("X-Rate-Limit-Remaining", str(st.remaining)),
                         ("X-Rate-Limit-Reset", str(st.reset))]
        return resp

    def _not_found(self, req: Request) -> Response:
        return self._error(404, "E0000007", f"Not found: Resource not found: {req.path} (Resource)")

    def _method_not_allowed(self, req: Request) -> Response:
        return self._error(405, "E0000022", "The endpoint does not support the provided HTTP method",
                           headers=[("Allow", "GET")])

    def _internal_error(self, req: Request) -> Response:
        return self._error(500, "E0000009", "Internal Server Error")

    # ================================================================ auth and limits
    def _before(self, req: Request, route) -> Response | None:
        if route.auth:
            auth = req.header("authorization") or ""
            scheme, _, value = auth.partition(" ")
            scopes: frozenset[str] | None
            bearer = scheme.lower() == "bearer"
            if scheme == "SSWS" and value and secrets.compare_digest(value.strip(), self.api_token):
                scopes = self.api_token_scopes
            elif bearer and (claims := self._check_access_token(value.strip())) is not None:
                scopes = frozenset(claims.get("scp") or ())
            else:
                invalid = self._www_authenticate(req, "invalid_token", "The access token is invalid.")
                headers = [invalid] if bearer else []
                return self._error(401, "E0000011", "Invalid token provided", headers=headers)
            needed = [group for group in route.need if scopes is not None and not any(s in scopes for s in group)]
            if needed:
                headers = []
                if bearer:
                    headers.append(self._www_authenticate(
                        req, "insufficient_scope", "The access token provided does not contain the required scopes.",
                        " ".join(needed[0])))
                return self._error(403, "E0000006", "You do not have permission to perform the requested action",
                                   headers=headers)
        bucket = self._bucket(req)
        if bucket is not None:
            st = self.limiters[bucket].hit()
            req.ctx["rate"] = st
            if not st.allowed:
                return self._rate_error()
        return None

    def _check_access_token(self, token: str) -> dict[str, Any] | None:
        claims = self.signer.verify(token)
        if claims is None:
            return None
        now = time.time()
        if claims.get("iss") != self.base_url or claims.get("exp", 0) <= now:
            return None
        if claims.get("iat", 0) < self._tokens_not_before:
            return None
        return claims

    def _mint(self, scopes: list[str], ttl: int | None = None) -> str:
        now = time.time()
        self.issued_tokens += 1
        return self.signer.mint({
            "ver": 1,
            "jti": "AT." + b64url(secrets.token_bytes(24)),
            "iss": self.base_url,
            "aud": self.base_url,
            "iat": now,
            "exp": round(now + (self.token_ttl if ttl is None else ttl), 3),
            "cid": self.client_id,
            "scp": scopes,
            "sub": self.client_id,
        })

    # ================================================================ token endpoint
    def _oauth_error(self, status: int, error: str, description: str) -> Response:
        return Response.json(status, {"error": error, "error_description": description},
                             [("Cache-Control", "no-cache, no-store"), ("Pragma", "no-cache")])

    def _token(self, req: Request) -> Response:
        form = req.form()
        grant = form.get("grant_type")
        if not grant:
            return self._oauth_error(400, "invalid_request", "The token request must specify a 'grant_type'. "
                                     "Valid values: [client_credentials]")
        if grant != "client_credentials":
            return self._oauth_error(400, "unsupported_grant_type",
                                     f"The authorization server does not support the '{grant}' grant type.")
        if "client_secret" in form or (req.header("authorization") or "").lower().startswith("basic "):
            return self._oauth_error(401, "invalid_client", "Client Credentials requests to the Org Authorization "
                                     "Server must use the private_key_jwt token_endpoint_auth_method.")
        assertion = form.get("client_assertion")
        if not assertion:
            return self._oauth_error(401, "invalid_client", "Client authentication failed. Either the client or "
                                     "the client credentials are invalid.")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return self._oauth_error(400, "invalid_request", "The client_assertion_type is invalid.")
        try:
            header, claims, signing_input, signature = split_jwt(assertion)
        except ValueError:
            return self._oauth_error(401, "invalid_client", "The client_assertion token is malformed.")
        if not str(header.get("alg", "")).startswith(("RS", "ES", "PS")):
            return self._oauth_error(401, "invalid_client",
                                     "The client_assertion token has an invalid signing algorithm.")
        now = time.time()
        if claims.get("iss") != claims.get("sub"):
            return self._oauth_error(401, "invalid_client", "The client_assertion token's iss and sub claims "
                                     "must be the client_id.")
        if claims.get("iss") != self.client_id:
            return self._oauth_error(401, "invalid_client", "Client authentication failed. Either the client or "
                                     "the client credentials are invalid.")
        if claims.get("aud") != self.token_url:
            return self._oauth_error(401, "invalid_client", "The audience claim for client_assertion must be the "
                                     "endpoint invoking the client_assertion.")
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp <= now:
            return self._oauth_error(401, "invalid_client", "The client_assertion token is expired.")
        iat = claims.get("iat", now)
        if not isinstance(iat, (int, float)) or exp - min(iat, now) > 3600 + 5:
            return self._oauth_error(401, "invalid_client",
                                     "The client_assertion token has an expiration too far into the future.")
        jti = claims.get("jti")
        if not jti:
            return self._oauth_error(401, "invalid_client", "The client_assertion token must contain a jti claim.")
        if self.client_public_key is not None and not verify_rsa_jwt(self.client_public_key, header, signing_input,
                                                                     signature):
            return self._oauth_error(401, "invalid_client", "The client_assertion signature is invalid.")
        if jti in self._used_jti:
            return self._oauth_error(401, "invalid_client", "The client_assertion token has already been used.")
        self._used_jti.add(jti)
        scope = form.get("scope", "").split()
        if not scope:
            return self._oauth_error(400, "invalid_scope", "The authorization server resource does not have any "
                                     "configured default scopes, 'scope' must be provided.")
        bad = [s for s in scope if s not in KNOWN_SCOPES or s not in self.oauth_scopes]
        if bad:
            return self._oauth_error(400, "invalid_scope", "One or more scopes are not configured for the "
                                     "authorization server resource.")
        granted = sorted(set(scope))
        return Response.json(200, {
            "token_type": "Bearer",
            "expires_in": self.token_ttl,
            "access_token": self._mint(granted),
            "scope": " ".join(granted),
        }, [("Cache-Control", "no-cache, no-store"), ("Pragma", "no-cache")])

    # ================================================================ paging
    def _limit(self, req: Request, default: int, cap: int) -> int | Response:
        try:
            limit = self.int_param(req, "limit", default)
        except ValueError:
            return self._error(400, "E0000001", "Api validation failed: limit", ["limit: must be an integer"])
        assert limit is not None
        if limit < 1:
            return self._error(400, "E0000001", "Api validation failed: limit",
                               ["limit: must be greater than or equal to 1"])
        return min(limit, cap)

    def _links(self, req: Request, next_after: Any, limit: int) -> list[tuple[str, str]]:
        self_url = f"{self.base_url}{req.raw_path}" + (f"?{req.raw_query}" if req.raw_query else "")
        links = [("Link", f'<{self_url}>; rel="self"')]
        if next_after is None and self.faults.take_empty_page(req.path):  # faults.empty_pages: no end
            self._empty_cursors += 1
            next_after = encode_cursor({"empty": self._empty_cursors, "generation": self.faults.generation})
        if next_after is not None:
            if self.faults.take_repeat_cursor(req.path):
                next_url = self_url
            else:
                params = [(k, v) for k, v in req.query_list if k not in ("after", "limit")]
                params += [("after", next_after), ("limit", str(limit))]
                next_url = f"{self.base_url}{req.raw_path}?" + "&".join(
                    f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
            links.append(("Link", f'<{next_url}>; rel="next"'))
        return links

    def _page(self, ids: list[str], after: str | None, limit: int,
              keep: Callable[[str], bool]) -> tuple[list[str], bool]:
        start = bisect.bisect_right(ids, after) if after else 0
        out: list[str] = []
        i, n = start, len(ids)
        while i < n and len(out) < limit:
            if keep(ids[i]):
                out.append(ids[i])
            i += 1
        more = False
        if len(out) == limit:
            if self.empty_last_page:
                more = True
            else:
                while i < n:
                    if keep(ids[i]):
                        more = True
                        break
                    i += 1
        return out, more

    def _after_param(self, req: Request) -> str | None | Response:
        raw = req.query.get("after")
        if not raw:
            return None
        try:
            value = decode_cursor(raw)
        except ValueError:
            return self._error(400, "E0000031", "Invalid search criteria.", ["after: invalid cursor"])
        if isinstance(value, dict) and "empty" in value:  # a cursor of faults.empty_pages
            if value.get("generation") != self.faults.generation:
                return self._error(400, "E0000031", "Invalid search criteria.", ["after: the cursor has expired"])
            limit = req.query.get("limit") or "200"
            return Response.raw_json(200, b"[]", self._links(req, None, int(limit) if limit.isdigit() else 200))
        return value

    @staticmethod
    def _array(bodies: list[bytes]) -> bytes:
        return b"[" + b",".join(bodies) + b"]"

    # ================================================================ users
    def _list_users(self, req: Request) -> Response:
        idx = self._idx()
        q = req.query.get("q")
        search = req.query.get("search")
        flt = req.query.get("filter")
        if q is not None and not search and not flt:
            lim = self._limit(req, 10, self.page_limit_cap)
            if isinstance(lim, Response):
                return lim
            needle = q.lower()
            out = []
            for oid in idx.user_ids:
                u = idx.user_by_oid[oid]
                if u.status == "DEPROVISIONED":
                    continue
                if any(v and v.lower().startswith(needle) for v in (u.first_name, u.last_name, u.email, u.login)):
                    out.append(self._render_user(oid, u))
                    if len(out) >= lim:
                        break
            return Response.raw_json(200, self._array(out), self._links(req, None, lim))
        lim = self._limit(req, 200, self.page_limit_cap)
        if isinstance(lim, Response):
            return lim
        after = self._after_param(req)
        if isinstance(after, Response):
            return after
        expr = search or flt
        if expr:
            try:
                pred = parse_expression(expr, allowed_attrs=None if search else _FILTER_ATTRS_USERS,
                                        ops=_SEARCH_OPS if search else {"eq", "gt", "ge", "lt", "le"})
            except FilterError as exc:
                return self._error(400, "E0000031", "Invalid search criteria.", [str(exc)])
            getters = idx.user_by_oid

            def keep(oid: str) -> bool:
                return pred(self._user_getter(oid, getters[oid]))
        else:
            def keep(oid: str) -> bool:
                return idx.user_by_oid[oid].status != "DEPROVISIONED"

        sort_by = req.query.get("sortBy") if search else None
        if sort_by:
            return self._sorted_search(req, idx, keep, sort_by, lim, after)
        if after is not None and not isinstance(after, str):
            return self._error(400, "E0000031", "Invalid search criteria.", ["after: invalid cursor"])
        ids, more = self._page(idx.user_ids, after, lim, keep)
        body = self._array([self._render_user(oid, idx.user_by_oid[oid]) for oid in ids])
        next_after = encode_cursor(ids[-1]) if more and ids else None
        return Response.raw_json(200, body, self._links(req, next_after, lim))

    def _sorted_search(self, req: Request, idx: _Index, keep: Callable[[str], bool], sort_by: str, lim: int,
                       after: Any) -> Response:
        attr = sort_by.lower()
        desc = (req.query.get("sortOrder") or "asc").lower() == "desc"

        def key(oid: str) -> tuple[str, str]:
            v = self._user_getter(oid, idx.user_by_oid[oid])(attr)
            if isinstance(v, datetime):
                v = iso(v)
            return (str(v).lower() if v is not None else "", oid)

        keyed = sorted(((key(oid), oid) for oid in idx.user_ids if keep(oid)), reverse=desc)
        keys = [k for k, _ in keyed]
        start = 0
        if after is not None:
            if not (isinstance(after, list) and len(after) == 2):
                return self._error(400, "E0000031", "Invalid search criteria.", ["after: invalid cursor"])
            cursor = (after[0], after[1])
            if desc:
                start = next((i for i, k in enumerate(keys) if k < cursor), len(keys))
            else:
                start = bisect.bisect_right(keys, cursor)
        chunk = keyed[start:start + lim]
        more = start + lim < len(keyed)
        body = self._array([self._render_user(oid, idx.user_by_oid[oid]) for _, oid in chunk])
        next_after = encode_cursor(list(chunk[-1][0])) if more and chunk else None
        return Response.raw_json(200, body, self._links(req, next_after, lim))

    def _find_user(self, req: Request) -> tuple[str, User] | Response:
        idx = self._idx()
        ref = req.params["uid"]
        oid = ref if ref in idx.user_by_oid else idx.oid_by_login.get(ref.lower())
        if oid is None:
            return self._error(404, "E0000007", f"Not found: Resource not found: {ref} (User)")
        return oid, idx.user_by_oid[oid]

    def _get_user(self, req: Request) -> Response:
        found = self._find_user(req)
        if isinstance(found, Response):
            return found
        return Response.raw_json(200, self._render_user(*found))

    # ================================================================ user updates
    def _profile_error(self, causes: list[str]) -> Response:
        return self._error(400, "E0000001", "Api validation failed: profile", causes)

    def _profile_changes(self, u: User, profile: Any, *, replace: bool) -> dict[str, Any] | Response:
        """The tenant changes a profile asks for, or Okta's 400. `replace` (PUT): every property
        not given is removed and the required base properties must be there."""
        if not isinstance(profile, dict):
            return self._profile_error(["profile: The field is of the wrong type"])
        schema = self.tenant.custom_attributes
        causes: list[str] = []
        for name in REQUIRED_PROFILE:
            if (name in profile or replace) and not (isinstance(profile.get(name), str) and profile[name].strip()):
                causes.append(f"{name}: The field cannot be left blank")
        for name, value in profile.items():
            if name in REQUIRED_PROFILE or name in OPTIONAL_PROFILE:
                if value is not None and not isinstance(value, str):
                    causes.append(f"{name}: The field is of the wrong type")
            elif name not in schema:
                causes.append(f"Property name '{name}' is not defined in profile")
            elif value is not None and not _json_type_ok(value, schema[name]):
                causes.append(f"{name}: The field is of the wrong type")
        if "login" in profile and isinstance(profile["login"], str) and profile["login"] != u.login:
            causes.append("login: changing the login is not supported by this fake")
        if causes:
            return self._profile_error(causes)
        custom = {} if replace else dict(u.custom)
        for name, value in profile.items():
            if name in REQUIRED_PROFILE:
                continue
            if value is None:
                custom.pop(name, None)  # an explicit null clears the property
            else:
                custom[name] = value
        changes: dict[str, Any] = {"custom": custom}
        for name, field_name in (("firstName", "first_name"), ("lastName", "last_name"), ("email", "email")):
            if name in profile:
                changes[field_name] = profile[name]
        return changes

    def _update_user(self, req: Request) -> Response:
        """`POST /api/v1/users/{id}`: a partial update; the profile properties given are set (null
        clears one), every other property is kept."""
        return self._write_user(req, replace=False)

    def _replace_user(self, req: Request) -> Response:
        """`PUT /api/v1/users/{id}`: replaces the profile; every property not given is removed."""
        return self._write_user(req, replace=True)

    def _write_user(self, req: Request, *, replace: bool) -> Response:
        found = self._find_user(req)
        if isinstance(found, Response):
            return found
        oid, u = found
        try:
            body = req.json()
        except ValueError:
            return self._error(400, "E0000003", "The request body was not well-formed.")
        if not isinstance(body, dict):
            return self._error(400, "E0000003", "The request body was not well-formed.")
        if "profile" not in body:
            if replace:
                return self._profile_error(["profile: The field cannot be left blank"])
            return Response.raw_json(200, self._render_user(oid, u))
        changes = self._profile_changes(u, body["profile"], replace=replace)
        if isinstance(changes, Response):
            return changes
        self.tenant.touch_user(u.id, **changes)
        return Response.raw_json(200, self._render_user(oid, u))

    def _user_groups(self, req: Request) -> Response:
        found = self._find_user(req)
        if isinstance(found, Response):
            return found
        idx = self._idx()
        gids = sorted(idx.groups_of_user.get(found[0], ()))
        return Response.raw_json(200, self._array([self._render_group(g, idx.group_by_oid[g], idx) for g in gids]))

    # ================================================================ groups
    def _list_groups(self, req: Request) -> Response:
        idx = self._idx()
        q = req.query.get("q")
        search = req.query.get("search")
        flt = req.query.get("filter")
        stats = "stats" in (req.query.get("expand") or "").split(",")
        lim = self._limit(req, 10000, 10000)
        if isinstance(lim, Response):
            return lim
        if q is not None and not search and not flt:
            needle = q.lower()
            out = [g for g in idx.group_ids
                   if self._group_view(g, idx.group_by_oid[g], idx)["name"].lower().startswith(needle)][:lim]
            return Response.raw_json(200, self._array([self._render_group(g, idx.group_by_oid[g], idx, stats)
                                                       for g in out]), self._links(req, None, lim))
        after = self._after_param(req)
        if isinstance(after, Response):
            return after
        if after is not None and not isinstance(after, str):
            return self._error(400, "E0000031", "Invalid search criteria.", ["after: invalid cursor"])
        expr = search or flt
        if expr:
            try:
                pred = parse_expression(expr, allowed_attrs=None if search else _FILTER_ATTRS_GROUPS,
                                        ops=_SEARCH_OPS if search else {"eq", "gt", "ge", "lt", "le"})
            except FilterError as exc:
                return self._error(400, "E0000031", "Invalid search criteria.", [str(exc)])

            def keep(goid: str) -> bool:
                return pred(self._group_getter(self._group_view(goid, idx.group_by_oid[goid], idx)))
        else:
            def keep(goid: str) -> bool:
                return True
        ids, more = self._page(idx.group_ids, after, lim, keep)
        body = self._array([self._render_group(g, idx.group_by_oid[g], idx, stats) for g in ids])
        next_after = encode_cursor(ids[-1]) if more and ids else None
        return Response.raw_json(200, body, self._links(req, next_after, lim))

    def _find_group(self, req: Request) -> str | Response:
        gid = req.params["gid"]
        if gid not in self._idx().group_by_oid:
            return self._error(404, "E0000007", f"Not found: Resource not found: {gid} (UserGroup)")
        return gid

    def _get_group(self, req: Request) -> Response:
        gid = self._find_group(req)
        if isinstance(gid, Response):
            return gid
        idx = self._idx()
        return Response.raw_json(200, self._render_group(gid, idx.group_by_oid[gid], idx))

    def _group_users(self, req: Request) -> Response:
        gid = self._find_group(req)
        if isinstance(gid, Response):
            return gid
        lim = self._limit(req, 1000, 1000)
        if isinstance(lim, Response):
            return lim
        after = self._after_param(req)
        if isinstance(after, Response):
            return after
        if after is not None and not isinstance(after, str):
            return self._error(400, "E0000031", "Invalid search criteria.", ["after: invalid cursor"])
        idx = self._idx()
        members = self._members(gid)
        ids, more = self._page(members, after, lim, lambda oid: oid in idx.user_by_oid)
        body = self._array([self._render_user(oid, idx.user_by_oid[oid]) for oid in ids])
        next_after = encode_cursor(ids[-1]) if more and ids else None
        return Response.raw_json(200, body, self._links(req, next_after, lim))

    # ================================================================ schema
    def _update_user_schema(self, req: Request) -> Response:
        """Okta's partial update of the user schema: custom properties to add or change
        (`definitions.custom.properties`: name -> {"type": ...}), or to remove (name -> null).
        Only the type is kept (it is what the profile checks use). Answers with the schema."""
        if req.params["sid"] not in ("default", self.user_type_id):
            return self._error(404, "E0000007", f"Not found: Resource not found: {req.params['sid']} (UserSchema)")
        try:
            body = req.json()
        except ValueError:
            return self._error(400, "E0000003", "The request body was not well-formed.")
        custom = (((body or {}).get("definitions") or {}).get("custom") or {}).get("properties")
        if not isinstance(custom, dict) or not custom:
            return self._error(400, "E0000001", "Api validation failed: userSchema",
                               ["definitions.custom.properties: at least one property is required"])
        changes: dict[str, str | None] = {}
        for name, prop in custom.items():
            if name in ("login", "email", "firstName", "lastName") or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
                return self._error(400, "E0000001", "Api validation failed: userSchema",
                                   [f"{name}: not a valid custom property name"])
            if prop is None:
                changes[name] = None
            elif not isinstance(prop, dict) or prop.get("type") not in _SCHEMA_TYPES:
                return self._error(400, "E0000001", "Api validation failed: userSchema",
                                   [f"{name}: type must be one of {', '.join(sorted(_SCHEMA_TYPES))}"])
            else:
                changes[name] = prop["type"]
        for name, typ in changes.items():
            if typ is None:
                self.tenant.custom_attributes.pop(name, None)
            else:
                self.tenant.custom_attributes[name] = typ
        return self._user_schema(req)

    def _user_schema(self, req: Request) -> Response:
        if req.params["sid"] not in ("default", self.user_type_id):
            return self._error(404, "E0000007", f"Not found: Resource not found: {req.params['sid']} (UserSchema)")
        t = self.tenant
        custom_props: dict[str, Any] = {}
        for name, typ in t.custom_attributes.items():
            custom_props[name] = {
                "title": name[:1].upper() + re.sub(r"([A-Z])", r" \1", name[1:]),
                "description": f"Custom attribute {name}",
                "type": typ,
                "required": False,
                "mutability": "READ_WRITE",
                "scope": "NONE",
                "permissions": [{"principal": "SELF", "action": "READ_ONLY"}],
                "master": {"type": "PROFILE_MASTER"},
            }
        perm = [{"principal": "SELF", "action": "READ_WRITE"}]
        doc = {
            "id": f"{self.base_url}/meta/schemas/user/default",
            "$schema": "http://json-schema.org/draft-04/schema#",
            "name": "user",
            "title": "Default Okta User",
            "lastUpdated": iso(t.now),
            "created": iso(t.now.replace(year=t.now.year - 3)),
            "definitions": {
                "base": {
                    "id": "#base",
                    "type": "object",
                    "properties": {
                        "login": {"title": "Username", "type": "string", "required": True, "minLength": 5,
                                  "maxLength": 100, "permissions": perm},
                        "firstName": {"title": "First name", "type": "string", "required": True, "minLength": 1,
                                      "maxLength": 50, "permissions": perm},
                        "lastName": {"title": "Last name", "type": "string", "required": True, "minLength": 1,
                                     "maxLength": 50, "permissions": perm},
                        "email": {"title": "Primary email", "type": "string", "required": True, "format": "email",
                                  "permissions": perm},
                    },
                    "required": ["login", "firstName", "lastName", "email"],
                },
                "custom": {"id": "#custom", "type": "object", "properties": custom_props, "required": []},
            },
            "type": "object",
            "properties": {"profile": {"allOf": [{"$ref": "#/definitions/base"}, {"$ref": "#/definitions/custom"}]}},
            "_links": {"self": {"href": f"{self.base_url}/api/v1/meta/schemas/user/default", "method": "GET",
                                "type": "application/json"}},
        }
        return Response.json(200, doc)
