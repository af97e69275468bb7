"""Keycloak Admin REST API: users, groups (with subgroups), realm roles, organizations, and the
members of each group, role and organization.

- Paging: `first`/`max` offsets, no totals and no next link: read until a page comes back shorter
  than `max`. `max=100` is always sent, because the endpoints' defaults differ (users and members
  100, subgroups and organizations 10) and a silent default would make a full page look short.
- Memberships per group/role/organization (`.../members`, `/roles/{name}/users`), never per user.
- Keycloak has no updated-since filter: `--since` runs a full export.
- No rate limiting of its own; a proxy's 429/503 is waited out like any other.
"""

from __future__ import annotations

from urllib.parse import quote

from app.idp.config import KeycloakSettings
from app.idp.errors import IdpHttpError
from app.idp.http import HttpCore, RetryPolicy
from app.idp.pages import Page, Stream, epoch_ms_to_iso, group_row, member_row, user_row
from app.idp.tokens import ClientCredentials

PAGE_SIZE = 100  # sent as `max` to every listing
NEED_USERS = "realm-management role view-users"
NEED_GROUPS = "realm-management roles query-groups and view-users"
NEED_ROLES = "realm-management role view-realm"
NEED_ORGS = "realm-management role manage-realm (organizations)"


def make_core(settings: KeycloakSettings, concurrency: int, retry: RetryPolicy) -> HttpCore:
    realm = settings.token_realm or settings.realm
    token_url = f"{settings.base_url}/realms/{quote(realm, safe='')}/protocol/openid-connect/token"
    secret = settings.client_secret.get_secret_value()
    client_id = settings.client_id

    def form() -> dict[str, str]:
        return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}

    token = ClientCredentials(token_url, form, hint="a confidential client with service accounts enabled")
    return HttpCore(provider="keycloak", base_url=settings.base_url, token=token, rate_prefix="x-ratelimit",
                    concurrency=concurrency, retry=retry,
                    unauthorized_hint="check KEYCLOAK_CLIENT_ID and KEYCLOAK_CLIENT_SECRET")


def next_offset(cursor: str | None, got: int) -> str | None:
    """The cursor after a page of `got` items: a page shorter than PAGE_SIZE is the last."""
    return str(int(cursor or 0) + got) if got >= PAGE_SIZE else None


def _user(u: dict) -> dict:
    return user_row(
        u["id"],
        status="enabled" if u.get("enabled", True) else "disabled",
        raw={k: v for k, v in u.items() if k != "access"},
        login=u.get("username"),
        email=u.get("email"),
        email_verified=u.get("emailVerified"),
        first_name=u.get("firstName"),
        last_name=u.get("lastName"),
        created=epoch_ms_to_iso(u.get("createdTimestamp")),
        attributes=u.get("attributes") or {},
    )


def _flatten_groups(items: list, parent: str | None) -> tuple[list[dict], list[str]]:
    """Rows for groups and the subgroups nested in them; plus the ids of groups whose children
    were not all included (newer servers send only `subGroupCount`)."""
    rows: list[dict] = []
    more: list[str] = []
    for g in items:
        subs = g.get("subGroups") or []
        rows.append(group_row(
            "group", g["id"], g.get("name") or g["id"],
            raw={k: v for k, v in g.items() if k not in ("subGroups", "access", "subGroupCount")},
            description=g.get("description"),
            group_type=g.get("path"),
            parent_external_id=g.get("parentId") or parent,
            attributes=g.get("attributes") or {},
        ))
        if subs:
            sub_rows, sub_more = _flatten_groups(subs, g["id"])
            rows += sub_rows
            more += sub_more
        if (g.get("subGroupCount") or 0) > len(subs):
            more.append(g["id"])
    return rows, more


class Keycloak:
    name = "keycloak"
    settings_class = KeycloakSettings
    supports_since = False  # no updated-since filter: every export is a full one

    def __init__(self, settings: KeycloakSettings, *, concurrency: int, retry: RetryPolicy,
                 since: None = None) -> None:
        if since is not None:
            raise ValueError("Keycloak has no updated-since filter: export without `since`")
        self.core = make_core(settings, concurrency, retry)
        self.prefix = f"/admin/realms/{quote(settings.realm, safe='')}"

    def root_streams(self) -> list[str]:
        return ["users", "groups", "roles", "organizations"]

    def stream(self, name: str) -> Stream:
        kind, _, arg = name.partition(":")
        if kind == "users":
            return Stream(name, self._offsets("/users", "users", {"briefRepresentation": "false"}, NEED_USERS,
                                              self._users))
        if kind == "groups":
            return Stream(name, self._offsets("/groups", "groups", {"briefRepresentation": "false"}, NEED_GROUPS,
                                              lambda items: self._groups(items, None)))
        if kind == "children":
            return Stream(name, self._offsets(f"/groups/{arg}/children", "children", {"briefRepresentation": "false"},
                                              NEED_GROUPS, lambda items: self._groups(items, arg), allow_404=True))
        if kind == "members":
            return Stream(name, self._offsets(f"/groups/{arg}/members", "members", {"briefRepresentation": "true"},
                                              NEED_GROUPS, lambda items: self._members("group", arg, items),
                                              allow_404=True),
                          members_of=("group", arg))
        if kind == "roles":
            return Stream(name, self._offsets("/roles", "roles", {"briefRepresentation": "false"}, NEED_ROLES,
                                              self._roles))
        if kind == "role-users":
            role_id, _, role_name = arg.partition(":")
            return Stream(name, self._offsets(f"/roles/{quote(role_name, safe='')}/users", "role-users", {},
                                              f"{NEED_ROLES} and view-users",
                                              lambda items: self._members("role", role_id, items), allow_404=True),
                          members_of=("role", role_id))
        if kind == "organizations":
            return Stream(name, self._offsets("/organizations", "organizations", {"briefRepresentation": "false"},
                                              NEED_ORGS, self._orgs, allow_404=True))
        if kind == "org-members":
            return Stream(name, self._offsets(f"/organizations/{arg}/members", "org-members", {}, NEED_ORGS,
                                              lambda items: self._members("organization", arg, items, org=True),
                                              allow_404=True),
                          members_of=("organization", arg))
        raise ValueError(f"unknown keycloak stream {name!r}")

    def _offsets(self, path: str, bucket: str, params: dict, need: str, to_page, allow_404: bool = False):
        async def fetch(cursor: str | None) -> Page:
            query = {**params, "first": int(cursor or 0), "max": PAGE_SIZE}
            reply = await self.core.request("GET", self.prefix + path, params=query, bucket=bucket, need=need,
                                            allow_404=allow_404)
            if reply.status == 404:
                return Page(f"GET {reply.path}", None)
            items = reply.body
            if not isinstance(items, list):
                raise IdpHttpError("GET", reply.path, reply.status, "expected a JSON array")
            page = to_page(items)
            page.endpoint = f"GET {reply.path}"
            page.next_cursor = next_offset(cursor, len(items))
            page.item_ids = [str(i.get("id")) for i in items if isinstance(i, dict)]
            page.items = len(items)
            return page

        return fetch

    def _users(self, items: list) -> Page:
        # Service-account users are kept (their `raw` names the client): memberships may name them.
        return Page("", None, users=[_user(u) for u in items])

    def _groups(self, items: list, parent: str | None) -> Page:
        rows, more = _flatten_groups(items, parent)
        spawn = [f"members:{r['external_id']}" for r in rows] + [f"children:{gid}" for gid in more]
        return Page("", None, groups=rows, spawn=spawn)

    def _roles(self, items: list) -> Page:
        rows = [group_row("role", r["id"], r.get("name") or r["id"],
                          raw={k: v for k, v in r.items() if k != "access"},
                          description=r.get("description"),
                          group_type="client" if r.get("clientRole") else "realm",
                          attributes=r.get("attributes") or {}) for r in items]
        return Page("", None, groups=rows, spawn=[f"role-users:{r['id']}:{r['name']}" for r in items])

    def _orgs(self, items: list) -> Page:
        rows = [group_row("organization", o["id"], o.get("name") or o["id"],
                          raw=o, description=o.get("description"),
                          group_type=",".join(d.get("name", "") for d in o.get("domains") or []) or None,
                          attributes=o.get("attributes") or {}) for o in items]
        return Page("", None, groups=rows, spawn=[f"org-members:{o['id']}" for o in items])

    def _members(self, kind: str, group_id: str, items: list, org: bool = False) -> Page:
        rows = []
        for u in items:
            attrs = {"membershipType": u["membershipType"]} if org and u.get("membershipType") else {}
            rows.append(member_row(kind, group_id, u["id"], attrs))
        return Page("", None, members=rows)
