"""Keycloak ids and orders of users, groups, roles and organizations, rebuilt when the tenant's
structure changes."""

from __future__ import annotations

import uuid
from typing import Any

from ..tenant import Group, User

_NS = uuid.UUID("6b1c8a52-9f0e-4c5e-8d59-2f4c1b8f0a11")


def _kc_uuid(kind: str, key: str) -> str:
    return str(uuid.uuid5(_NS, f"{kind}:{key}"))


class _Index:
    def __init__(self) -> None:
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


class KeycloakIndex:
    """The realm's index."""

    def _idx(self) -> _Index:
        return self._index.get()

    def _build_index(self) -> _Index:
        """Run by `TenantIndex` under the tenant's lock when its structure changed."""
        t = self.tenant
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
        return idx
