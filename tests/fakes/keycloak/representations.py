"""Keycloak's representations of users, groups and organizations (brief and full)."""

from __future__ import annotations

from typing import Any

from ..base import epoch_ms
from ..tenant import User


def _attr_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


class KeycloakRepresentations:
    """User, group and organization representations."""

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
