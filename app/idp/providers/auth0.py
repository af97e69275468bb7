"""Auth0 Management API v2: users, roles, organizations and their members.

- `/users` pages with `page`/`per_page` (100 at most) and returns at most 1,000 users in all. The
  first page asks for `include_totals`; when the tenant holds more than 1,000 matching users the
  users come from a bulk export job instead (`POST /jobs/users-exports`, poll `GET /jobs/{id}`,
  download the NDJSON file), read in checkpointed slices of the file.
- Organizations, organization members and role members use checkpoint paging (`from`/`take`,
  follow `next` until it is absent).
- Incremental (`since`): users by `q=updated_at:[since TO *]`; roles and organizations are re-read
  whole (their membership changes do not touch the users).
- Rate limits: `x-ratelimit-*` per endpoint bucket; the HTTP core paces and waits.
"""

from __future__ import annotations

import asyncio
import gzip
from datetime import datetime
from urllib.parse import quote

from app.idp import jsonfast
from app.idp.config import Auth0Settings
from app.idp.errors import IdpAuthError, IdpHttpError
from app.idp.http import HttpCore, RetryPolicy
from app.idp.pages import Page, Stream, group_row, member_row, user_row, utc_millis
from app.idp.tokens import ClientCredentials

PER_PAGE = 100  # the largest page `page`/`per_page` endpoints allow
TAKE = 100  # the largest page checkpoint endpoints allow
SEARCH_CEILING = 1000  # /users returns no more than this many results
EXPORT_SLICE = 1000  # users written per transaction from an export file
MAX_JOB_RESTARTS = 2  # new export jobs after a failed or vanished one
EXPORT_FIELDS = ("user_id", "email", "email_verified", "username", "name", "given_name", "family_name",
                 "nickname", "picture", "created_at", "updated_at", "last_login", "logins_count",
                 "blocked", "identities", "app_metadata", "user_metadata")

NEED = {
    "users": "scope read:users",
    "export": "scopes read:users and create:users (bulk export job)",
    "roles": "scope read:roles",
    "role-users": "scopes read:roles and read:role_members",
    "organizations": "scope read:organizations",
    "org-members": "scopes read:organization_members and read:organization_member_roles",
}


def make_core(settings: Auth0Settings, concurrency: int, retry: RetryPolicy) -> HttpCore:
    secret = settings.client_secret.get_secret_value()
    client_id, audience = settings.client_id, settings.api_audience

    def form() -> dict[str, str]:
        return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
                "audience": audience}

    token = ClientCredentials(f"{settings.base_url}/oauth/token", form,
                              hint=f"a client grant for the Management API audience {audience}")
    return HttpCore(provider="auth0", base_url=settings.base_url, token=token, rate_prefix="x-ratelimit",
                    concurrency=concurrency, retry=retry,
                    unauthorized_hint="check AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET")


def _user(u: dict) -> dict:
    return user_row(
        u["user_id"],
        status="blocked" if u.get("blocked") else "active",
        raw=u,
        login=u.get("username") or u.get("email"),
        email=u.get("email"),
        email_verified=u.get("email_verified"),
        first_name=u.get("given_name"),
        last_name=u.get("family_name"),
        created=u.get("created_at"),
        updated=u.get("updated_at"),
        attributes={"app_metadata": u.get("app_metadata") or {}, "user_metadata": u.get("user_metadata") or {}},
    )


def _items(body, key: str) -> tuple[list, str | None, int | None]:
    """(items, next checkpoint, total) from a bare array or a wrapped `{key: [...], ...}` page."""
    if isinstance(body, list):
        return body, None, None
    if isinstance(body, dict) and isinstance(body.get(key), list):
        total = body.get("total")
        return body[key], body.get("next") or None, total if isinstance(total, int) else None
    raise ValueError(f"expected a JSON array or an object with {key!r}")


class _JobGone(Exception):
    def __init__(self, status: int, reason: str) -> None:
        self.status, self.reason = status, reason


class Auth0:
    name = "auth0"
    settings_class = Auth0Settings
    supports_since = True

    def __init__(self, settings: Auth0Settings, *, concurrency: int, retry: RetryPolicy,
                 since: datetime | None = None, poll_interval: float = 0.5) -> None:
        self.core = make_core(settings, concurrency, retry)
        self.since = since
        self.poll_interval = poll_interval
        self._export_files: dict[str, list[dict]] = {}
        self._job_restarts = 0

    def root_streams(self) -> list[str]:
        return ["users", "roles", "organizations"]

    def stream(self, name: str) -> Stream:
        kind, _, arg = name.partition(":")
        if kind == "users":
            return Stream(name, self._users)
        if kind == "users-export":
            return Stream(name, self._export)
        if kind == "roles":
            return Stream(name, self._roles)
        if kind == "role-users":
            return Stream(name, self._checkpoint(f"/api/v2/roles/{quote(arg, safe='')}/users", "users", "role-users",
                                                 lambda items: self._members("role", arg, items)),
                          members_of=("role", arg))
        if kind == "organizations":
            return Stream(name, self._checkpoint("/api/v2/organizations", "organizations", "organizations", self._orgs))
        if kind == "org-members":
            return Stream(name, self._checkpoint(f"/api/v2/organizations/{quote(arg, safe='')}/members", "members",
                                                 "org-members", lambda items: self._org_members(arg, items),
                                                 extra={"fields": "user_id,roles", "include_fields": "true"}),
                          members_of=("organization", arg))
        raise ValueError(f"unknown auth0 stream {name!r}")

    # ---- users: page/per_page under the 1,000 ceiling, else the bulk export job
    def _user_query(self) -> dict:
        if self.since is None:
            return {}
        return {"q": f"updated_at:[{utc_millis(self.since)} TO *]", "search_engine": "v3"}

    async def _users(self, cursor: str | None) -> Page:
        page_no = int(cursor or 0)
        params = {"page": page_no, "per_page": PER_PAGE, "include_totals": "true", "sort": "created_at:1",
                  **self._user_query()}
        reply = await self.core.request("GET", "/api/v2/users", params=params, bucket="users", need=NEED["users"])
        endpoint = f"GET {reply.path}"
        try:
            items, _, total = _items(reply.body, "users")
        except ValueError as exc:
            raise IdpHttpError("GET", reply.path, reply.status, str(exc)) from None
        if page_no == 0 and total is not None and total > SEARCH_CEILING:
            # Past the ceiling /users cannot page: hand over to the export job.
            return Page(endpoint, None, spawn=["users-export"], items=0)
        read = page_no * PER_PAGE + len(items)
        more = len(items) >= PER_PAGE and (total is None or read < total) and read < SEARCH_CEILING
        return Page(endpoint, str(page_no + 1) if more else None, users=[_user(u) for u in items],
                    item_ids=[str(u.get("user_id")) for u in items])

    async def _export(self, cursor: str | None) -> Page:
        if cursor is None:
            return await self._new_export_job()
        job_id, _, offset_text = cursor.rpartition(":")
        offset = int(offset_text)
        lines = self._export_files.get(job_id)
        endpoint = f"GET /api/v2/jobs/{job_id}"
        if lines is None:
            try:
                lines = await self._download(job_id)
            except _JobGone as gone:
                # A failed job, or one Auth0 deleted (after 24 h): a new job starts the file over;
                # users already written are simply written again.
                self._job_restarts += 1
                if self._job_restarts > MAX_JOB_RESTARTS:
                    raise IdpHttpError("GET", f"/api/v2/jobs/{job_id}", gone.status, gone.reason) from None
                return await self._new_export_job()
            self._export_files[job_id] = lines
        chunk = lines[offset:offset + EXPORT_SLICE]
        users = [self._export_user(u) for u in chunk]
        if self.since is not None:
            cutoff = utc_millis(self.since)
            users = [u for u in users if (u["idp_updated_at"] or "") >= cutoff]
        end = offset + len(chunk)
        return Page(endpoint, f"{job_id}:{end}" if end < len(lines) else None, users=users, items=len(chunk))

    async def _new_export_job(self) -> Page:
        body = {"format": "json", "fields": [{"name": f} for f in EXPORT_FIELDS]}
        reply = await self.core.request("POST", "/api/v2/jobs/users-exports", json_body=body, bucket="jobs",
                                        need=NEED["export"])
        job_id = reply.body.get("id") if isinstance(reply.body, dict) else None
        if not job_id:
            raise IdpHttpError("POST", reply.path, reply.status, "the export job has no id")
        return Page(f"POST {reply.path}", f"{job_id}:0", items=0)

    @staticmethod
    def _export_user(u: dict) -> dict:
        return _user({k: v for k, v in u.items() if v is not None})

    async def _download(self, job_id: str) -> list[dict]:
        """Wait for the job, then fetch its file. The pre-signed link lives about a minute: when
        it has expired by the time the download is tried (or retried), ask the job for a new one."""
        for _ in range(3):
            location = await self._completed_location(job_id)
            try:
                # Pre-signed: no Authorization header goes to it.
                data = await self.core.request("GET", location, bucket="export-download", auth=False,
                                               expect="bytes")
            except IdpAuthError:
                continue  # the link expired (403): get a fresh one
            raw = data.body
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            try:
                return [jsonfast.loads(line) for line in raw.splitlines() if line.strip()]
            except jsonfast.DecodeError as exc:
                raise IdpHttpError("GET", data.path, data.status, f"the export file is not NDJSON ({exc})") from None
        raise IdpHttpError("GET", f"/api/v2/jobs/{job_id}", 403, "the export file's download link kept expiring")

    async def _completed_location(self, job_id: str) -> str:
        delay = self.poll_interval
        while True:
            reply = await self.core.request("GET", f"/api/v2/jobs/{quote(job_id, safe='')}", bucket="jobs",
                                            need=NEED["export"], allow_404=True)
            if reply.status == 404:
                raise _JobGone(404, "the users export job no longer exists")
            job = reply.body if isinstance(reply.body, dict) else {}
            status = job.get("status")
            if status == "completed" and job.get("location"):
                return job["location"]
            if status == "failed":
                detail = job.get("status_details") or "no detail"
                raise _JobGone(reply.status, f"the users export job failed ({detail})")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 5.0)

    # ---- roles: page/per_page; role members, organizations, organization members: from/take
    async def _roles(self, cursor: str | None) -> Page:
        page_no = int(cursor or 0)
        params = {"page": page_no, "per_page": PER_PAGE, "include_totals": "true"}
        reply = await self.core.request("GET", "/api/v2/roles", params=params, bucket="roles", need=NEED["roles"])
        try:
            items, _, total = _items(reply.body, "roles")
        except ValueError as exc:
            raise IdpHttpError("GET", reply.path, reply.status, str(exc)) from None
        read = page_no * PER_PAGE + len(items)
        more = len(items) >= PER_PAGE and (total is None or read < total)
        rows = [group_row("role", r["id"], r.get("name") or r["id"], raw=r, description=r.get("description"))
                for r in items]
        return Page(f"GET {reply.path}", str(page_no + 1) if more else None, groups=rows,
                    spawn=[f"role-users:{r['id']}" for r in items], item_ids=[r["id"] for r in items])

    def _checkpoint(self, path: str, key: str, bucket: str, to_page, extra: dict | None = None):
        async def fetch(cursor: str | None) -> Page:
            params = {"take": TAKE, **(extra or {})}
            if cursor:
                params["from"] = cursor
            reply = await self.core.request("GET", path, params=params, bucket=bucket, need=NEED[bucket],
                                            allow_404=bucket != "organizations")
            if reply.status == 404:
                return Page(f"GET {reply.path}", None)
            try:
                items, nxt, _ = _items(reply.body, key)
            except ValueError as exc:
                raise IdpHttpError("GET", reply.path, reply.status, str(exc)) from None
            page = to_page(items)
            page.endpoint = f"GET {reply.path}"
            page.next_cursor = nxt if items else None
            page.items = len(items)
            return page

        return fetch

    def _orgs(self, items: list) -> Page:
        rows = [group_row("organization", o["id"], o.get("name") or o["id"], raw=o,
                          description=o.get("display_name"), attributes=o.get("metadata") or {}) for o in items]
        return Page("", None, groups=rows, spawn=[f"org-members:{o['id']}" for o in items],
                    item_ids=[o["id"] for o in items])

    def _org_members(self, org_id: str, items: list) -> Page:
        rows = []
        for m in items:
            roles = sorted((r.get("name") or r.get("id")) for r in m.get("roles") or [])
            rows.append(member_row("organization", org_id, m["user_id"], {"roles": roles} if roles else {}))
        return Page("", None, members=rows, item_ids=[m["user_id"] for m in items])

    def _members(self, kind: str, group_id: str, items: list) -> Page:
        return Page("", None, members=[member_row(kind, group_id, u["user_id"]) for u in items],
                    item_ids=[u["user_id"] for u in items])
