"""Okta Management API: users, groups and group members.

- Paging: follow the `Link: <...>; rel="next"` URL verbatim (its `after` cursor is opaque); no
  `next` link means the last page.
- A plain `GET /api/v1/users` leaves DEPROVISIONED users out, so they are a stream of their own
  (`filter=status eq "DEPROVISIONED"`).
- Memberships come per group (`GET /api/v1/groups/{id}/users`, 1000 a page), never per user.
- Incremental (`since`): users and groups with `filter=lastUpdated gt "..."`, groups also by
  `lastMembershipUpdated`, and the members of just those groups.
- Rate limits: `X-Rate-Limit-*` per endpoint bucket; the HTTP core paces and waits.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

import httpx

from app.idp.config import OktaSettings
from app.idp.errors import ForeignLinkError, IdpHttpError, StaleCursorError
from app.idp.http import HttpCore, RetryPolicy
from app.idp.pages import Page, Stream, group_row, member_row, user_row, utc_millis
from app.idp.tokens import ClientCredentials, StaticToken, okta_private_key_jwt

USERS_PAGE = 200  # the users list's maximum page size
GROUPS_PAGE = 10000  # the groups list's maximum page size
MEMBERS_PAGE = 1000  # the group members list's maximum page size

USER_SCOPE = "okta.users.read (or a read-only administrator role for the API token)"
GROUP_SCOPE = "okta.groups.read (or a read-only administrator role for the API token)"
PROFILE_BASE = ("login", "email", "firstName", "lastName")
VOLATILE = ("_links", "_embedded")
# Okta's "Invalid search criteria", also its answer to an `after` cursor it no longer honours.
INVALID_CURSOR = "E0000031"


def make_core(settings: OktaSettings, concurrency: int, retry: RetryPolicy) -> HttpCore:
    if settings.uses_oauth:
        token_url = f"{settings.base_url}/oauth2/v1/token"
        form = okta_private_key_jwt(token_url, settings.client_id or "", settings.private_key_pem(),
                                    settings.private_key_id, settings.scopes)
        token = ClientCredentials(token_url, form, hint=f"scopes {settings.scopes} granted to the service app")
        hint = "check OKTA_CLIENT_ID and OKTA_PRIVATE_KEY"
    else:
        assert settings.api_token is not None
        token = StaticToken("SSWS", settings.api_token.get_secret_value())
        hint = "check OKTA_API_TOKEN"
    return HttpCore(provider="okta", base_url=settings.base_url, token=token, rate_prefix="x-rate-limit",
                    concurrency=concurrency, retry=retry, unauthorized_hint=hint)


def next_link(link_header: str | None) -> str | None:
    """The URL of `rel="next"` among the `Link` headers, verbatim."""
    if not link_header:
        return None
    for part in link_header.split(","):
        segments = part.split(";")
        url = segments[0].strip()
        rels = [s.strip() for s in segments[1:]]
        is_next = any(r.replace(" ", "") in ('rel="next"', "rel=next") for r in rels)
        if url.startswith("<") and url.endswith(">") and is_next:
            return url[1:-1]
    return None


def _origin(url: str) -> str:
    """A link's host, and its port where it names one."""
    link = httpx.URL(url)
    return f"{link.host}:{link.port}" if link.port else link.host


def _strip(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in VOLATILE}


def _user(u: dict) -> dict:
    profile = u.get("profile") or {}
    emails = (u.get("credentials") or {}).get("emails") or []
    primary = next((e for e in emails if e.get("type") == "PRIMARY"), None)
    return user_row(
        u["id"],
        status=str(u.get("status") or "UNKNOWN"),
        raw=_strip(u),
        login=profile.get("login"),
        email=profile.get("email"),
        email_verified=(primary.get("status") == "VERIFIED") if primary else None,
        first_name=profile.get("firstName"),
        last_name=profile.get("lastName"),
        created=u.get("created"),
        updated=u.get("lastUpdated"),
        attributes={k: v for k, v in profile.items() if k not in PROFILE_BASE},
    )


def _group(g: dict) -> dict:
    profile = g.get("profile") or {}
    return group_row(
        "group",
        g["id"],
        profile.get("name") or g["id"],
        raw=_strip(g),
        description=profile.get("description"),
        group_type=g.get("type"),
        attributes={k: v for k, v in profile.items() if k not in ("name", "description")},
    )


class Okta:
    name = "okta"
    settings_class = OktaSettings
    supports_since = True

    def __init__(self, settings: OktaSettings, *, concurrency: int, retry: RetryPolicy,
                 since: datetime | None = None) -> None:
        self.core = make_core(settings, concurrency, retry)
        self.since = since

    def root_streams(self) -> list[str]:
        return ["users", "users:deprovisioned", "groups"]

    def stream(self, name: str) -> Stream:
        if name == "users":
            return Stream(name, self._lister("/api/v1/users", self._user_params(None), "users", USER_SCOPE,
                                             self._users_page))
        if name == "users:deprovisioned":
            return Stream(name, self._lister("/api/v1/users", self._user_params('status eq "DEPROVISIONED"'),
                                             "users", USER_SCOPE, self._users_page))
        if name == "groups":
            params: dict[str, str | int] = {"limit": GROUPS_PAGE}
            if self.since is not None:
                t = utc_millis(self.since)
                params["filter"] = f'lastUpdated gt "{t}" or lastMembershipUpdated gt "{t}"'
            return Stream(name, self._lister("/api/v1/groups", params, "groups", GROUP_SCOPE, self._groups_page))
        if name.startswith("members:"):
            group_id = name.split(":", 1)[1]
            return Stream(
                name,
                self._lister(f"/api/v1/groups/{group_id}/users", {"limit": MEMBERS_PAGE}, "group-members",
                             GROUP_SCOPE, lambda items: self._members_page(group_id, items), allow_404=True),
                members_of=("group", group_id),
            )
        raise ValueError(f"unknown okta stream {name!r}")

    def _same_origin(self, url: str) -> bool:
        link, base = httpx.URL(url), httpx.URL(self.core.base_url)
        if not link.is_absolute_url:
            return True
        return (link.scheme, link.host, link.port) == (base.scheme, base.host, base.port)

    def _user_params(self, status_filter: str | None) -> dict:
        clauses = [status_filter] if status_filter else []
        if self.since is not None:
            clauses.append(f'lastUpdated gt "{utc_millis(self.since)}"')
        params: dict[str, str | int] = {"limit": USERS_PAGE}
        if clauses:
            params["filter"] = " and ".join(clauses)
        return params

    def _lister(self, path, params, bucket, need, to_page, allow_404: bool = False):
        first = f"{path}?{urlencode(params)}"

        async def fetch(cursor: str | None) -> Page:
            url = cursor or first
            if cursor is not None and not self._same_origin(cursor):
                # A checkpoint of a run against another OKTA_BASE_URL (the token goes with it).
                raise ForeignLinkError("GET", path, None, f"the stored next-page link points to {_origin(cursor)},"
                                       f" outside OKTA_BASE_URL ({self.core.base_url}); not following it")
            try:
                reply = await self.core.request("GET", url, bucket=bucket, need=need, allow_404=allow_404)
            except IdpHttpError as exc:
                if cursor is not None and exc.status == 400 and exc.code == INVALID_CURSOR:
                    # The same listing's first page took the same parameters: what Okta refuses
                    # here is the `after` cursor (expired, or one of an endless run of empty pages).
                    raise StaleCursorError(exc.method, exc.endpoint, exc.status, exc.reason, code=exc.code) from None
                raise
            endpoint = f"GET {reply.path}"
            if reply.status == 404:
                return Page(endpoint, None)
            items = reply.body
            if not isinstance(items, list):
                raise IdpHttpError("GET", reply.path, reply.status, "expected a JSON array")
            links = ",".join(reply.headers.get_list("link"))
            page = to_page(items)
            page.endpoint = endpoint
            page.next_cursor = next_link(links)
            if page.next_cursor is not None and not self._same_origin(page.next_cursor):
                # The token goes with every request: never to a host other than the org's.
                raise IdpHttpError("GET", reply.path, reply.status,
                                   f"the next-page link points to {_origin(page.next_cursor)}, "
                                   "outside OKTA_BASE_URL; not following it")
            page.item_ids = [str(i.get("id")) for i in items if isinstance(i, dict)]
            return page

        return fetch

    def _users_page(self, items: list) -> Page:
        return Page("", None, users=[_user(u) for u in items])

    def _groups_page(self, items: list) -> Page:
        groups = [_group(g) for g in items]
        # Okta's built-in Everyone group holds every user: its member list says nothing new.
        listed = [g for g in items if g.get("type") != "BUILT_IN"]
        return Page("", None, groups=groups, spawn=[f"members:{g['id']}" for g in listed])

    def _members_page(self, group_id: str, items: list) -> Page:
        return Page("", None, members=[member_row("group", group_id, u["id"]) for u in items])
