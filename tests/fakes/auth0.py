"""A fake Auth0 tenant: Management API v2 (users, user search, bulk user export jobs, roles,
organizations) and the Authentication API's client-credentials grant. See README.md.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

from .base import (
    UTC,
    FakeServer,
    FaultRule,
    JwtSigner,
    RateState,
    Request,
    Response,
    TokenBucket,
    decode_cursor,
    derived_hex,
    derived_id,
    encode_cursor,
    iso,
    parse_iso,
    proxy_error_page,
)
from .tenant import Organization, Tenant, User
from .tokens import ApiTokens

DEFAULT_SCOPES = frozenset({
    "read:users", "read:roles", "read:role_members", "read:organizations", "read:organization_members",
    "read:organization_member_roles",
})
KNOWN_SCOPES = frozenset(DEFAULT_SCOPES | {"create:users", "update:users", "delete:users", "read:users_app_metadata",
                                           "update:users_app_metadata", "create:roles", "update:roles",
                                           "create:organizations", "update:organizations", "read:connections"})
DB_CONNECTION = "Username-Password-Authentication"
SOCIAL_CONNECTION = "google-oauth2"
_RATE_MESSAGE = ("Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and "
                 "X-RateLimit-Reset headers.")
DEFAULT_EXPORT_FIELDS = ("user_id", "email", "email_verified", "username", "name", "given_name", "family_name",
                         "nickname", "picture", "created_at", "updated_at", "last_login", "logins_count", "blocked",
                         "identities", "app_metadata", "user_metadata")


class QueryError(ValueError):
    pass


# --------------------------------------------------------------------------- Lucene subset


_LUCENE_TOKEN = re.compile(
    r'\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<op>AND\b|OR\b|NOT\b|&&|\|\|)|(?P<neg>[-!])(?=\S)'
    r'|(?P<field>[A-Za-z_][\w.\[\]]*):(?P<value>"(?:[^"\\]|\\.)*"|[\[{][^\]}]*[\]}]|[^\s()]+))'
)


def parse_lucene(text: str) -> Callable[[Callable[[str], Any]], bool]:
    """Parse the subset of Auth0's user search (v3) syntax a migration needs: `field:value`,
    `field:"quoted"`, `field:prefix*`, ranges `field:[a TO b]` / `{a TO b}` (either bound `*`),
    `_exists_:field`, AND / OR / NOT / `-`, parentheses; juxtaposed terms are ANDed."""
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _LUCENE_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise QueryError(f"cannot parse the query near {text[pos:pos + 20]!r}")
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if m.group("lp"):
            tokens.append(("(", None))
        elif m.group("rp"):
            tokens.append((")", None))
        elif m.group("op"):
            op = {"&&": "AND", "||": "OR"}.get(m.group("op"), m.group("op"))
            tokens.append((op, None))
        elif m.group("neg"):
            tokens.append(("NOT", None))
        else:
            tokens.append(("term", (m.group("field"), m.group("value"))))
    if not tokens:
        raise QueryError("empty query")
    i = 0

    def peek() -> str | None:
        return tokens[i][0] if i < len(tokens) else None

    def parse_or() -> Callable:
        nonlocal i
        left = parse_and()
        while peek() == "OR":
            i += 1
            right = parse_and()
            left = (lambda a, b: lambda g: a(g) or b(g))(left, right)
        return left

    def parse_and() -> Callable:
        nonlocal i
        left = parse_unary()
        while peek() in ("AND", "NOT", "term", "("):
            if peek() == "AND":
                i += 1
            right = parse_unary()
            left = (lambda a, b: lambda g: a(g) and b(g))(left, right)
        return left

    def parse_unary() -> Callable:
        nonlocal i
        kind = peek()
        if kind is None:
            raise QueryError("unexpected end of query")
        if kind == "NOT":
            i += 1
            inner = parse_unary()
            return lambda g: not inner(g)
        if kind == "(":
            i += 1
            inner = parse_or()
            if peek() != ")":
                raise QueryError("missing )")
            i += 1
            return inner
        if kind == "term":
            fld, raw = tokens[i][1]
            i += 1
            return _term(fld, raw)
        raise QueryError(f"unexpected {kind}")

    pred = parse_or()
    if i != len(tokens):
        raise QueryError("trailing input in query")
    return pred


def _coerce(raw: str) -> Any:
    if raw in ("true", "false"):
        return raw == "true"
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    dt = parse_iso(raw)
    return dt if dt is not None else raw.lower()


def _cmp_value(actual: Any, bound: Any) -> tuple[Any, Any] | None:
    if isinstance(bound, datetime):
        if isinstance(actual, str):
            actual = parse_iso(actual)
        return (actual, bound) if isinstance(actual, datetime) else None
    if isinstance(bound, int) and not isinstance(bound, bool):
        return (actual, bound) if isinstance(actual, (int, float)) and not isinstance(actual, bool) else None
    return (str(actual).lower(), str(bound)) if actual is not None else None


def _term(fld: str, raw: str) -> Callable[[Callable[[str], Any]], bool]:
    if fld == "_exists_":
        name = raw.strip('"')
        return lambda g: g(name) not in (None, "", [], {})
    if raw[0] in "[{":
        m = re.fullmatch(r"([\[{])\s*(\S+)\s+TO\s+(\S+)\s*([\]}])", raw)
        if not m:
            raise QueryError(f"bad range {raw}")
        lo_inc, hi_inc = m.group(1) == "[", m.group(4) == "]"
        lo_raw, hi_raw = m.group(2).strip('"'), m.group(3).strip('"')
        lo = None if lo_raw == "*" else _coerce(lo_raw)
        hi = None if hi_raw == "*" else _coerce(hi_raw)

        def in_range(g: Callable[[str], Any]) -> bool:
            actual = g(fld)
            if actual is None:
                return False
            if lo is not None:
                pair = _cmp_value(actual, lo)
                if pair is None or (pair[0] < pair[1] if lo_inc else pair[0] <= pair[1]):
                    return False
            if hi is not None:
                pair = _cmp_value(actual, hi)
                if pair is None or (pair[0] > pair[1] if hi_inc else pair[0] >= pair[1]):
                    return False
            return True

        return in_range
    if raw.startswith('"'):
        want = re.sub(r"\\(.)", r"\1", raw[1:-1]).lower()
        return lambda g: _eq(g(fld), want, prefix=False)
    if raw.startswith("*"):
        raise QueryError("wildcards are not allowed at the beginning of a term")
    if raw.endswith("*"):
        want = raw[:-1].lower()
        return lambda g: _eq(g(fld), want, prefix=True)
    value = _coerce(raw)
    if isinstance(value, datetime):
        return lambda g: (p := _cmp_value(g(fld), value)) is not None and p[0] == p[1]
    return lambda g: _eq(g(fld), value, prefix=False)


def _eq(actual: Any, want: Any, *, prefix: bool) -> bool:
    if isinstance(actual, list):
        return any(_eq(a, want, prefix=prefix) for a in actual)
    if actual is None:
        return False
    if isinstance(want, bool) or isinstance(actual, bool):
        return str(actual).lower() == str(want).lower()
    a = str(actual).lower()
    w = str(want).lower()
    return a.startswith(w) if prefix else a == w


def _resolve(doc: Any, path: str) -> Any:
    """`identities[0].connection`, `app_metadata.department`, `identities.connection` (any)."""
    cur: Any = doc
    for part in path.split("."):
        m = re.fullmatch(r"([^\[]+)(?:\[(\d+)\])?", part)
        if not m:
            return None
        key, index = m.group(1), m.group(2)
        if isinstance(cur, list):
            cur = [c.get(key) for c in cur if isinstance(c, dict)]
        elif isinstance(cur, dict):
            cur = cur.get(key)
        else:
            return None
        if index is not None:
            cur = cur[int(index)] if isinstance(cur, list) and int(index) < len(cur) else None
        if cur is None:
            return None
    return cur


# --------------------------------------------------------------------------- user updates

# What `PATCH /api/v2/users/{id}` takes here (Auth0 takes more: email, phone, password, ...).
PATCHABLE = frozenset({"app_metadata", "user_metadata", "given_name", "family_name", "blocked", "email_verified"})


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "unknown")


def _merge_metadata(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Auth0's metadata merge: root properties merge, nested objects are replaced, a null deletes
    the property and an empty object removes them all."""
    if not patch:
        return {}
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


# --------------------------------------------------------------------------- export jobs


@dataclass
class ExportJob:
    id: str
    created: float
    created_at: str
    connection_id: str | None
    connection: str | None
    format: str
    limit: int | None
    fields: list[dict[str, str]] | None
    payload: bytes
    fail: bool = False
    links: list[str] = field(default_factory=list)


class FakeAuth0(FakeServer):
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
        self._index_lock = threading.Lock()
        self._index_version = -1
        self._users_sorted: list[str] = []
        self._user_by_aid: dict[str, User] = {}
        self._aid_by_neutral: dict[str, str] = {}
        self._doc_cache: dict[str, tuple[int, dict[str, Any]]] = {}
        self._user_metadata: dict[str, dict[str, Any]] = {}  # set by PATCH, replacing the derived one
        self._list_cache: dict[tuple[Any, ...], tuple[int, Any]] = {}

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

    # ================================================================ public helpers
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

    def export_lines(self, job_id: str) -> list[dict[str, Any]]:
        """The decoded NDJSON lines of a JSON export job's file."""
        data = gzip.decompress(self.jobs[job_id].payload).decode("utf-8")
        return [json.loads(line) for line in data.splitlines() if line.strip()]

    def mint_access_token(self, scopes: set[str] | frozenset[str] | None = None, ttl: int | None = None) -> str:
        return self._mint(sorted(scopes if scopes is not None else self.scopes), ttl)

    def revoke_tokens(self) -> None:
        self._tokens_not_before = time.time() + 0.001
        time.sleep(0.002)

    def exhaust_rate_limit(self) -> RateState:
        return self.bucket.exhaust()

    # ================================================================ data mapping
    def _idx(self) -> list[str]:
        t = self.tenant
        if self._index_version == t.structure_version:
            return self._users_sorted
        with self._index_lock, t.lock:
            if self._index_version != t.structure_version:
                pairs = [(self.auth0_user_id(uid), u) for uid, u in t.users.items()]
                self._user_by_aid = dict(pairs)
                self._users_sorted = [aid for aid, _ in sorted(pairs, key=lambda p: (p[1].created, p[0]))]
                self._index_version = t.structure_version
            return self._users_sorted

    def _doc(self, aid: str) -> dict[str, Any]:
        u = self._user_by_aid[aid]
        cached = self._doc_cache.get(aid)
        if cached is not None and cached[0] == u.version:
            return cached[1]
        provider, _, ident = aid.partition("|")
        social = provider != "auth0"
        h = derived_hex("auth0-user-extra", u.id, length=8)
        doc: dict[str, Any] = {"created_at": iso(u.created)}
        if u.email:
            doc["email"] = u.email
            doc["email_verified"] = bool(u.email_verified) or social
        doc["family_name"] = u.last_name
        doc["given_name"] = u.first_name
        doc["identities"] = [{
            "connection": SOCIAL_CONNECTION if social else DB_CONNECTION,
            "user_id": ident,
            "provider": provider,
            "isSocial": social,
        }]
        doc["name"] = u.display_name
        local = (u.email or u.login).split("@")[0]
        doc["nickname"] = local
        initials = "".join(p[:1] for p in (u.first_name, u.last_name)).lower() or "u"
        doc["picture"] = (f"https://s.gravatar.com/avatar/{hashlib.md5((u.email or u.login).encode()).hexdigest()}"
                          f"?s=480&r=pg&d=https%3A%2F%2Fcdn.auth0.com%2Favatars%2F{quote(initials)}.png")
        doc["updated_at"] = iso(u.last_updated)
        doc["user_id"] = aid
        if not social and (not u.email or int(h[:2], 16) % 10 < 3):
            doc["username"] = u.login.split("@")[0]
        if u.custom:
            doc["app_metadata"] = dict(u.custom)
        if aid in self._user_metadata:
            if self._user_metadata[aid]:
                doc["user_metadata"] = dict(self._user_metadata[aid])
        elif int(h[2:4], 16) % 4 == 0:
            doc["user_metadata"] = {"locale": "fr-CA" if int(h[4:6], 16) % 2 else "en-US"}
        if u.last_login is not None:
            doc["last_ip"] = f"198.51.100.{int(h[6:8], 16) % 250 + 1}"
            doc["last_login"] = iso(u.last_login)
            doc["logins_count"] = 1 + int(h[:4], 16) % 400
        if u.status in ("SUSPENDED", "DEPROVISIONED"):
            doc["blocked"] = True
        self._doc_cache[aid] = (u.version, doc)
        return doc

    def _sorted_roles(self) -> list[Any]:
        return sorted(self.tenant.roles.values(), key=lambda r: self.role_id(r.id))

    def _role_by_id(self, rid: str) -> Any:
        for r in self.tenant.roles.values():
            if self.role_id(r.id) == rid:
                return r
        return None

    def _role_doc(self, neutral_role_id: str) -> dict[str, Any]:
        r = self.tenant.roles[neutral_role_id]
        return {"id": self.role_id(r.id), "name": r.name, "description": r.description}

    def _cached(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """Per-request work stays O(page): derived lists live until the tenant changes."""
        version = self.tenant.version
        hit = self._list_cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = build()
        self._list_cache[key] = (version, value)
        return value

    def _role_members(self, rid: str) -> list[str]:
        r = self._role_by_id(rid)
        if r is None:
            raise KeyError(rid)
        self._idx()
        return self._cached(("role-members", rid), lambda: sorted(
            self.auth0_user_id(uid) for uid, rids in self.tenant.user_roles.items()
            if r.id in rids and uid in self.tenant.users))

    def _sorted_orgs(self) -> list[Organization]:
        return sorted(self.tenant.organizations.values(), key=lambda o: self.org_id(o.id))

    def _org_by_id(self, oid: str) -> Organization | None:
        for o in self.tenant.organizations.values():
            if self.org_id(o.id) == oid or o.name == oid:
                return o
        return None

    def _org_doc(self, o: Organization) -> dict[str, Any]:
        return {"id": self.org_id(o.id), "name": o.name, "display_name": o.display_name,
                "metadata": {"external_id": o.external_id}}

    def _members_of(self, o: Organization) -> list[tuple[str, list[dict[str, str]]]]:
        self._idx()
        t = self.tenant

        def build() -> list[tuple[str, list[dict[str, str]]]]:
            role_ref = {rid: {"id": self.role_id(rid), "name": r.name} for rid, r in t.roles.items()}
            out = [(self.auth0_user_id(m.user_id), [dict(role_ref[rid]) for rid in m.role_ids])
                   for m in o.members if m.user_id in t.users]
            out.sort(key=lambda p: p[0])
            return out

        return self._cached(("org-members", o.id), build)

    def _member_doc(self, aid: str, roles: list[dict[str, str]] | None) -> dict[str, Any]:
        d = self._doc(aid)
        doc: dict[str, Any] = {"user_id": aid}
        if "email" in d:
            doc["email"] = d["email"]
        doc["picture"] = d["picture"]
        doc["name"] = d["name"]
        if roles is not None:
            doc["roles"] = roles
        return doc

    # ================================================================ errors and headers
    @staticmethod
    def _err(status: int, error: str, message: str, code: str | None = None, **extra: Any) -> Response:
        body: dict[str, Any] = {"statusCode": status, "error": error, "message": message}
        if code:
            body["errorCode"] = code
        body.update(extra)
        return Response.json(status, body)

    def _bad_request(self, message: str, code: str = "invalid_query_string") -> Response:
        return self._err(400, "Bad Request", message, code)

    def _rate_error(self) -> Response:
        return self._err(429, "Too Many Requests", _RATE_MESSAGE, "too_many_requests")

    def _bucket_for(self, req: Request) -> TokenBucket | None:
        if req.path.startswith("/oauth/"):
            return self.token_bucket
        if not req.path.startswith("/api/v2"):
            return None
        best = None
        for prefix, b in self.endpoint_buckets.items():
            if req.path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, b)
        return best[1] if best else self.bucket

    def _fault_response(self, req: Request, rule: FaultRule) -> Response:
        if rule.kind == "429":
            bucket = self._bucket_for(req) or self.bucket
            req.ctx["rate"] = RateState(False, bucket.capacity, 0, bucket.peek().reset if bucket.rate else 0)
            return self._rate_error()
        if rule.status == 500:
            return self._err(500, "Internal Server Error", "Internal Server Error")
        if rule.status == 503:
            return self._err(503, "Service Unavailable", "Service Unavailable")
        return proxy_error_page(rule.status or 502)

    def _after(self, req: Request, resp: Response) -> Response:
        st = req.ctx.get("rate")
        if st is None:
            bucket = self._bucket_for(req)
            if bucket is None:
                return resp
            st = bucket.peek()
        resp.headers += [("x-ratelimit-limit", str(st.limit)), ("x-ratelimit-remaining", str(st.remaining)),
                         ("x-ratelimit-reset", str(st.reset))]
        return resp

    def _not_found(self, req: Request) -> Response:
        return self._err(404, "Not Found", "Not Found")

    def _method_not_allowed(self, req: Request) -> Response:
        return self._err(405, "Method Not Allowed", "Method Not Allowed")

    def _internal_error(self, req: Request) -> Response:
        return self._err(500, "Internal Server Error", "Internal Server Error")

    # ================================================================ auth and limits
    def _before(self, req: Request, route) -> Response | None:
        if route.auth:
            auth = req.header("authorization") or ""
            scheme, _, token = auth.partition(" ")
            token = token.strip()
            if not auth:
                return self._err(401, "Unauthorized", "Missing authentication")
            if scheme.lower() != "bearer" or token.count(".") != 2:
                return self._err(401, "Unauthorized", "Bad HTTP authentication header format",
                                 attributes={"error": "Bad HTTP authentication header format"})
            claims = self.signer.verify(token)
            if claims is None or claims.get("aud") != self.audience or claims.get("iat", 0) < self._tokens_not_before:
                return self._err(401, "Unauthorized", "Invalid token", attributes={"error": "Invalid token"})
            if claims.get("exp", 0) <= time.time():
                msg = "Expired token received for JSON Web Token validation"
                return self._err(401, "Unauthorized", msg, attributes={"error": msg})
            granted = set(str(claims.get("scope", "")).split())
            for group in route.need:
                if not granted.intersection(group):
                    return self._err(403, "Forbidden", f"Insufficient scope, expected any of: {','.join(group)}",
                                     "insufficient_scope")
            req.principal = granted
        bucket = self._bucket_for(req)
        if bucket is not None:
            st = bucket.take()
            req.ctx["rate"] = st
            if not st.allowed:
                return self._rate_error()
        return None

    def _mint(self, scopes: list[str], ttl: int | None = None) -> str:
        now = time.time()
        self.issued_tokens += 1
        return self.signer.mint({
            "iss": f"{self.base_url}/",
            "sub": f"{self.client_id}@clients",
            "aud": self.audience,
            "iat": now,
            "exp": round(now + (self.token_ttl if ttl is None else ttl), 3),
            "scope": " ".join(scopes),
            "gty": "client-credentials",
            "azp": self.client_id,
        })

    def _token(self, req: Request) -> Response:
        form = req.form()
        auth = req.header("authorization") or ""
        cid, secret = form.get("client_id"), form.get("client_secret")
        if auth.lower().startswith("basic "):
            try:
                b_id, _, b_secret = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
                cid, secret = unquote(b_id), unquote(b_secret)
            except (ValueError, UnicodeDecodeError):
                cid = secret = None
        grant = form.get("grant_type")
        if not grant:
            return Response.json(400, {"error": "invalid_request",
                                       "error_description": "Missing required parameter: grant_type"})
        known = self.apis.clients.get(cid or "", self.client_secret if cid == self.client_id else None)
        if not cid or known is None or not secret or not secrets.compare_digest(secret, known):
            return Response.json(401, {"error": "access_denied", "error_description": "Unauthorized"})
        if grant != "client_credentials":
            return Response.json(403, {"error": "unauthorized_client",
                                       "error_description": f"Grant type '{grant}' not allowed for the client.",
                                       "error_uri": "https://auth0.com/docs/clients/client-grant-types"})
        audience = form.get("audience")
        if not audience:
            return Response.json(403, {"error": "access_denied", "error_description": "No audience parameter was "
                                       "provided, and no default audience has been configured"})
        if audience in self.apis.identifiers:
            # A custom API (Settings > APIs): an RS256 access token, keys at /.well-known/jwks.json
            return Response.json(200, {"access_token": self.apis.mint(f"{self.base_url}/", cid, audience,
                                                                      self.token_ttl),
                                       "expires_in": self.token_ttl, "token_type": "Bearer"})
        if audience != self.audience or cid != self.client_id:
            return Response.json(403, {"error": "access_denied",
                                       "error_description": f"Service not enabled within domain: {audience}"})
        requested = form.get("scope", "").split()
        if requested:
            missing = [s for s in requested if s not in self.scopes]
            if missing:
                detail = f"Client has not been granted scopes: {' '.join(missing)}"
                return Response.json(403, {"error": "access_denied", "error_description": detail})
            granted = sorted(set(requested))
        else:
            granted = sorted(self.scopes)
        return Response.json(200, {"access_token": self._mint(granted), "scope": " ".join(granted),
                                   "expires_in": self.token_ttl, "token_type": "Bearer"})

    # ================================================================ paging helpers
    def _int(self, req: Request, name: str, default: int | None, *, minimum: int = 0,
             maximum: int | None = None, what: str = "") -> int | None | Response:
        raw = req.query.get(name)
        if raw is None or raw == "":
            return default
        if not re.fullmatch(r"-?\d+", raw):
            return self._bad_request(f"Query validation error: 'Expected type integer but found type string' on "
                                     f"property {name}{what}.")
        value = int(raw)
        if value < minimum:
            return self._bad_request(f"Query validation error: 'Number is less than minimum value ({minimum})' on "
                                     f"property {name}{what}.")
        if maximum is not None and value > maximum:
            return self._bad_request(f"Query validation error: 'Number is greater than the maximum of {maximum}' on "
                                     f"property {name}{what}.")
        return value

    def _offset_page(self, req: Request, items: list[Any], key: str, render: Callable[[Any], dict[str, Any]],
                     *, length_field: bool = False, default_per_page: int = 50,
                     limit_error: Callable[[int], Response] | None = None) -> Response:
        page = self._int(req, "page", 0)
        if isinstance(page, Response):
            return page
        per_page = self._int(req, "per_page", default_per_page, minimum=1, maximum=100,
                             what=" (Number of results per page. Defaults to 50.)")
        if isinstance(per_page, Response):
            return per_page
        assert page is not None and per_page is not None
        if self.faults.take_repeat_cursor(req.path):
            page = 0
        if page * per_page + per_page > 1000:
            if limit_error is not None:
                return limit_error(page)
            return self._bad_request(f"Requesting page {page} exceeds the allowed maximum of 1000 records. To fetch "
                                     f"results beyond 1000, use the checkpoint pagination method.", "invalid_paging")
        chunk = [render(x) for x in items[page * per_page:(page + 1) * per_page]]
        if (req.query.get("include_totals") or "").lower() == "true":
            body: dict[str, Any] = {"start": page * per_page, "limit": per_page}
            if length_field:
                body["length"] = len(chunk)
            body["total"] = len(items)
            body[key] = chunk
            return Response.json(200, body)
        return Response.json(200, chunk)

    def _checkpoint_page(self, req: Request, items: list[Any], ident: Callable[[Any], str], key: str,
                         render: Callable[[Any], dict[str, Any]]) -> Response:
        take = self._int(req, "take", 50, minimum=1, maximum=100,
                         what=" (Number of results per page. Defaults to 50.)")
        if isinstance(take, Response):
            return take
        assert take is not None
        start = 0
        frm = req.query.get("from")
        if frm:
            try:
                last = decode_cursor(frm)
            except ValueError:
                return self._bad_request("Invalid from parameter.", "invalid_paging")
            if not isinstance(last, str):
                return self._bad_request("Invalid from parameter.", "invalid_paging")
            # every checkpoint list is sorted by its ident: resume right after `last`
            lo, hi = 0, len(items)
            while lo < hi:
                mid = (lo + hi) // 2
                if ident(items[mid]) <= last:
                    lo = mid + 1
                else:
                    hi = mid
            start = lo
        chunk = items[start:start + take]
        body: dict[str, Any] = {key: [render(x) for x in chunk]}
        if start + take < len(items) and chunk:
            if self.faults.take_repeat_cursor(req.path):
                body["next"] = frm or encode_cursor("")
            else:
                body["next"] = encode_cursor(ident(chunk[-1]))
        return Response.json(200, body)

    @staticmethod
    def _checkpoint(req: Request) -> bool:
        return "from" in req.query or "take" in req.query

    def _fields(self, req: Request, doc: dict[str, Any]) -> dict[str, Any]:
        raw = req.query.get("fields")
        if not raw:
            return dict(doc)
        names = [f.strip() for f in raw.split(",") if f.strip()]
        include = (req.query.get("include_fields") or "true").lower() != "false"
        if include:
            return {k: v for k, v in doc.items() if k in names}
        return {k: v for k, v in doc.items() if k not in names}

    # ================================================================ users
    def _users(self, req: Request) -> Response:
        aids = self._idx()
        engine = req.query.get("search_engine")
        if engine not in (None, "", "v2", "v3"):
            return self._bad_request(f"Query validation error: 'No enum match for: \"{engine}\"' on property "
                                     f"search_engine (The version of the search engine).")
        q = req.query.get("q")
        conn = req.query.get("connection")
        selected = aids
        if q or conn:
            pred = None
            if q:
                try:
                    pred = parse_lucene(q)
                except QueryError as exc:
                    return self._bad_request(f"Query validation error: {exc}")
            out = []
            for aid in aids:
                doc = self._doc(aid)
                if conn and doc["identities"][0]["connection"] != conn:
                    continue
                if pred is not None and not pred(lambda f, d=doc: _resolve(d, f)):
                    continue
                out.append(aid)
            selected = out
        sort = req.query.get("sort")
        if sort:
            m = re.fullmatch(r"([\w.]+):(1|-1)", sort)
            if not m:
                return self._bad_request("Query validation error: 'String does not match pattern "
                                         "^(([a-zA-Z0-9_\\.]+))\\:(1|-1)$' on property sort (Field to sort by. Use "
                                         "<code>field:order</code> where order is <code>1</code> for ascending and "
                                         "<code>-1</code> for descending.).")
            fld, order = m.group(1), m.group(2)

            def skey(aid: str) -> tuple[int, str, str]:
                v = _resolve(self._doc(aid), fld)
                return (0 if v is not None else 1, str(v).lower() if v is not None else "", aid)

            selected = sorted(selected, key=skey, reverse=order == "-1")
        limit_error = lambda page: self._bad_request(  # noqa: E731
            "You can only page through the first 1000 records. See "
            "https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation", "invalid_paging")
        return self._offset_page(req, selected, "users", lambda aid: self._fields(req, self._doc(aid)),
                                 length_field=True, limit_error=limit_error)

    def _find_user(self, req: Request) -> str | Response:
        self._idx()
        aid = req.params["uid"]
        if aid not in self._user_by_aid:
            return self._err(404, "Not Found", "The user does not exist.", "inexistent_user")
        return aid

    def _user(self, req: Request) -> Response:
        aid = self._find_user(req)
        if isinstance(aid, Response):
            return aid
        return Response.json(200, self._fields(req, self._doc(aid)))

    def _patch_user(self, req: Request) -> Response:
        """`PATCH /api/v2/users/{id}`: `app_metadata` and `user_metadata` merge at their root (a key
        set to null goes, nested objects are replaced whole, `{}` empties the object); the other
        supported properties are set as given. Answers the whole user."""
        aid = self._find_user(req)
        if isinstance(aid, Response):
            return aid
        try:
            body = req.json()
        except ValueError:
            return self._bad_request("Payload validation error: 'Invalid JSON'.", "invalid_body")
        if not isinstance(body, dict):
            return self._bad_request(f"Payload validation error: 'Expected type object but found type "
                                     f"{_json_type(body)}'.", "invalid_body")
        extra = sorted(set(body) - PATCHABLE)
        if extra:
            return self._bad_request(f"Payload validation error: 'Additional properties not allowed: "
                                     f"{','.join(extra)}'.", "invalid_body")
        for key in ("app_metadata", "user_metadata"):
            if key in body and not isinstance(body[key], dict):
                return self._bad_request(f"Payload validation error: 'Expected type object but found type "
                                         f"{_json_type(body[key])}' on property {key}.", "invalid_body")
        for key in ("given_name", "family_name"):
            if key in body and not isinstance(body[key], str):
                return self._bad_request(f"Payload validation error: 'Expected type string but found type "
                                         f"{_json_type(body[key])}' on property {key}.", "invalid_body")
        for key in ("blocked", "email_verified"):
            if key in body and not isinstance(body[key], bool):
                return self._bad_request(f"Payload validation error: 'Expected type boolean but found type "
                                         f"{_json_type(body[key])}' on property {key}.", "invalid_body")
        u = self._user_by_aid[aid]
        doc = self._doc(aid)
        changes: dict[str, Any] = {}
        if "app_metadata" in body:
            changes["custom"] = _merge_metadata(u.custom, body["app_metadata"])
        if "user_metadata" in body:
            self._user_metadata[aid] = _merge_metadata(doc.get("user_metadata") or {}, body["user_metadata"])
        if "given_name" in body:
            changes["first_name"] = body["given_name"]
        if "family_name" in body:
            changes["last_name"] = body["family_name"]
        if "email_verified" in body:
            changes["email_verified"] = body["email_verified"]
        if "blocked" in body:
            blocked = u.status in ("SUSPENDED", "DEPROVISIONED")
            if body["blocked"] != blocked:
                changes["status"] = "SUSPENDED" if body["blocked"] else "ACTIVE"
        self.tenant.touch_user(u.id, **changes)
        return Response.json(200, self._doc(aid))

    def _user_roles(self, req: Request) -> Response:
        aid = self._find_user(req)
        if isinstance(aid, Response):
            return aid
        u = self._user_by_aid[aid]
        roles = sorted((self.tenant.roles[r] for r in self.tenant.user_roles.get(u.id, ())),
                       key=lambda r: self.role_id(r.id))
        return self._offset_page(req, roles, "roles", lambda r: self._role_doc(r.id))

    def _user_orgs(self, req: Request) -> Response:
        aid = self._find_user(req)
        if isinstance(aid, Response):
            return aid
        u = self._user_by_aid[aid]
        orgs = [o for o in self._sorted_orgs() if any(m.user_id == u.id for m in o.members)]
        return self._offset_page(req, orgs, "organizations", self._org_doc)

    # ================================================================ export jobs
    def _create_export(self, req: Request) -> Response:
        try:
            body = req.json() or {}
        except ValueError:
            return self._bad_request("Payload validation error: 'Invalid JSON'.", "invalid_body")
        if not isinstance(body, dict):
            return self._bad_request("Payload validation error: 'Expected type object'.", "invalid_body")
        fmt = body.get("format", "json")
        if fmt not in ("json", "csv"):
            return self._bad_request(f"Payload validation error: 'No enum match for: \"{fmt}\"' on property format "
                                     f"(Format of the file. Must be `json` or `csv`).", "invalid_body")
        conn_id = body.get("connection_id")
        connection = None
        if conn_id is not None:
            connection = {self.connection_id: DB_CONNECTION, self.social_connection_id: SOCIAL_CONNECTION}.get(conn_id)
            if connection is None:
                return self._bad_request("The connection does not exist.", "inexistent_connection")
        fields = body.get("fields")
        if fields is not None:
            if not isinstance(fields, list) or not all(isinstance(f, dict) and f.get("name") for f in fields):
                return self._bad_request("Payload validation error: 'Expected type object' on property fields.",
                                         "invalid_body")
            if fmt == "csv" and len(fields) > 30:
                return self._bad_request("Payload validation error: 'Array is too long (31), maximum 30' on property "
                                         "fields.", "invalid_body")
        limit = body.get("limit")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            return self._bad_request("Payload validation error: 'Number is less than minimum value (1)' on property "
                                     "limit.", "invalid_body")
        job_id = "job_" + secrets.token_hex(8)[:16]
        now = time.time()
        payload = self._export_payload(fmt, connection, limit, fields)
        job = ExportJob(job_id, now, iso(datetime.fromtimestamp(now, UTC)) or "", conn_id, connection, fmt,
                        limit, fields, payload)
        if self.failing_exports > 0:
            self.failing_exports -= 1
            job.fail = True
        self.jobs[job_id] = job
        return Response.json(201, self._job_doc(job, include_location=False))

    def _export_payload(self, fmt: str, connection: str | None, limit: int | None,
                        fields: list[dict[str, str]] | None) -> bytes:
        with self.tenant.lock:
            aids = list(self._idx())
            docs = [self._doc(aid) for aid in aids]
        if connection is not None:
            docs = [d for d in docs if d["identities"][0]["connection"] == connection]
        if limit is not None:
            docs = docs[:limit]
        if fields is None:
            names = [n for n in DEFAULT_EXPORT_FIELDS if fmt == "json" or n not in ("identities", "app_metadata",
                                                                                   "user_metadata")]
            fields = [{"name": n} for n in names]
        columns = [(f["name"], f.get("export_as") or f["name"]) for f in fields]
        if fmt == "json":
            lines = []
            for d in docs:
                row = {}
                for name, out in columns:
                    v = _resolve(d, name)
                    if v is not None:
                        row[out] = v
                lines.append(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
            raw = ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")
        else:
            # Auth0's CSV escaping (OWASP CSV injection): every string gets a leading single
            # quote and is wrapped in double quotes, inner double quotes doubled; Auth0-made
            # ISO-8601 dates, numbers and booleans are written as they are.
            def cell(v: Any) -> str:
                if v is None:
                    return ""
                if isinstance(v, bool):
                    return str(v).lower()
                if isinstance(v, (int, float)):
                    return str(v)
                if isinstance(v, (dict, list)):
                    v = json.dumps(v, ensure_ascii=False)
                elif parse_iso(v) is not None and v.endswith("Z"):
                    return v
                return '"\'' + str(v).replace('"', '""') + '"'

            out_lines = [",".join(out for _, out in columns)]
            out_lines += [",".join(cell(_resolve(d, name)) for name, _ in columns) for d in docs]
            raw = ("\n".join(out_lines) + "\n").encode("utf-8")
        return gzip.compress(raw, mtime=0)

    def _job_state(self, job: ExportJob) -> str:
        elapsed = time.time() - job.created
        if elapsed < self.export_delay / 2:
            return "pending"
        if elapsed < self.export_delay:
            return "processing"
        return "failed" if job.fail else "completed"

    def _job_doc(self, job: ExportJob, include_location: bool = True) -> dict[str, Any]:
        state = self._job_state(job) if include_location else "pending"
        doc: dict[str, Any] = {"type": "users_export", "status": state}
        if job.connection_id:
            doc["connection_id"] = job.connection_id
        doc["format"] = job.format
        if job.limit is not None:
            doc["limit"] = job.limit
        if job.fields is not None:
            doc["fields"] = job.fields
        if job.connection:
            doc["connection"] = job.connection
        doc["created_at"] = job.created_at
        doc["id"] = job.id
        if state == "processing":
            doc["percentage_done"] = min(99, int(100 * (time.time() - job.created) / max(self.export_delay, 1e-6)))
            doc["time_left_seconds"] = max(1, int(job.created + self.export_delay - time.time()) + 1)
        if state == "completed":
            doc["location"] = self._signed_location(job)
        if state == "failed":
            doc["status_details"] = "The export job failed. Please try again."
        return doc

    def _signed_location(self, job: ExportJob) -> str:
        deadline = time.time() + self.export_link_ttl
        expires = int(math.ceil(deadline))
        name = f"{self.tenant_name}.{job.format}.gz"
        nonce = secrets.token_hex(4)
        sig = hmac.new(self._link_key, f"{job.id}/{name}/{expires}/{nonce}".encode(), hashlib.sha256).hexdigest()
        url = f"{self.base_url}/exports/{job.id}/{name}?Expires={expires}&X-Nonce={nonce}&Signature={sig}"
        job.links.append(url)
        self._link_deadlines[sig] = deadline  # enforced to the millisecond, not the second
        return url

    def _get_job(self, req: Request) -> Response:
        jid = req.params["job"]
        if not re.fullmatch(r"job_[A-Za-z0-9]{16}", jid):
            return self._err(400, "Bad Request", "Path validation error: 'String does not match pattern "
                             "^job_[A-Za-z0-9]{16}$' on property id (The id of the job).", "invalid_uri")
        job = self.jobs.get(jid)
        if job is None:
            return self._err(404, "Not Found", "The job does not exist.", "inexistent_job")
        return Response.json(200, self._job_doc(job))

    def _s3_error(self, status: int, code: str, message: str) -> Response:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>")
        return Response(status, body.encode(), content_type="application/xml")

    def _download(self, req: Request) -> Response:
        job = self.jobs.get(req.params["job"])
        expires = req.query.get("Expires", "")
        sig = req.query.get("Signature", "")
        name = req.params["file"]
        if job is None or not expires.isdigit():
            return self._s3_error(403, "AccessDenied", "Access Denied")
        nonce = req.query.get("X-Nonce", "")
        expected = hmac.new(self._link_key, f"{job.id}/{name}/{expires}/{nonce}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig):
            return self._s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match "
                                  "the signature you provided.")
        if self._link_deadlines.get(sig, 0.0) < time.time():
            return self._s3_error(403, "AccessDenied", "Request has expired")
        return Response(200, job.payload, [("Content-Disposition", f'attachment; filename="{name}"')],
                        content_type="application/gzip")

    # ================================================================ roles
    def _roles(self, req: Request) -> Response:
        roles = self._sorted_roles()
        name_filter = (req.query.get("name_filter") or "").lower()
        if name_filter:
            roles = [r for r in roles if name_filter in r.name.lower()]
        return self._offset_page(req, roles, "roles", lambda r: self._role_doc(r.id))

    def _role(self, req: Request) -> Response:
        r = self._role_by_id(req.params["rid"])
        if r is None:
            return self._err(404, "Not Found", "The role does not exist.", "inexistent_role")
        return Response.json(200, self._role_doc(r.id))

    def _role_users(self, req: Request) -> Response:
        rid = req.params["rid"]
        if self._role_by_id(rid) is None:
            return self._err(404, "Not Found", "The role does not exist.", "inexistent_role")
        members = self._role_members(rid)

        def render(aid: str) -> dict[str, Any]:
            return self._member_doc(aid, None)

        if self._checkpoint(req):
            return self._checkpoint_page(req, members, lambda a: a, "users", render)
        return self._offset_page(req, members, "users", render)

    # ================================================================ organizations
    def _orgs(self, req: Request) -> Response:
        orgs = self._sorted_orgs()
        if self._checkpoint(req):
            return self._checkpoint_page(req, orgs, lambda o: self.org_id(o.id), "organizations", self._org_doc)
        return self._offset_page(req, orgs, "organizations", self._org_doc)

    def _find_org(self, req: Request) -> Organization | Response:
        o = self._org_by_id(req.params["oid"])
        if o is None:
            return self._err(404, "Not Found", "No organization found by that id or name")
        return o

    def _org(self, req: Request) -> Response:
        o = self._find_org(req)
        if isinstance(o, Response):
            return o
        return Response.json(200, self._org_doc(o))

    def _org_members(self, req: Request) -> Response:
        o = self._find_org(req)
        if isinstance(o, Response):
            return o
        raw_fields = req.query.get("fields")
        names = [f.strip() for f in raw_fields.split(",")] if raw_fields else []
        include = (req.query.get("include_fields") or "true").lower() != "false"
        with_roles = include and "roles" in names
        if with_roles and "read:organization_member_roles" not in (req.principal or set()):
            return self._err(403, "Forbidden", "Insufficient scope, expected any of: read:organization_member_roles",
                             "insufficient_scope")
        members = self._members_of(o)

        def render(item: tuple[str, list[dict[str, str]]]) -> dict[str, Any]:
            doc = self._member_doc(item[0], item[1] if with_roles else None)
            if names:
                if include:
                    doc = {k: v for k, v in doc.items() if k in names or k == "user_id"}
                else:
                    doc = {k: v for k, v in doc.items() if k not in names}
            return doc

        if self._checkpoint(req):
            return self._checkpoint_page(req, members, lambda m: m[0], "members", render)
        return self._offset_page(req, members, "members", render)

    def _org_member_roles(self, req: Request) -> Response:
        o = self._find_org(req)
        if isinstance(o, Response):
            return o
        aid = req.params["uid"]
        for m_aid, roles in self._members_of(o):
            if m_aid == aid:
                docs = [{"id": r["id"], "name": r["name"],
                         "description": self._role_doc(self._role_by_id(r["id"]).id)["description"]} for r in roles]
                return self._offset_page(req, docs, "roles", lambda d: d)
        return self._err(404, "Not Found", "The user is not a member of the organization.")
