"""`Tenant`: users, groups, memberships, roles and organizations, and the only ways to change them
(each bumps `last_updated` / `last_membership_updated` and the version counters the fakes'
caches follow)."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime
from typing import Any

from .records import REFERENCE_NOW, STATUSES, Group, Organization, OrgMember, Role, User, _ms, utcnow


class Tenant:
    """Neutral identity data. Mutate it only through the methods below."""

    def __init__(self, *, seed: int = 0, now: datetime | None = None, env: str = "PROD") -> None:
        self.seed = seed
        self.now = now or REFERENCE_NOW
        self.env = env
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.memberships: dict[str, list[str]] = {}
        self.roles: dict[str, Role] = {}
        self.user_roles: dict[str, list[str]] = {}
        self.organizations: dict[str, Organization] = {}
        self.custom_attributes: dict[str, str] = {}  # name -> JSON schema type
        self.lock = threading.RLock()
        # `version` changes on every mutation; `structure_version` when users, groups or
        # memberships are added or removed (the fakes rebuild their indexes then).
        self.version = 0
        self.structure_version = 0
        self._groups_of: dict[str, list[str]] | None = None
        self._groups_of_version = -1

    def user(self, user_id: str) -> User:
        return self.users[user_id]

    def group(self, group_id: str) -> Group:
        return self.groups[group_id]

    def group_by_name(self, name: str) -> Group:
        for g in self.groups.values():
            if g.name == name:
                return g
        raise KeyError(name)

    def role_by_name(self, name: str) -> Role:
        for r in self.roles.values():
            if r.name == name:
                return r
        raise KeyError(name)

    def members(self, group_id: str) -> list[str]:
        return list(self.memberships.get(group_id, ()))

    def groups_of(self, user_id: str) -> list[str]:
        """Group ids the user belongs to, in group creation order."""
        with self.lock:
            if self._groups_of is None or self._groups_of_version != self.structure_version:
                index: dict[str, list[str]] = {}
                for gid in self.groups:
                    for uid in self.memberships.get(gid, ()):
                        index.setdefault(uid, []).append(gid)
                self._groups_of = index
                self._groups_of_version = self.structure_version
            return list(self._groups_of.get(user_id, ()))

    def roles_of(self, user_id: str) -> list[str]:
        return list(self.user_roles.get(user_id, ()))

    def orgs_of(self, user_id: str) -> list[str]:
        return [o.id for o in self.organizations.values() if any(m.user_id == user_id for m in o.members)]

    def children_of(self, group_id: str | None) -> list[str]:
        return [g.id for g in self.groups.values() if g.parent_id == group_id]

    def summary(self) -> dict[str, Any]:
        by_status: dict[str, int] = {}
        for u in self.users.values():
            by_status[u.status] = by_status.get(u.status, 0) + 1
        grouped = {uid for ms in self.memberships.values() for uid in ms}
        return {
            "users": len(self.users),
            "groups": len(self.groups),
            "roles": len(self.roles),
            "organizations": len(self.organizations),
            "by_status": by_status,
            "users_without_email": sum(1 for u in self.users.values() if not u.email),
            "users_in_no_group": len(self.users) - len(grouped & self.users.keys()),
            "memberships": sum(len(v) for v in self.memberships.values()),
        }

    def _bump(self, structure: bool = False) -> None:
        self.version += 1
        if structure:
            self.structure_version += 1

    def _touch(self, record: Any, what: str, changes: dict[str, Any], now: datetime | None,
               structure: bool = False) -> Any:
        """Apply `changes` to a user or group, stamp `last_updated` and bump its version."""
        for key, value in changes.items():
            if not hasattr(record, key) or key in ("id", "version"):
                raise AttributeError(f"{what} has no settable field {key!r}")
            setattr(record, key, value)
        record.last_updated = _ms(now or utcnow())
        record.version += 1
        self._bump(structure=structure)
        return record

    def touch_user(self, user_id: str, now: datetime | None = None, **changes: Any) -> User:
        """Set `last_updated` to `now` (default: the current time), applying any field changes
        (e.g. `email=...`, `first_name=...`, `custom={...}`) at the same time."""
        with self.lock:
            return self._touch(self.users[user_id], "User", changes, now)

    def set_status(self, user_id: str, status: str, now: datetime | None = None) -> User:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        return self.touch_user(user_id, now, status=status)

    def add_user(
        self,
        *,
        login: str,
        email: str | None,
        first_name: str,
        last_name: str,
        status: str = "ACTIVE",
        email_verified: bool = True,
        custom: dict[str, Any] | None = None,
        now: datetime | None = None,
        user_id: str | None = None,
    ) -> User:
        with self.lock:
            ts = _ms(now or utcnow())
            uid = user_id or str(uuid.uuid4())
            u = User(uid, login, email, email_verified, first_name, last_name, status, ts, ts, None, dict(custom or {}))
            self.users[uid] = u
            self._bump(structure=True)
            return u

    def delete_user(self, user_id: str, now: datetime | None = None) -> None:
        """Remove the user entirely (as a hard delete in the provider would)."""
        with self.lock:
            ts = _ms(now or utcnow())
            del self.users[user_id]
            for gid, ms in self.memberships.items():
                if user_id in ms:
                    ms.remove(user_id)
                    self.groups[gid].last_membership_updated = ts
                    self.groups[gid].version += 1
            self.user_roles.pop(user_id, None)
            for org in self.organizations.values():
                before = len(org.members)
                org.members = [m for m in org.members if m.user_id != user_id]
                if len(org.members) != before:
                    org.version += 1
            self._bump(structure=True)

    def add_member(self, group_id: str, user_id: str, now: datetime | None = None) -> None:
        with self.lock:
            ms = self.memberships.setdefault(group_id, [])
            if user_id not in ms:
                ms.append(user_id)
                g = self.groups[group_id]
                g.last_membership_updated = _ms(now or utcnow())
                g.version += 1
                self._bump(structure=True)

    def remove_member(self, group_id: str, user_id: str, now: datetime | None = None) -> None:
        with self.lock:
            ms = self.memberships.get(group_id, [])
            if user_id in ms:
                ms.remove(user_id)
                g = self.groups[group_id]
                g.last_membership_updated = _ms(now or utcnow())
                g.version += 1
                self._bump(structure=True)

    def touch_group(self, group_id: str, now: datetime | None = None, **changes: Any) -> Group:
        with self.lock:
            return self._touch(self.groups[group_id], "Group", changes, now, structure=True)

    def add_group(
        self,
        name: str,
        description: str = "",
        *,
        kind: str = "plain",
        org_id: str | None = None,
        role_name: str | None = None,
        facility_id: str | None = None,
        parent_id: str | None = None,
        now: datetime | None = None,
        group_id: str | None = None,
    ) -> Group:
        """A new group (no members); `kind` etc. as the generator sets them, for the tests' own
        bookkeeping (the fakes render the name, description and parent)."""
        with self.lock:
            ts = _ms(now or utcnow())
            gid = group_id or str(uuid.uuid4())
            g = Group(gid, name, description, ts, ts, ts, parent_id=parent_id, kind=kind, org_id=org_id,
                      role_name=role_name, facility_id=facility_id)
            self.groups[gid] = g
            self.memberships[gid] = []
            self._bump(structure=True)
            return g

    def add_role(self, name: str, description: str = "", role_id: str | None = None) -> Role:
        """A new tenant-wide role (a Keycloak realm role, an Auth0 role)."""
        with self.lock:
            r = Role(role_id or str(uuid.uuid4()), name, description)
            self.roles[r.id] = r
            self._bump(structure=True)
            return r

    def set_roles(self, user_id: str, role_names: list[str] | tuple[str, ...]) -> None:
        """The user's tenant-wide roles (Keycloak realm roles, Auth0 user roles), by name."""
        with self.lock:
            rids = [self.role_by_name(n).id for n in role_names]
            if rids:
                self.user_roles[user_id] = rids
            else:
                self.user_roles.pop(user_id, None)
            self._bump(structure=True)

    def add_organization(
        self,
        *,
        name: str,
        display_name: str,
        external_id: str,
        now: datetime | None = None,
        org_id: str | None = None,
    ) -> Organization:
        """A new organization (Keycloak and Auth0 render organizations), with no members."""
        with self.lock:
            o = Organization(org_id or str(uuid.uuid4()), name, display_name, external_id, _ms(now or utcnow()))
            self.organizations[o.id] = o
            self._bump(structure=True)
            return o

    def set_org_member(self, org_id: str, user_id: str, role_names: list[str] | tuple[str, ...] = ()) -> None:
        """Make the user a member of the organization with exactly these roles (by name): added
        when not a member yet, the roles replaced otherwise."""
        with self.lock:
            o = self.organizations[org_id]
            rids = [self.role_by_name(n).id for n in role_names]
            for m in o.members:
                if m.user_id == user_id:
                    m.role_ids = rids
                    break
            else:
                o.members.append(OrgMember(user_id, rids))
            o.version += 1
            self._bump(structure=True)

    def remove_org_member(self, org_id: str, user_id: str) -> None:
        with self.lock:
            o = self.organizations[org_id]
            before = len(o.members)
            o.members = [m for m in o.members if m.user_id != user_id]
            if len(o.members) != before:
                o.version += 1
                self._bump(structure=True)
