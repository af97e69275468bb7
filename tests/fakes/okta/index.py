"""Okta ids, sort orders and JSON of users and groups, cached until the tenant changes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..base import dumps, iso
from ..tenant import Group, User


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


class OktaIndex:
    """The id index and the cached renderings the listings page over."""

    def _on_start(self) -> None:
        self._user_json.clear()
        self._group_json.clear()
        self._idx()  # ids and sort orders ready before the first request

    def _idx(self) -> _Index:
        return self._index.get()

    def _build_index(self) -> _Index:
        """Run by `TenantIndex` under the tenant's lock when its structure changed."""
        t = self.tenant
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
        return self._user_json.get(oid, u.version, lambda: dumps(self._user_doc(oid, u)))

    def _user_doc(self, oid: str, u: User) -> dict[str, Any]:
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
        return doc

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
        if stats:  # the counts change with every membership: never kept
            doc = self._group_doc(goid, g, idx)
            doc["_embedded"] = {"stats": {"usersCount": len(self._members(goid)), "appsCount": 0,
                                          "groupPushMappingsCount": 0, "hasAdminPrivilege": False}}
            return dumps(doc)
        version = (g.version if g is not None else idx.version, idx.version)
        return self._group_json.get(goid, version, lambda: dumps(self._group_doc(goid, g, idx)))

    def _group_doc(self, goid: str, g: Group | None, idx: _Index) -> dict[str, Any]:
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
        return doc

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
